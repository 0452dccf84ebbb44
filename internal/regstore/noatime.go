package regstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"golang.org/x/sys/unix"
)

// readThreads bounds the reads NoAtime has in flight at once, as
// distribution's filesystem driver bounds its own operations (its default
// maxthreads): each open or directory listing holds an operating-system
// thread while it blocks.
const readThreads = 100

// NoAtime returns the filesystem driver d, rooted at root, with reads
// (GetContent, Reader, List, Walk) that leave files' and directories'
// access times alone (O_NOATIME); everything else goes to d, once its
// paths are checked (see fullPath).
//
// The registry never uses access times, but the default mount option,
// relatime, updates a file's on its first read after it was written. Each
// update dirties the file's inode table block, which only a later sync or
// the kernel's writeback writes. A garbage collection reads every link and
// manifest of the store once: over 100,000 blobs, about 50 MB of inode
// table blocks dirtied within a second, that the pushes' own syncs then
// wait behind. Opening with O_NOATIME needs the caller to own the file (or
// CAP_FOWNER); a file it does not own is opened as usual.
func NoAtime(d storagedriver.StorageDriver, root string) storagedriver.StorageDriver {
	return &noAtime{StorageDriver: d, root: root, slots: make(chan struct{}, readThreads)}
}

type noAtime struct {
	storagedriver.StorageDriver
	root  string
	slots chan struct{}
}

// fullPath checks a driver path as distribution's drivers do ("/" is the
// root, which only List takes), and more: their grammar lets "." and ".."
// through, which would name a file outside the root. It maps the path
// under the root.
func (d *noAtime) fullPath(path string) (string, error) {
	if (!storagedriver.PathRegexp.MatchString(path) && path != "/") || dotElement(path) {
		return "", storagedriver.InvalidPathError{Path: path, DriverName: d.Name()}
	}
	return filepath.Join(d.root, path), nil
}

// open opens name read-only without updating its access time, taking one
// of the read slots for the open itself.
func (d *noAtime) open(ctx context.Context, path, name string) (*os.File, error) {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-d.slots }()
	f, err := openNoAtime(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, storagedriver.PathNotFoundError{Path: path, DriverName: d.Name()}
	}
	if err != nil {
		return nil, storagedriver.Error{DriverName: d.Name(), Detail: err}
	}
	return f, nil
}

// openNoAtime opens name read-only with O_NOATIME, or without it when the
// kernel refuses it (EPERM: the process neither owns the file nor has
// CAP_FOWNER), so that such a file is read anyway.
func openNoAtime(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		return os.Open(name)
	}
	return f, err
}

// GetContent reads the whole file at path.
func (d *noAtime) GetContent(ctx context.Context, path string) ([]byte, error) {
	rc, err := d.Reader(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, storagedriver.Error{DriverName: d.Name(), Detail: fmt.Errorf("reading %s: %w", path, err)}
	}
	return b, nil
}

// Reader opens the file at path from offset.
func (d *noAtime) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, storagedriver.InvalidOffsetError{Path: path, Offset: offset, DriverName: d.Name()}
	}
	if path == "/" {
		return nil, storagedriver.InvalidPathError{Path: path, DriverName: d.Name()}
	}
	name, err := d.fullPath(path)
	if err != nil {
		return nil, err
	}
	f, err := d.open(ctx, path, name)
	if err != nil {
		return nil, err
	}
	// As distribution's filesystem driver: an offset past the end reads
	// nothing.
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, storagedriver.Error{DriverName: d.Name(), Detail: err}
		}
	}
	return f, nil
}

// List lists the directory at path: its entries' paths, in no order.
func (d *noAtime) List(ctx context.Context, path string) ([]string, error) {
	name, err := d.fullPath(path)
	if err != nil {
		return nil, err
	}
	dir, err := d.open(ctx, path, name)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	names, err := dir.Readdirnames(0)
	<-d.slots
	if err != nil {
		return nil, storagedriver.Error{DriverName: d.Name(), Detail: fmt.Errorf("listing %s: %w", path, err)}
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = filepath.Join(path, n)
	}
	return keys, nil
}

// Walk walks the tree at path through this driver's List and Stat.
func (d *noAtime) Walk(ctx context.Context, path string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	return storagedriver.WalkFallback(ctx, d, path, f, options...)
}

// dotElement reports whether path has a "." or ".." element.
func dotElement(path string) bool {
	return slices.ContainsFunc(strings.Split(path, "/"), func(e string) bool { return e == "." || e == ".." })
}

// checked refuses paths with "." or ".." elements, for the calls that go
// to the wrapped driver: distribution's filesystem driver checks its path
// grammar, which lets them through, and then joins the path under its
// root as given, so "/a/../../x" would write, move or delete outside it.
func (d *noAtime) checked(paths ...string) error {
	for _, p := range paths {
		if dotElement(p) {
			return storagedriver.InvalidPathError{Path: p, DriverName: d.Name()}
		}
	}
	return nil
}

// PutContent writes content at path, through the wrapped driver.
func (d *noAtime) PutContent(ctx context.Context, path string, content []byte) error {
	if err := d.checked(path); err != nil {
		return err
	}
	return d.StorageDriver.PutContent(ctx, path, content)
}

// Writer opens path for writing, through the wrapped driver.
func (d *noAtime) Writer(ctx context.Context, path string, append bool) (storagedriver.FileWriter, error) {
	if err := d.checked(path); err != nil {
		return nil, err
	}
	return d.StorageDriver.Writer(ctx, path, append)
}

// Stat describes path, through the wrapped driver.
func (d *noAtime) Stat(ctx context.Context, path string) (storagedriver.FileInfo, error) {
	if err := d.checked(path); err != nil {
		return nil, err
	}
	return d.StorageDriver.Stat(ctx, path)
}

// Move moves sourcePath to destPath, through the wrapped driver.
func (d *noAtime) Move(ctx context.Context, sourcePath, destPath string) error {
	if err := d.checked(sourcePath, destPath); err != nil {
		return err
	}
	return d.StorageDriver.Move(ctx, sourcePath, destPath)
}

// Delete deletes path and everything under it, through the wrapped driver.
func (d *noAtime) Delete(ctx context.Context, path string) error {
	if err := d.checked(path); err != nil {
		return err
	}
	return d.StorageDriver.Delete(ctx, path)
}
