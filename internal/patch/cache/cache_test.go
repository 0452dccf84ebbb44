package cache

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func put(t *testing.T, d *Dir, key string, size int) *Entry {
	t.Helper()
	e, err := d.Put(key, func(dir string) (int64, error) {
		return int64(size), os.WriteFile(filepath.Join(dir, "data"), make([]byte, size), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPutGet(t *testing.T) {
	d, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := d.Get("abc"); e != nil || err != nil {
		t.Fatalf("Get of a missing key: %v, %v", e, err)
	}
	e := put(t, d, "abc", 10)
	if _, err := os.Stat(filepath.Join(e.Path, "data")); err != nil {
		t.Fatal(err)
	}
	e.Release()
	g, err := d.Get("abc")
	if err != nil || g == nil || g.Path != e.Path {
		t.Fatalf("Get = %v, %v", g, err)
	}
	g.Release()
	if n, err := d.Size(); err != nil || n != 10 {
		t.Errorf("Size = %d, %v", n, err)
	}
	for _, bad := range []string{"", "../x", "a/b", "tmp-1", "ABC", strings.Repeat("a", 129)} {
		if _, err := d.Get(bad); err == nil {
			t.Errorf("Get(%q) accepted", bad)
		}
	}
	// A failing build leaves nothing.
	if _, err := d.Put("def", func(string) (int64, error) { return 0, errors.New("boom") }); err == nil {
		t.Error("failing build succeeded")
	}
	if e, _ := d.Get("def"); e != nil {
		t.Error("failing build left an entry")
	}
	des, _ := os.ReadDir(d.Root())
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "tmp-") {
			t.Errorf("left %s behind", de.Name())
		}
	}
}

// TestEvictLRU: past the bound, the least recently used entries go, and
// an entry in use stays.
func TestEvictLRU(t *testing.T) {
	d, err := Open(t.TempDir(), 25)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	d.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	put(t, d, "a", 10).Release()
	put(t, d, "b", 10).Release()
	// Use a: b is now the least recently used.
	e, _ := d.Get("a")
	e.Release()
	put(t, d, "c", 10).Release() // 30 > 25: b goes
	for key, want := range map[string]bool{"a": true, "b": false, "c": true} {
		e, _ := d.Get(key)
		if (e != nil) != want {
			t.Errorf("after eviction, %s present = %v, want %v", key, e != nil, want)
		}
		e.Release()
	}
	// An entry in use is never evicted, even past the bound.
	held, _ := d.Get("a")
	put(t, d, "d", 20).Release()
	if _, err := os.Stat(held.Path); err != nil {
		t.Errorf("entry in use was evicted: %v", err)
	}
	held.Release()
	if err := d.Evict(); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.Size(); n > 25 {
		t.Errorf("size %d after eviction, bound 25", n)
	}
}

// TestDiscard removes a corrupt entry; the next Get misses.
func TestDiscard(t *testing.T) {
	d, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	e := put(t, d, "k", 1)
	if err := d.Discard(e); err != nil {
		t.Fatal(err)
	}
	if g, _ := d.Get("k"); g != nil {
		t.Error("discarded entry still found")
	}
	// A second Put of the same key while one exists keeps one entry.
	a := put(t, d, "k", 1)
	b := put(t, d, "k", 1)
	if a.Path != b.Path {
		t.Errorf("two entries for one key: %s, %s", a.Path, b.Path)
	}
}

// TestFileDamage: ReadFile returns what WriteFile wrote, and refuses, as
// ErrCorrupt, every kind of damage: a flipped bit anywhere (data or
// trailer), a truncation (of any length, down to nothing), bytes appended,
// and a file in the older format (a trailing SHA-256).
func TestFileDamage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	data := []byte(strings.Repeat("parsed index ", 1000))
	if err := WriteFile(p, data); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(p); err != nil || string(got) != string(data) {
		t.Fatalf("ReadFile of an intact file: %d bytes, %v", len(got), err)
	}
	if err := WriteFile(p, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(p); err != nil || len(got) != 0 {
		t.Fatalf("ReadFile of an empty file's entry: %q, %v", got, err)
	}
	// Parts written one after another read back as their concatenation.
	if err := WriteFile(p, data[:10], nil, data[10:]); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(p); err != nil || string(got) != string(data) {
		t.Fatalf("ReadFile of a file written in parts: %d bytes, %v", len(got), err)
	}
	sum := sha256.Sum256(data)
	cases := map[string][]byte{
		"truncated to nothing":   {},
		"trailer only":           good[len(good)-trailerSize:],
		"last byte cut":          good[:len(good)-1],
		"trailer cut":            good[:len(good)-trailerSize],
		"one byte appended":      append(bytes.Clone(good), 0),
		"older format (SHA-256)": append(bytes.Clone(data), sum[:]...),
	}
	for _, i := range []int{0, len(data) / 2, len(data) - 1, len(data), len(data) + 5, len(good) - 1} {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		cases["bit flipped at "+strconv.Itoa(i)] = b
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadFile(p); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadFile: %v, want ErrCorrupt", err)
			}
		})
	}
}
