package archive

import (
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func testIndex(t *testing.T, names ...string) *packageIndex {
	t.Helper()
	var list []IndexPackage
	for _, n := range names {
		list = append(list, IndexPackage{Package: n, Version: "1"})
	}
	x, err := loadIndex(encodeIndex(list))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestIndexCacheBound: the cache keeps the most recently used indexes
// within its bound in bytes, and a lower bound evicts at once.
func TestIndexCacheBound(t *testing.T) {
	a, b, c := testIndex(t, "a"), testIndex(t, "b"), testIndex(t, "c")
	size := a.bytes()
	if b.bytes() != size || c.bytes() != size {
		t.Fatal("test indexes of different sizes")
	}
	ic := newIndexCache(2 * size)
	ic.put("a", a)
	ic.put("b", b)
	load := func(key string) *packageIndex {
		x, _ := ic.get(key, func() (*packageIndex, error) { return nil, nil })
		return x
	}
	// held is what the LRU holds (an evicted index still in use is found
	// by get all the same: see TestIndexCacheSharesEvicted).
	held := func(key string) *packageIndex {
		if el, ok := ic.byKey[key]; ok {
			return el.Value.(*indexCacheEntry).idx
		}
		return nil
	}
	if load("a") != a { // a is now the most recent
		t.Fatal("a not kept")
	}
	ic.put("c", c)
	if held("b") != nil || held("a") != a || held("c") != c {
		t.Error("adding c did not evict exactly b, the least recently used")
	}
	ic.setMax(size)
	if held("a") != nil || held("c") != c {
		t.Error("a lower bound did not evict the least recently used")
	}
	ic.setMax(0)
	if held("c") != nil || ic.size != 0 || ic.lru.Len() != 0 {
		t.Errorf("bound 0 keeps %d bytes", ic.size)
	}
}

// TestIndexCacheSharesEvicted: an index the bound evicted while still in
// use is shared by the next get instead of loaded a second time; once
// nothing uses it, it is loaded again.
func TestIndexCacheSharesEvicted(t *testing.T) {
	a := testIndex(t, "a")
	ic := newIndexCache(a.bytes())
	ic.put("a", a)
	ic.put("b", testIndex(t, "b")) // evicts a, which this test still uses
	loads := 0
	load := func() (*packageIndex, error) { loads++; return testIndex(t, "a"), nil }
	if got, _ := ic.get("a", load); got != a || loads != 0 {
		t.Fatalf("an evicted index in use was loaded again (%d loads)", loads)
	}
	ic.put("b", testIndex(t, "b")) // evicts a again
	runtime.KeepAlive(a)
	a = nil
	runtime.GC()
	if got, _ := ic.get("a", load); got == nil || loads != 1 {
		t.Fatalf("an evicted index nothing uses was not loaded again (%d loads)", loads)
	}
}

// TestIndexCacheLoadsOnce: goroutines wanting the same index at once
// share one load; a failed load is not remembered.
func TestIndexCacheLoadsOnce(t *testing.T) {
	ic := newIndexCache(1 << 30)
	x := testIndex(t, "a")
	var loads atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]*packageIndex, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = ic.get("k", func() (*packageIndex, error) {
				loads.Add(1)
				<-release
				return x, nil
			})
		}()
	}
	// Wait until one goroutine is loading (the others wait on it or
	// have not asked yet; either way they find its result).
	for loads.Load() == 0 {
		ic.mu.Lock()
		n := len(ic.loading)
		ic.mu.Unlock()
		if n > 0 {
			break
		}
	}
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1", n)
	}
	for i, g := range got {
		if g != x {
			t.Errorf("goroutine %d got another index", i)
		}
	}
	boom := errors.New("boom")
	if _, err := ic.get("bad", func() (*packageIndex, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failed load: %v", err)
	}
	if y, err := ic.get("bad", func() (*packageIndex, error) { return x, nil }); err != nil || y != x {
		t.Errorf("after a failed load: %v, %v", y, err)
	}
}

// TestRepoEntriesAreItsOwn: two Repos over the same parsed index (one
// process, one cache) share it in memory, yet what one Repo's caller does
// to an entry it was given, the other never sees; nor does a Repo opened
// afterwards.
func TestRepoEntriesAreItsOwn(t *testing.T) {
	a := newTestArchive(t, "")
	cache := t.TempDir()
	open := func() *Repo {
		t.Helper()
		repo, err := Open(t.Context(), a.image(t, publicKeyring(t, false, a.key)), bookwormOS, "amd64", WithCacheDir(cache), WithClock(fixedClock(testNow)))
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { repo.Close() })
		return repo
	}
	r1, r2 := open(), open()
	if len(r1.views) == 0 || r1.views[0].idx != r2.views[0].idx {
		t.Fatal("two Repos of one process do not share the parsed index")
	}
	e1 := r1.Named("tzdata")
	if len(e1) == 0 {
		t.Fatal("tzdata not in the test archive")
	}
	want := *e1[0]
	e1[0].Version, e1[0].Filename, e1[0].URI = "9:evil", "pool/evil.deb", "http://evil"
	for name, r := range map[string]*Repo{"the other Repo": r2, "a new Repo": open()} {
		if got := r.Named("tzdata"); len(got) == 0 || *got[0] != want {
			t.Errorf("%s sees %+v, want %+v", name, got, want)
		}
	}
	if x, _ := parsedIndexes.get(filepath.Join(cache, "store")+"\x00"+parsedFormat+"none", func() (*packageIndex, error) { return nil, nil }); x != nil {
		t.Error("a key never stored was found")
	}
}

// TestIndexCacheReserve: room reserved for an index about to be loaded
// evicts the least recently used indexes before the load, not after
// (the old release's index is not kept beside the new one's parse), and
// once given back the loaded index is kept within the bound.
func TestIndexCacheReserve(t *testing.T) {
	a, b, c := testIndex(t, "a"), testIndex(t, "b"), testIndex(t, "c")
	size := a.bytes()
	ic := newIndexCache(2 * size)
	ic.put("a", a)
	ic.put("b", b)
	release := ic.reserve(size)
	if _, ok := ic.byKey["a"]; ok || ic.lru.Len() != 1 {
		t.Fatalf("reserving room for one index kept %d indexes, a among them: %v", ic.lru.Len(), ok)
	}
	release()
	release() // a second call gives nothing back twice
	if ic.reserved != 0 {
		t.Fatalf("%d bytes still reserved", ic.reserved)
	}
	ic.put("c", c)
	if _, ok := ic.byKey["b"]; !ok || ic.lru.Len() != 2 {
		t.Errorf("after the reservation, adding c evicted b or kept %d indexes", ic.lru.Len())
	}
}
