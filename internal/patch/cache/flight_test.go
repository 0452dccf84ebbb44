package cache

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// Puts of one key at once build it once and share the entry; a failed
// build is not the waiters' failure: they build it themselves.
func TestPutBuildsOnce(t *testing.T) {
	d, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	waiters := make(chan string, 8)
	d.onWait = func(key string) { waiters <- key }
	var builds atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	build := func(dir string) (int64, error) {
		if builds.Add(1) == 1 {
			close(started)
			<-release // hold the first build until the others wait on it
		}
		return 4, os.WriteFile(filepath.Join(dir, "data"), []byte("tree"), 0o644)
	}
	var wg sync.WaitGroup
	entries := make([]*Entry, 4)
	errs := make([]error, 4)
	wg.Add(1)
	go func() { defer wg.Done(); entries[0], errs[0] = d.Put("k1", build) }()
	<-started
	for i := 1; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); entries[i], errs[i] = d.Put("k1", build) }()
	}
	for range 3 {
		<-waiters
	}
	close(release)
	wg.Wait()
	for i := range entries {
		if errs[i] != nil || entries[i] == nil {
			t.Fatalf("Put %d: %v, %v", i, entries[i], errs[i])
		}
		if entries[i].Path != entries[0].Path {
			t.Errorf("Put %d: entry %s, want %s", i, entries[i].Path, entries[0].Path)
		}
		entries[i].Release()
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds of one key, want 1", n)
	}

	// A failing build: its caller gets the error, a waiter builds anew.
	fail, waiting := make(chan struct{}), make(chan struct{})
	var werr error
	var went *Entry
	go func() {
		<-waiting
		went, werr = d.Put("k2", func(dir string) (int64, error) {
			return 1, os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
		})
		close(fail)
	}()
	_, err = d.Put("k2", func(string) (int64, error) {
		close(waiting)
		if k := <-waiters; k != "k2" {
			t.Errorf("waiting for %q", k)
		}
		return 0, errors.New("cancelled")
	})
	if err == nil {
		t.Fatal("a failing build succeeded")
	}
	<-fail
	if werr != nil || went == nil {
		t.Fatalf("the waiter of a failed build: %v, %v", went, werr)
	}
	went.Release()
}
