package archive

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/drydock-project/drydock/internal/patch/cache"
)

// DefaultCacheSize bounds the archive cache: verified downloads (.debs,
// indexes) and parsed indexes.
const DefaultCacheSize = 4 << 30

// parsedFormat names the encoding of parsed indexes in their keys; change
// it when IndexPackage or the parser changes.
const parsedFormat = "parsed-v3-"

// store is the archive client's cache: every entry is named by the hash
// the signed Release (for an index) or the index (for a .deb) gives, so an
// entry is never stale. Entries in use stay locked until release.
type store struct {
	dir  *cache.Dir
	mu   sync.Mutex
	held []*cache.Entry
}

func openStore(dir string, max int64) (*store, error) {
	d, err := cache.Open(filepath.Join(dir, "store"), max)
	if err != nil {
		return nil, err
	}
	return &store{dir: d}, nil
}

func (s *store) hold(e *cache.Entry) {
	s.mu.Lock()
	s.held = append(s.held, e)
	s.mu.Unlock()
}

// release lets every entry used be evicted again.
func (s *store) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.held {
		e.Release()
	}
	s.held = nil
}

// file returns the path of the cached file of key (named name in its
// entry) when ok accepts it, else builds the entry with build (which
// writes the file at the path it is given, verified) and returns that. A
// cached file ok refuses (damaged) is built again in place: its key names
// its content, so whoever else uses the entry wants the same bytes.
func (s *store) file(key, name string, ok func(path string) (bool, error), build func(dst string) error) (string, error) {
	e, err := s.dir.Get(key)
	if err != nil {
		return "", err
	}
	if e != nil {
		p := filepath.Join(e.Path, name)
		good, err := ok(p)
		if err == nil && !good {
			tmp := p + ".rebuild-" + strconv.Itoa(os.Getpid())
			if err = build(tmp); err == nil {
				err = os.Rename(tmp, p)
			}
			os.Remove(tmp)
		}
		if err != nil {
			e.Release()
			return "", err
		}
		s.hold(e)
		return p, nil
	}
	e, err = s.dir.Put(key, func(dir string) (int64, error) {
		p := filepath.Join(dir, name)
		if err := build(p); err != nil {
			return 0, err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	})
	if err != nil {
		return "", err
	}
	s.hold(e)
	return filepath.Join(e.Path, name), nil
}

// parsed returns the parsed index of the index with SHA256 sum: the
// process's copy when it has one, else the cache's (loaded once however
// many goroutines ask); nil when neither has one (a damaged cached one is
// dropped).
func (s *store) parsed(sum string) *packageIndex {
	idx, _ := parsedIndexes.get(s.memKey(sum), func() (*packageIndex, error) {
		e, err := s.dir.Get(parsedFormat + sum)
		if err != nil || e == nil {
			return nil, err
		}
		defer e.Release()
		file := filepath.Join(e.Path, "packages")
		if fi, err := os.Stat(file); err == nil {
			defer parsedIndexes.reserve(fi.Size())()
		}
		data, err := cache.ReadFile(file)
		var idx *packageIndex
		if err == nil {
			idx, err = loadIndex(data)
		}
		if err != nil {
			s.dir.Discard(e)
			return nil, err
		}
		return idx, nil
	})
	return idx
}

// memKey is the key in parsedIndexes of the parsed index of the index
// with SHA256 sum: the process's memory stands for its cache directory
// (one, in practice), so a cache emptied or moved is read again.
func (s *store) memKey(sum string) string {
	return s.dir.Root() + "\x00" + parsedFormat + sum
}

// putParsed stores the parsed index of the index with SHA256 sum, which
// b built, in the cache and in the process's memory, and returns it.
func (s *store) putParsed(sum string, b *indexBuilder) (*packageIndex, error) {
	idx, parts := b.finish()
	parsedIndexes.put(s.memKey(sum), idx)
	size := int64(0)
	for _, p := range parts {
		size += int64(len(p))
	}
	e, err := s.dir.Put(parsedFormat+sum, func(dir string) (int64, error) {
		return size, cache.WriteFile(filepath.Join(dir, "packages"), parts...)
	})
	if err != nil {
		return idx, err
	}
	e.Release()
	return idx, nil
}
