package regstore

import (
	"bytes"
	"container/list"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// blobDataRE matches the content-addressed data path of a blob. What is
// stored there is named by its digest and never changes: only its presence
// can (it appears when a push completes), so a cache keyed by the path can
// keep what it read for as long as it likes, as long as it never keeps an
// absence.
var blobDataRE = regexp.MustCompile(`^/docker/registry/v2/blobs/(sha256|sha512)/[0-9a-f]{2}/[0-9a-f]{64,128}/data$`)

// Cache limits.
const (
	// DefaultCacheBytes bounds the contents a Cache keeps.
	DefaultCacheBytes = 64 << 20
	// maxCachedContent is the largest blob whose content is kept:
	// manifests and configs, not layers.
	maxCachedContent = 1 << 20
	// maxCacheEntries bounds the entries (a size alone costs little).
	maxCacheEntries = 200_000
)

// Cache is a storage driver decorator that remembers, per process, what it
// read of content-addressed blob data: sizes (Stat) and small contents
// (GetContent, Reader). A manifest HEAD or GET then needs no round trip to
// object storage once the manifest was read, and a pushed blob's existence
// check costs one. Nothing else is cached: tags and links change, and
// replicas must see each other's writes.
type Cache struct {
	storagedriver.StorageDriver
	maxBytes int64

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recent first
	byKey map[string]*list.Element
	bytes int64

	hits, misses int64
}

type cacheEntry struct {
	path    string
	info    storagedriver.FileInfo
	content []byte // nil when only the size is known
}

// NewCache wraps d with a cache of at most maxBytes of contents
// (DefaultCacheBytes when maxBytes <= 0).
func NewCache(d storagedriver.StorageDriver, maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &Cache{StorageDriver: d, maxBytes: maxBytes, lru: list.New(), byKey: map[string]*list.Element{}}
}

// AtomicPut passes the wrapped driver's answer on.
func (c *Cache) AtomicPut(p string) bool {
	ap, ok := c.StorageDriver.(interface{ AtomicPut(string) bool })
	return ok && ap.AtomicPut(p)
}

// Stats returns the cache's hits and misses so far.
func (c *Cache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

func (c *Cache) get(p string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[p]
	if !ok {
		c.misses++
		return nil
	}
	c.hits++
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

func (c *Cache) put(p string, info storagedriver.FileInfo, content []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[p]; ok {
		e := el.Value.(*cacheEntry)
		if content == nil || e.content != nil {
			c.lru.MoveToFront(el)
			return
		}
		c.bytes += int64(len(content))
		e.content = content
		c.lru.MoveToFront(el)
	} else {
		c.byKey[p] = c.lru.PushFront(&cacheEntry{path: p, info: info, content: content})
		c.bytes += int64(len(content))
	}
	for c.bytes > c.maxBytes || c.lru.Len() > maxCacheEntries {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.byKey, e.path)
		c.bytes -= int64(len(e.content))
	}
}

func (c *Cache) forget(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[p]; ok {
		c.bytes -= int64(len(el.Value.(*cacheEntry).content))
		c.lru.Remove(el)
		delete(c.byKey, p)
	}
}

func fileInfo(p string, size int64) storagedriver.FileInfo {
	return storagedriver.FileInfoInternal{FileInfoFields: storagedriver.FileInfoFields{Path: p, Size: size}}
}

// Stat implements storagedriver.StorageDriver.
func (c *Cache) Stat(ctx context.Context, p string) (storagedriver.FileInfo, error) {
	if !blobDataRE.MatchString(p) {
		return c.StorageDriver.Stat(ctx, p)
	}
	if e := c.get(p); e != nil {
		return e.info, nil
	}
	fi, err := c.StorageDriver.Stat(ctx, p)
	if err == nil && !fi.IsDir() {
		c.put(p, fi, nil)
	}
	return fi, err
}

// GetContent implements storagedriver.StorageDriver.
func (c *Cache) GetContent(ctx context.Context, p string) ([]byte, error) {
	if !blobDataRE.MatchString(p) {
		return c.StorageDriver.GetContent(ctx, p)
	}
	if e := c.get(p); e != nil && e.content != nil {
		return bytes.Clone(e.content), nil
	}
	b, err := c.StorageDriver.GetContent(ctx, p)
	if err == nil && len(b) <= maxCachedContent {
		c.put(p, fileInfo(p, int64(len(b))), bytes.Clone(b))
	}
	return b, err
}

// Reader implements storagedriver.StorageDriver: cached contents are served
// from memory; a small blob read to its end from the start is kept.
func (c *Cache) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if !blobDataRE.MatchString(p) {
		return c.StorageDriver.Reader(ctx, p, offset)
	}
	if e := c.get(p); e != nil && e.content != nil && offset >= 0 && offset <= int64(len(e.content)) {
		return io.NopCloser(bytes.NewReader(e.content[offset:])), nil
	}
	rc, err := c.StorageDriver.Reader(ctx, p, offset)
	if err != nil || offset != 0 {
		return rc, err
	}
	return &teeReader{rc: rc, c: c, path: p}, nil
}

// teeReader keeps what it reads, up to maxCachedContent, and caches it when
// the blob is read to its end.
type teeReader struct {
	rc   io.ReadCloser
	c    *Cache
	path string
	buf  []byte
	over bool
}

func (t *teeReader) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	if !t.over {
		if len(t.buf)+n > maxCachedContent {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, b[:n]...)
		}
	}
	if err == io.EOF && !t.over {
		t.c.put(t.path, fileInfo(t.path, int64(len(t.buf))), t.buf)
		t.over = true // once
	}
	return n, err
}

func (t *teeReader) Close() error { return t.rc.Close() }

// Move implements storagedriver.StorageDriver.
func (c *Cache) Move(ctx context.Context, src, dst string) error {
	c.forget(src)
	c.forget(dst)
	return c.StorageDriver.Move(ctx, src, dst)
}

const blobsRoot = "/docker/registry/v2/blobs"

// Delete implements storagedriver.StorageDriver.
func (c *Cache) Delete(ctx context.Context, p string) error {
	if !strings.HasPrefix(p, blobsRoot) && !strings.HasPrefix(blobsRoot, p) {
		return c.StorageDriver.Delete(ctx, p) // nothing cached below p
	}
	c.mu.Lock()
	for k, el := range c.byKey {
		if k == p || (len(k) > len(p) && k[:len(p)] == p && k[len(p)] == '/') {
			c.bytes -= int64(len(el.Value.(*cacheEntry).content))
			c.lru.Remove(el)
			delete(c.byKey, k)
		}
	}
	c.mu.Unlock()
	return c.StorageDriver.Delete(ctx, p)
}
