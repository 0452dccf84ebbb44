package scan

import (
	"sync"

	"github.com/drydock-project/drydock/internal/version"
)

// maxMemoEntries bounds the memo; when full it starts over.
const maxMemoEntries = 1 << 20

// versionMemo remembers version comparisons. Images share package
// versions and the DB's fixed versions, so a rescan of many stored
// inventories compares the same pairs over and over, and parsing versions
// was most of its time.
type versionMemo struct {
	mu sync.Mutex
	m  map[[3]string]memoResult
}

type memoResult struct {
	n   int
	err error
}

func newVersionMemo() *versionMemo {
	return &versionMemo{m: map[[3]string]memoResult{}}
}

// compare orders a and b in ecosystem eco (see version.For), memoized.
func (v *versionMemo) compare(eco, a, b string) (int, error) {
	key := [3]string{eco, a, b}
	v.mu.Lock()
	r, ok := v.m[key]
	v.mu.Unlock()
	if ok {
		return r.n, r.err
	}
	c, err := version.For(eco)
	if err == nil {
		r.n, r.err = c.Compare(a, b)
	} else {
		r.err = err
	}
	v.mu.Lock()
	if len(v.m) >= maxMemoEntries {
		clear(v.m)
	}
	v.m[key] = r
	v.mu.Unlock()
	return r.n, r.err
}
