package regstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// registryRoot is where the registry keeps everything on its driver.
const registryRoot = "/docker/registry/v2"

// place says which driver holds a path.
type place int

const (
	inBlobs place = iota // blob data, uploads, staging: the blob driver
	inIndex              // a repository's links and descriptors: the index
	inBoth               // a directory above the split: both may hold children
)

// indexDirs are the repository subdirectories the index holds. Repository
// name components never start with "_", so the first one of these in a
// path marks the split.
var indexDirs = map[string]bool{"_manifests": true, "_layers": true, "_referrers": true}

// route says where p lives.
func route(p string) place {
	rest, ok := strings.CutPrefix(p, registryRoot+"/repositories")
	if !ok {
		if p == "/" || registryRoot == p || strings.HasPrefix(registryRoot, p+"/") {
			return inBoth
		}
		return inBlobs
	}
	if rest != "" && !strings.HasPrefix(rest, "/") {
		return inBlobs // a sibling of repositories/ with a longer name
	}
	for c := range strings.SplitSeq(strings.TrimPrefix(rest, "/"), "/") {
		if strings.HasPrefix(c, "_") {
			if indexDirs[c] {
				return inIndex
			}
			return inBlobs // _uploads
		}
	}
	return inBoth
}

// Split is a storage driver that keeps each repository's index (tags,
// manifest revisions and media types, layer links, referrers) in the
// database and everything else (blob data, uploads) on the blob driver. It
// is what makes a tag read after a write on another replica consistent,
// and a manifest HEAD answerable without a round trip to object storage.
type Split struct {
	blobs storagedriver.StorageDriver
	index *SQLDriver
}

var _ storagedriver.StorageDriver = (*Split)(nil)

// NewSplit returns the driver over blobs and index.
func NewSplit(blobs storagedriver.StorageDriver, index *SQLDriver) *Split {
	return &Split{blobs: blobs, index: index}
}

func (s *Split) pick(p string) storagedriver.StorageDriver {
	if route(p) == inIndex {
		return s.index
	}
	return s.blobs
}

// Name implements storagedriver.StorageDriver.
func (s *Split) Name() string { return s.blobs.Name() + "+" + s.index.Name() }

// AtomicPut reports whether PutContent replaces p atomically: always in the
// index, on the blob driver when it says so.
func (s *Split) AtomicPut(p string) bool {
	if route(p) == inIndex {
		return true
	}
	ap, ok := s.blobs.(interface{ AtomicPut(string) bool })
	return ok && ap.AtomicPut(p)
}

// GetContent implements storagedriver.StorageDriver.
func (s *Split) GetContent(ctx context.Context, p string) ([]byte, error) {
	return s.pick(p).GetContent(ctx, p)
}

// PutContent implements storagedriver.StorageDriver.
func (s *Split) PutContent(ctx context.Context, p string, content []byte) error {
	return s.pick(p).PutContent(ctx, p, content)
}

// Reader implements storagedriver.StorageDriver.
func (s *Split) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	return s.pick(p).Reader(ctx, p, offset)
}

// Writer implements storagedriver.StorageDriver.
func (s *Split) Writer(ctx context.Context, p string, append bool) (storagedriver.FileWriter, error) {
	return s.pick(p).Writer(ctx, p, append)
}

// Stat implements storagedriver.StorageDriver.
func (s *Split) Stat(ctx context.Context, p string) (storagedriver.FileInfo, error) {
	if route(p) != inBoth {
		return s.pick(p).Stat(ctx, p)
	}
	fi, err := s.index.Stat(ctx, p)
	if err == nil || !isNotFound(err) {
		return fi, err
	}
	return s.blobs.Stat(ctx, p)
}

// List implements storagedriver.StorageDriver.
func (s *Split) List(ctx context.Context, p string) ([]string, error) {
	if route(p) != inBoth {
		return s.pick(p).List(ctx, p)
	}
	a, errA := s.index.List(ctx, p)
	b, errB := s.blobs.List(ctx, p)
	if errA != nil && !isNotFound(errA) {
		return nil, errA
	}
	if errB != nil && !isNotFound(errB) {
		return nil, errB
	}
	if errA != nil && errB != nil {
		return nil, errA
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range append(a, b...) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Move implements storagedriver.StorageDriver. A move across the two
// drivers (never needed by the registry, whose index writes are atomic
// puts) copies and deletes.
func (s *Split) Move(ctx context.Context, src, dst string) error {
	from, to := s.pick(src), s.pick(dst)
	if from == to {
		return from.Move(ctx, src, dst)
	}
	b, err := from.GetContent(ctx, src)
	if err != nil {
		return err
	}
	if err := to.PutContent(ctx, dst, b); err != nil {
		return err
	}
	return from.Delete(ctx, src)
}

// Delete implements storagedriver.StorageDriver.
func (s *Split) Delete(ctx context.Context, p string) error {
	if route(p) != inBoth {
		return s.pick(p).Delete(ctx, p)
	}
	errA := s.index.Delete(ctx, p)
	errB := s.blobs.Delete(ctx, p)
	switch {
	case errA != nil && !isNotFound(errA):
		return errA
	case errB != nil && !isNotFound(errB):
		return errB
	case errA != nil && errB != nil:
		return errA
	}
	return nil
}

// RedirectURL implements storagedriver.StorageDriver.
func (s *Split) RedirectURL(r *http.Request, p string) (string, error) {
	return s.pick(p).RedirectURL(r, p)
}

// Walk implements storagedriver.StorageDriver.
func (s *Split) Walk(ctx context.Context, p string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	if route(p) != inBoth {
		return s.pick(p).Walk(ctx, p, f, options...)
	}
	return storagedriver.WalkFallback(ctx, s, p, f, options...)
}

func isNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}

// Index returns the index driver (for copies and checks).
func (s *Split) Index() *SQLDriver { return s.index }

// Blobs returns the blob driver.
func (s *Split) Blobs() storagedriver.StorageDriver { return s.blobs }

func (s *Split) String() string { return fmt.Sprintf("%s (index in the database)", s.blobs.Name()) }
