// Package cache keeps the patch engine's content-keyed caches on disk: an
// entry is a directory named by a key derived from the content it was
// made from (a layer digest, a verified index hash, an image digest), so
// an entry is never stale — a different input has a different key. Each
// cache is bounded in bytes and evicts its least recently used entries;
// entries in use are locked (flock) and never evicted. Callers detect a
// corrupt entry by the checks they store with it and Discard it.
//
// An entry is built in a temporary directory and renamed into place, so
// a crash never leaves a half-built entry under its key; two processes
// building the same key both succeed and one result is kept. Within a
// process, a key is built once at a time: a Put that finds another
// building it waits for that build and uses its entry (see Put).
package cache

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Files inside an entry's directory, besides the content.
const (
	lockFile = ".lock" // flocked shared while used, exclusively to evict
	sizeFile = ".size" // the entry's size in bytes, written at Put
	usedFile = ".used" // its modification time is the entry's last use
)

// Dir is one cache: a directory of entries.
type Dir struct {
	root   string
	max    int64
	remove func(path string) error
	now    func() time.Time

	mu       sync.Mutex
	building map[string]*flight // keys being built by a Put of this process
	onWait   func(key string)   // tests: a Put waits for another's build
}

// flight is one Put's build of a key; done is closed when it ends, ok
// then says whether it stored the entry.
type flight struct {
	done chan struct{}
	ok   bool
}

// Option configures Open.
type Option func(*Dir) error

// WithRemove removes entries with fn instead of os.RemoveAll (for trees
// whose files the process cannot remove itself, e.g. owned by the ids of
// a user namespace).
func WithRemove(fn func(path string) error) Option {
	return func(d *Dir) error {
		if fn == nil {
			return errors.New("cache.WithRemove: nil function")
		}
		d.remove = fn
		return nil
	}
}

// Open returns the cache in root, holding at most max bytes (0: no
// bound); root is created when missing.
func Open(root string, max int64, opts ...Option) (*Dir, error) {
	if max < 0 {
		return nil, fmt.Errorf("cache %s: negative size bound %d", root, max)
	}
	d := &Dir{root: root, max: max, remove: os.RemoveAll, now: time.Now}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return d, nil
}

// Root is the cache's directory.
func (d *Dir) Root() string { return d.root }

// Entry is a cache entry in use: its content lives under Path until
// Release.
type Entry struct {
	Path string
	lock *os.File
}

// Release lets the entry be evicted again.
func (e *Entry) Release() {
	if e != nil && e.lock != nil {
		e.lock.Close() // drops the flock
		e.lock = nil
	}
}

// validKey accepts the keys the engine makes: lower-case hex and dashes.
func validKey(k string) bool {
	if k == "" || len(k) > 128 || strings.HasPrefix(k, "tmp-") {
		return false
	}
	for _, c := range k {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// Get returns the entry of key, locked for use, or nil when there is none.
func (d *Dir) Get(key string) (*Entry, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("cache: invalid key %q", key)
	}
	p := filepath.Join(d.root, key)
	lock, err := os.OpenFile(filepath.Join(p, lockFile), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_SH); err != nil {
		lock.Close()
		return nil, fmt.Errorf("cache: locking %s: %w", p, err)
	}
	// An evictor may have removed it between the open and the lock.
	if _, err := os.Stat(filepath.Join(p, sizeFile)); err != nil {
		lock.Close()
		return nil, nil
	}
	now := d.now()
	_ = os.Chtimes(filepath.Join(p, usedFile), now, now)
	return &Entry{Path: p, lock: lock}, nil
}

// Put builds the entry of key with build, which fills dir (a new, empty
// directory) and returns the bytes it stored; the entry is then renamed
// into place, locked for use and returned, and older entries are evicted
// while the cache is over its bound. When another process put the key
// first, its entry is returned and this one discarded.
//
// While another Put of this Dir builds key, Put waits for it and returns
// its entry; when that build failed (its own context cancelled, say),
// this Put builds with its own build function, so a build's error is
// reported only to the caller whose build it was.
func (d *Dir) Put(key string, build func(dir string) (int64, error)) (*Entry, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("cache: invalid key %q", key)
	}
	for {
		d.mu.Lock()
		if f := d.building[key]; f != nil {
			d.mu.Unlock()
			if d.onWait != nil {
				d.onWait(key)
			}
			<-f.done
			if f.ok {
				if e, err := d.Get(key); e != nil || err != nil {
					return e, err
				}
			}
			continue // failed, or evicted since: build it here
		}
		if d.building == nil {
			d.building = map[string]*flight{}
		}
		f := &flight{done: make(chan struct{})}
		d.building[key] = f
		d.mu.Unlock()
		e, err := d.put(key, build)
		d.mu.Lock()
		delete(d.building, key)
		d.mu.Unlock()
		f.ok = err == nil
		close(f.done)
		return e, err
	}
}

// put is Put's build, rename and eviction.
func (d *Dir) put(key string, build func(dir string) (int64, error)) (*Entry, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(d.root, "tmp-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	size, err := build(tmp)
	if err == nil {
		err = writeMeta(tmp, size)
	}
	if err != nil {
		_ = d.remove(tmp)
		return nil, err
	}
	dst := filepath.Join(d.root, key)
	if err := os.Rename(tmp, dst); err != nil {
		_ = d.remove(tmp)
		if e, gerr := d.Get(key); e != nil || gerr != nil {
			return e, gerr
		}
		return nil, fmt.Errorf("cache: storing %s: %w", key, err)
	}
	e, err := d.Get(key)
	if err != nil || e == nil {
		return nil, fmt.Errorf("cache: entry %s vanished after it was stored: %v", key, err)
	}
	if err := d.Evict(); err != nil {
		e.Release()
		return nil, err
	}
	return e, nil
}

func writeMeta(dir string, size int64) error {
	for _, f := range []struct {
		name string
		data string
	}{{lockFile, ""}, {usedFile, ""}, {sizeFile, strconv.FormatInt(size, 10)}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), 0o644); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
	}
	return nil
}

