package archive

import (
	"fmt"
	"testing"
)

// TestParsedIndexMemoryBound: the process's parsed indexes never hold
// more than the bound SetParsedIndexMemory sets (a server's
// patch.indexMemory), however many indexes are loaded after it, and the
// most recent stays.
func TestParsedIndexMemoryBound(t *testing.T) {
	if ParsedIndexMemory() != DefaultParsedIndexMemory {
		t.Fatalf("bound %d before any setting, want the default %d", ParsedIndexMemory(), DefaultParsedIndexMemory)
	}
	one := testIndex(t, "a", "b", "c").bytes()
	bound := 3*one + one/2
	SetParsedIndexMemory(bound)
	t.Cleanup(func() { SetParsedIndexMemory(DefaultParsedIndexMemory) })
	if ParsedIndexMemory() != bound {
		t.Fatalf("bound %d, want %d", ParsedIndexMemory(), bound)
	}
	for i := range 20 {
		key := fmt.Sprintf("test-bound-%d", i)
		x := testIndex(t, "a", "b", "c")
		got, err := parsedIndexes.get(key, func() (*packageIndex, error) { return x, nil })
		if err != nil || got != x {
			t.Fatalf("load %d: %v", i, err)
		}
		parsedIndexes.mu.Lock()
		size, n := parsedIndexes.size, parsedIndexes.lru.Len()
		parsedIndexes.mu.Unlock()
		if size > bound {
			t.Fatalf("after %d loads the cache holds %d bytes in %d indexes, over the bound %d", i+1, size, n, bound)
		}
		if again, _ := parsedIndexes.get(key, func() (*packageIndex, error) { return nil, nil }); again != x {
			t.Fatalf("load %d: the most recent index was not kept", i)
		}
	}
	if n := parsedIndexes.lru.Len(); n != 3 {
		t.Errorf("the cache holds %d indexes of %d bytes within %d, want 3", n, one, bound)
	}
}
