package patch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/patch/cache"
	"github.com/drydock-project/drydock/internal/rootfs"
)

// keepVersion names the files the engine keeps while indexing (osFiles
// and the backends' Needs) in layer cache keys; change it when they
// change. A record made with other rules is also refused by rootfs
// (ErrCacheMismatch), dropped and made again.
const keepVersion = "keep-v1"

// layerCache is rootfs.LayerCache on disk, in a cache.Dir: one entry per
// layer digest (and keep rule) holding the index record ("record") and
// the contents read lazily ("c-ORDINAL"), each with a checksum. The
// entries it uses stay locked until release.
type layerCache struct {
	dir    *cache.Dir
	keepID string
	mu     sync.Mutex
	held   map[string]*cache.Entry // by key
}

func newLayerCache(dir *cache.Dir, backends []string) *layerCache {
	slices.Sort(backends)
	return &layerCache{dir: dir, keepID: keepVersion + ":" + strings.Join(backends, ","), held: map[string]*cache.Entry{}}
}

func (c *layerCache) key(d v1.Hash) string {
	h := sha256.Sum256([]byte("rootfs-record-v1\n" + c.keepID + "\n" + d.String()))
	return hex.EncodeToString(h[:])
}

// entry returns the held entry of d, getting it from the cache when not
// held yet (nil when there is none).
func (c *layerCache) entry(d v1.Hash) (*cache.Entry, error) {
	k := c.key(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.held[k]; e != nil {
		return e, nil
	}
	e, err := c.dir.Get(k)
	if e != nil {
		c.held[k] = e
	}
	return e, err
}

func (c *layerCache) Layer(d v1.Hash) (*rootfs.LayerRecord, error) {
	e, err := c.entry(d)
	if err != nil || e == nil {
		return nil, err
	}
	data, err := cache.ReadFile(filepath.Join(e.Path, "record"))
	if err != nil {
		c.drop(d)
		return nil, nil // corrupt or half-gone: index the layer again
	}
	var rec rootfs.LayerRecord
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&rec); err != nil {
		c.drop(d)
		return nil, nil
	}
	return &rec, nil
}

func (c *layerCache) PutLayer(d v1.Hash, r *rootfs.LayerRecord) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(r); err != nil {
		return err
	}
	k := c.key(d)
	e, err := c.dir.Put(k, func(dir string) (int64, error) {
		return int64(buf.Len()), cache.WriteFile(filepath.Join(dir, "record"), buf.Bytes())
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.held[k]; old != nil {
		old.Release()
	}
	c.held[k] = e
	return nil
}

func contentFile(ordinal int) string { return "c-" + strconv.Itoa(ordinal) }

func (c *layerCache) Content(d v1.Hash, ordinal int) ([]byte, error) {
	e, err := c.entry(d)
	if err != nil || e == nil {
		return nil, err
	}
	p := filepath.Join(e.Path, contentFile(ordinal))
	data, err := cache.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		os.Remove(p) // corrupt: read from the layer again
		return nil, nil
	}
	return data, nil
}

func (c *layerCache) PutContent(d v1.Hash, ordinal int, data []byte) error {
	e, err := c.entry(d)
	if err != nil || e == nil {
		return err
	}
	if err := cache.WriteFile(filepath.Join(e.Path, contentFile(ordinal)), data); err != nil {
		return err
	}
	e.Grow(int64(len(data)))
	return nil
}

// drop removes the entry of d (found corrupt, or made with other rules).
func (c *layerCache) drop(d v1.Hash) {
	k := c.key(d)
	c.mu.Lock()
	e := c.held[k]
	delete(c.held, k)
	c.mu.Unlock()
	if e != nil {
		if err := c.dir.Discard(e); err != nil {
			_ = err // an entry another process holds stays; it is refused again next time
		}
	}
}

// forget drops the entries of an image's layers.
func (c *layerCache) forget(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if e, _ := c.entry(d); e != nil {
			c.drop(d)
		}
	}
	return nil
}

// release lets the entries used be evicted again, and evicts while the
// cache is over its bound: PutContent grows entries after their Put (the
// only other eviction), once per image rather than per file.
func (c *layerCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.held {
		e.Release()
		delete(c.held, k)
	}
	_ = c.dir.Evict() // an entry that cannot be removed now is evicted at a later Put
}

// readImage indexes img through the layer cache (when there is one). A
// cached record that does not fit is dropped and the image read again.
func (e *engine) readImage(ctx context.Context, img v1.Image, spool bool) (*rootfs.FS, *layerCache, error) {
	// The scanner's bounds on entries and layer sizes; the content
	// budget is the patcher's own (it keeps what its backends need).
	lim := e.o.scanLimits.WithDefaults()
	opts := []rootfs.Option{rootfs.WithContents(e.keep), rootfs.WithMaxEntries(lim.MaxEntries), rootfs.WithMaxLayerSize(lim.MaxLayerBytes)}
	if spool {
		opts = append(opts, rootfs.WithSpoolDir(e.o.tempDir))
	}
	if e.images == nil {
		fsys, err := rootfs.New(ctx, img, opts...)
		return fsys, nil, err
	}
	var names []string
	for f := range e.o.backends {
		names = append(names, string(f))
	}
	lc := newLayerCache(e.images, names)
	fsys, err := rootfs.New(ctx, img, append(opts, rootfs.WithLayerCache(lc))...)
	if errors.Is(err, rootfs.ErrCacheMismatch) {
		e.o.log.Warn("patch: a cached layer index does not fit: reading the layers again", "error", err)
		if ferr := lc.forget(img); ferr != nil {
			lc.release()
			return nil, nil, ferr
		}
		fsys, err = rootfs.New(ctx, img, append(opts, rootfs.WithLayerCache(lc))...)
	}
	if err != nil {
		lc.release()
		return nil, nil, fmt.Errorf("read image layers: %w", err)
	}
	return fsys, lc, nil
}
