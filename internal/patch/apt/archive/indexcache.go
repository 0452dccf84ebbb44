package archive

import (
	"container/list"
	"sync"
	"weak"
)

// DefaultParsedIndexMemory bounds the parsed indexes a process keeps in
// memory between patches (see SetParsedIndexMemory; a server's
// patch.indexMemory): one release's main, updates and security indexes
// for one architecture (a main suite's parsed index is 24–32 MB, the
// others 1–2 MB). Images of one release patched one after another share
// them; another release's are read again from the disk cache (a few
// tenths of a second), which costs less than the memory: the Go heap
// grows to twice what it keeps live, so four releases kept (128 MiB)
// made a workflow's process reach 340–440 MB.
const DefaultParsedIndexMemory = 48 << 20

// parsedIndexes is the process's parsed indexes, by the SHA256 the signed
// Release gives the index: a server patching many images of one release
// (a workflow) reads and checks each index once, and every Repo decodes
// only the packages it looks at from the shared, immutable encoding.
var parsedIndexes = newIndexCache(DefaultParsedIndexMemory)

// SetParsedIndexMemory bounds the bytes of parsed indexes the process
// keeps in memory between patches (least recently used go first; 0: keep
// none). An index in use stays in memory while it is used, whatever the
// bound.
func SetParsedIndexMemory(max int64) {
	parsedIndexes.setMax(max)
}

// ParsedIndexMemory returns the bound SetParsedIndexMemory set.
func ParsedIndexMemory() int64 {
	parsedIndexes.mu.Lock()
	defer parsedIndexes.mu.Unlock()
	return parsedIndexes.max
}

// indexCache is an LRU of loaded indexes bounded by bytes, which loads
// each key once when several goroutines want it at the same time.
type indexCache struct {
	mu       sync.Mutex
	max      int64
	size     int64
	reserved int64                    // bytes of indexes being loaded (see reserve)
	lru      *list.List               // of *indexCacheEntry, most recent first
	byKey    map[string]*list.Element // keys in lru
	loading  map[string]*indexLoad
	// evicted finds an index the bound evicted while a Repo still uses
	// it: a second user then shares it instead of loading a second copy
	// (a workflow's plans and patches alternate between platforms and
	// releases, so an index in use is often evicted).
	evicted map[string]weak.Pointer[packageIndex]
}

type indexCacheEntry struct {
	key string
	idx *packageIndex
}

type indexLoad struct {
	done chan struct{}
	idx  *packageIndex
}

func newIndexCache(max int64) *indexCache {
	return &indexCache{max: max, lru: list.New(), byKey: map[string]*list.Element{}, loading: map[string]*indexLoad{},
		evicted: map[string]weak.Pointer[packageIndex]{}}
}

func (c *indexCache) setMax(max int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max = max
	c.trim()
}

// get returns the index of key, loading it with load (nil, nil: there is
// none) when the cache lacks it. Concurrent gets of one key share one
// load; a load that fails or finds nothing is not remembered.
func (c *indexCache) get(key string, load func() (*packageIndex, error)) (*packageIndex, error) {
	for {
		c.mu.Lock()
		if el, ok := c.byKey[key]; ok {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return el.Value.(*indexCacheEntry).idx, nil
		}
		if idx := c.evicted[key].Value(); idx != nil {
			c.addLocked(key, idx)
			c.mu.Unlock()
			return idx, nil
		}
		if l, ok := c.loading[key]; ok {
			c.mu.Unlock()
			<-l.done
			if l.idx != nil {
				return l.idx, nil
			}
			continue // that load failed: try ourselves
		}
		l := &indexLoad{done: make(chan struct{})}
		c.loading[key] = l
		c.mu.Unlock()

		idx, err := load()
		c.mu.Lock()
		delete(c.loading, key)
		if err == nil && idx != nil {
			l.idx = idx
			c.addLocked(key, idx)
		}
		c.mu.Unlock()
		close(l.done)
		return idx, err
	}
}

// put remembers idx as key's index.
func (c *indexCache) put(key string, idx *packageIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(key, idx)
}

func (c *indexCache) addLocked(key string, idx *packageIndex) {
	if el, ok := c.byKey[key]; ok {
		c.size -= el.Value.(*indexCacheEntry).idx.bytes()
		c.lru.Remove(el)
	}
	delete(c.evicted, key)
	c.byKey[key] = c.lru.PushFront(&indexCacheEntry{key: key, idx: idx})
	c.size += idx.bytes()
	c.trim()
}

// reserve makes room for an index of about n bytes about to be loaded or
// parsed, and returns the function that gives the room back (before the
// index is added): the least recently used indexes go before the new one
// is built rather than after, so that a process moving from one release
// to the next does not hold the old release's indexes (24–32 MB for a
// main suite) beside the new one's parse. The Go heap grows to twice
// what is live at its peak, and its peak was there.
func (c *indexCache) reserve(n int64) (release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved += n
	c.trim()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.reserved -= n
			c.mu.Unlock()
		})
	}
}

// trim drops the least recently used indexes over the bound, counting
// the room reserved for indexes being loaded.
func (c *indexCache) trim() {
	for c.size+c.reserved > c.max && c.lru.Len() > 0 {
		el := c.lru.Back()
		e := el.Value.(*indexCacheEntry)
		c.lru.Remove(el)
		delete(c.byKey, e.key)
		c.size -= e.idx.bytes()
		for k, w := range c.evicted {
			if w.Value() == nil {
				delete(c.evicted, k)
			}
		}
		c.evicted[e.key] = weak.Make(e.idx)
	}
}

// drop forgets key (a test's way to read an index from disk again).
func (c *indexCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.size -= el.Value.(*indexCacheEntry).idx.bytes()
		c.lru.Remove(el)
		delete(c.byKey, key)
	}
	delete(c.evicted, key)
}