// Discard removes the entry e (found corrupt), which the caller holds;
// e is released.
func (d *Dir) Discard(e *Entry) error {
	p := e.Path
	e.Release()
	return d.removeEntry(p)
}

// removeEntry removes an entry unless it is in use; it first moves the
// directory aside, so no reader finds a half-removed entry.
func (d *Dir) removeEntry(p string) error {
	lock, err := os.OpenFile(filepath.Join(p, lockFile), os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return d.remove(p)
		}
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // in use: it stays
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	aside := filepath.Join(d.root, "tmp-"+hex.EncodeToString(rnd[:]))
	if err := os.Rename(p, aside); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return d.remove(aside)
}

type entryInfo struct {
	path string
	size int64
	used time.Time
}

// Size returns the bytes the cache's entries hold.
func (d *Dir) Size() (int64, error) {
	es, err := d.entries()
	var n int64
	for _, e := range es {
		n += e.size
	}
	return n, err
}

func (d *Dir) entries() ([]entryInfo, error) {
	des, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	var out []entryInfo
	for _, de := range des {
		if !de.IsDir() || !validKey(de.Name()) {
			continue
		}
		p := filepath.Join(d.root, de.Name())
		b, err := os.ReadFile(filepath.Join(p, sizeFile))
		if err != nil {
			continue
		}
		size, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		var used time.Time
		if fi, err := os.Stat(filepath.Join(p, usedFile)); err == nil {
			used = fi.ModTime()
		}
		out = append(out, entryInfo{path: p, size: size, used: used})
	}
	return out, nil
}

// Evict removes least recently used entries not in use until the cache
// holds at most its bound.
func (d *Dir) Evict() error {
	if d.max == 0 {
		return nil
	}
	es, err := d.entries()
	if err != nil {
		return err
	}
	var total int64
	for _, e := range es {
		total += e.size
	}
	slices.SortFunc(es, func(a, b entryInfo) int { return a.used.Compare(b.used) })
	for _, e := range es {
		if total <= d.max {
			break
		}
		before, _ := os.Stat(e.path)
		if err := d.removeEntry(e.path); err != nil {
			return err
		}
		if _, err := os.Stat(e.path); before != nil && errors.Is(err, fs.ErrNotExist) {
			total -= e.size
		}
	}
	return nil
}

// ErrCorrupt is wrapped by ReadFile when a file's content does not match
// the checksum written with it.
var ErrCorrupt = errors.New("cache: corrupt file")

// WriteFile writes the parts, one after another, to name followed by a
// trailer (their length and CRC-32C), through a temporary file and a
// rename, so readers see the whole file or none.
//
// The trailer detects damage (a torn write, a truncated copy, a flipped
// bit on disk), which is all it is for: it is no defence against someone
// who can write the cache, who could recompute any checksum stored beside
// the data. What makes an entry trustworthy is its key, derived from
// verified content (a digest, the hash a signed Release gives), and that
// only drydock builds entries, from content it verified first. CRC-32C
// runs in hardware (SSE 4.2, ARMv8 CRC), tens of times faster than
// SHA-256, which mattered: checking a main suite's parsed index (28 MB)
// with SHA-256 was a tenth of a warm patch's own CPU time.
func WriteFile(name string, parts ...[]byte) error {
	tmp := name + ".tmp-" + strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, p := range parts {
		if err == nil {
			_, err = f.Write(p)
		}
	}
	if err == nil {
		_, err = f.Write(trailer(parts))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// trailerSize is the size of what WriteFile appends: "ddk1", the data's
// length (8 bytes) and its CRC-32C (4 bytes), big-endian.
const trailerSize = 4 + 8 + 4

const trailerMagic = "ddk1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func trailer(parts [][]byte) []byte {
	n, sum := 0, uint32(0)
	for _, p := range parts {
		n += len(p)
		sum = crc32.Update(sum, castagnoli, p)
	}
	t := make([]byte, 0, trailerSize)
	t = append(t, trailerMagic...)
	t = binary.BigEndian.AppendUint64(t, uint64(n))
	return binary.BigEndian.AppendUint32(t, sum)
}

// ReadFile reads a file WriteFile wrote and checks its trailer: a
// mismatch (a damaged or truncated file, or one written in an older
// format) is ErrCorrupt.
func ReadFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if len(b) < trailerSize {
		return nil, fmt.Errorf("%w: %s is truncated", ErrCorrupt, name)
	}
	data, t := b[:len(b)-trailerSize], b[len(b)-trailerSize:]
	if string(t) != string(trailer([][]byte{data})) {
		return nil, fmt.Errorf("%w: %s does not match its checksum", ErrCorrupt, name)
	}
	return data, nil
}

// Grow adds n bytes to the entry's recorded size (content added after
// Put), so that eviction counts them.
func (e *Entry) Grow(n int64) {
	p := filepath.Join(e.Path, sizeFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	size, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	_ = os.WriteFile(p, []byte(strconv.FormatInt(size+n, 10)), 0o644)
}
