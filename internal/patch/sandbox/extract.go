package sandbox

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Bounds on what the sandbox's processes write and read.
const (
	maxEntries     = 1 << 20 // entries of a tree or a tar stream
	defaultMaxTree = 64 << 30
)

// extractor writes a tar stream into root, as its owner says (the process
// runs as root of the sandbox's user namespace, so ids map as the image
// has them). ".wh.NAME" entries remove NAME. No symbolic link is followed
// on the way to an entry: a parent that is not a directory is an error.
type extractor struct {
	root    string
	max     int64
	written int64
	entries int
	limit   int               // entries at most (maxEntries)
	sums    map[string]string // path -> sha256 of the regular files written
	dirs    map[string]bool   // directories known to be real ones: no Lstat again
	buf     []byte
}

func newExtractor(root string, max int64) *extractor {
	if max <= 0 {
		max = defaultMaxTree
	}
	return &extractor{root: root, max: max, limit: maxEntries, sums: map[string]string{}, dirs: map[string]bool{}, buf: make([]byte, 256<<10)}
}

// removeAll removes the image path name (host path p) and forgets what
// was known of it and of the paths under it.
func (x *extractor) removeAll(name, p string) error {
	for d := range x.dirs {
		if d == name || strings.HasPrefix(d, name+"/") {
			delete(x.dirs, d)
		}
	}
	for f := range x.sums {
		if f == name || strings.HasPrefix(f, name+"/") {
			delete(x.sums, f)
		}
	}
	return os.RemoveAll(p)
}

// within returns the host path of the image path name: every parent must
// be a real directory (created when missing, with mode 0755).
func (x *extractor) within(name string) (string, error) {
	name = path.Clean("/" + name)[1:]
	if name == "" {
		return x.root, nil
	}
	parent, base := path.Split(name)
	parent = strings.TrimSuffix(parent, "/")
	if parent == "" || x.dirs[parent] {
		return filepath.Join(x.root, name), nil
	}
	cur := x.root
	parts := strings.Split(parent, "/")
	for i, p := range parts {
		cur = filepath.Join(cur, p)
		rel := strings.Join(parts[:i+1], "/")
		if x.dirs[rel] {
			continue
		}
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(cur, 0o755); err != nil {
				return "", err
			}
			x.dirs[rel] = true
			continue
		}
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s: parent %s is not a directory", name, strings.TrimPrefix(cur, x.root))
		}
		x.dirs[rel] = true
	}
	return filepath.Join(cur, base), nil
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if x.entries++; x.entries > x.limit {
			return fmt.Errorf("more than %d entries", x.limit)
		}
		if err := x.entry(h, tr); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

func (x *extractor) entry(h *tar.Header, tr *tar.Reader) error {
	name := path.Clean("/" + h.Name)[1:]
	if name == "" || strings.ContainsRune(name, 0) {
		return nil
	}
	dir, base := path.Split(name)
	if strings.HasPrefix(base, ".wh.") {
		if base == ".wh..wh..opq" {
			return nil // flattened streams carry none; the changeset never does
		}
		p, err := x.within(path.Join(dir, strings.TrimPrefix(base, ".wh.")))
		if err != nil {
			return err
		}
		target := path.Join(dir, strings.TrimPrefix(base, ".wh."))
		delete(x.sums, target)
		return x.removeAll(target, p)
	}
	p, err := x.within(name)
	if err != nil {
		return err
	}
	delete(x.sums, name)
	// Most entries are new: make them at once, and clear what is in the
	// way only when the kernel says something is there.
	create := func(mk func() error) error {
		err := mk()
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if fi, lerr := os.Lstat(p); lerr == nil && fi.IsDir() && h.Typeflag == tar.TypeDir {
			return nil
		}
		if err := x.removeAll(name, p); err != nil {
			return err
		}
		return mk()
	}
	mode := fs.FileMode(h.Mode&0o777) | specialBits(h.Mode)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := create(func() error { return os.Mkdir(p, 0o755) }); err != nil {
			return err
		}
		x.dirs[name] = true
	case tar.TypeReg:
		if x.written += h.Size; x.written > x.max {
			return fmt.Errorf("more than %d bytes", x.max)
		}
		var f *os.File
		if err := create(func() (err error) { f, err = createFile(p); return err }); err != nil {
			return err
		}
		hash := sha256.New()
		_, err = io.CopyBuffer(io.MultiWriter(f, hash), struct{ io.Reader }{tr}, x.buf)
		if err == nil {
			// Through the descriptor: no second walk of the path. The
			// owner first: a chown clears the setuid and setgid bits.
			if err = f.Chown(h.Uid, h.Gid); err != nil {
				err = ownerError(h, err)
			} else {
				err = f.Chmod(mode)
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		x.sums[name] = hex.EncodeToString(hash.Sum(nil))
		setMtime(p, h)
		return nil
	case tar.TypeSymlink:
		if err := create(func() error { return os.Symlink(h.Linkname, p) }); err != nil {
			return err
		}
	case tar.TypeLink:
		target := path.Clean("/" + h.Linkname)[1:]
		src, err := x.within(target)
		if err != nil {
			return err
		}
		link := func() error {
			if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
				return fmt.Errorf("hard link to %s, which is not a regular file", target)
			}
			return os.Link(src, p)
		}
		if err := create(link); err != nil {
			return err
		}
		if s, ok := x.sums[target]; ok {
			x.sums[name] = s
		}
		return nil
	default:
		// Devices, FIFOs: not needed to run scripts; what was there goes.
		if _, err := os.Lstat(p); err == nil {
			return x.removeAll(name, p)
		}
		return nil
	}
	if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
		return ownerError(h, err)
	}
	if h.Typeflag != tar.TypeSymlink {
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	if h.Typeflag != tar.TypeDir {
		setMtime(p, h)
	}
	return nil
}

// createFile creates the new regular file p (no symbolic link followed),
// outside Go's poller: a file on disk never blocks, and the extractor
// writes thousands.
func createFile(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

func ownerError(h *tar.Header, err error) error {
	return fmt.Errorf("owner %d:%d: %w (the sandbox maps only the ids of its user namespace)", h.Uid, h.Gid, err)
}

// setMtime gives p (not following a symbolic link) the entry's time.
func setMtime(p string, h *tar.Header) {
	ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func specialBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// statEntry describes a path of a tree (not following symlinks),
// whether it is an opaque directory of overlayfs included.
func statEntry(p string, fi fs.FileInfo) (snapEntry, error) { return describe(p, fi, true) }

// describe is statEntry; opaque says whether to read the directory's
// opaque attribute (meaningless outside a writable layer).
func describe(p string, fi fs.FileInfo, opaque bool) (snapEntry, error) {
	e := snapEntry{Mode: fi.Mode(), Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID, e.Ino = int(st.Uid), int(st.Gid), st.Ino
		if fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			e.Whiteout = true
		}
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return e, err
		}
		e.Target = t
	case fi.IsDir():
		e.Size = 0
		if opaque {
			if v, err := xattr(p, "user.overlay.opaque"); err == nil && v == "y" {
				e.Opaque = true
			}
		}
	}
	if !fi.Mode().IsRegular() {
		e.MtimeNs = 0 // only files' times tell a rewrite; directories' change with their entries
	}
	return e, nil
}

func xattr(p, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// hashFile returns the sha256 of the regular file p (opened without
// following a symbolic link).
func hashFile(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// walkTree calls fn for every path of root (relative, slash-separated),
// parents first, without following links, skipping what skip rejects; a
// tree of more than maxEntries paths is an error.
func walkTree(root string, skip func(name string) bool, fn func(name, p string, fi fs.FileInfo) error) error {
	return walkTreeUpTo(root, maxEntries, skip, fn)
}

// walkTreeUpTo is walkTree with a bound of limit paths.
func walkTreeUpTo(root string, limit int, skip func(name string) bool, fn func(name, p string, fi fs.FileInfo) error) error {
	n := 0
	return filepath.Walk(root, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		name := filepath.ToSlash(strings.TrimPrefix(strings.TrimPrefix(p, root), "/"))
		if name == "" {
			return nil
		}
		if n++; n > limit {
			return fmt.Errorf("more than %d entries", limit)
		}
		if skip != nil && skip(name) {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return fn(name, p, fi)
	})
}

// Prepare extracts img's tree into the cache unless it is there already,
// so that a later Open finds it (backend.Preparer): the engine calls it
// while the indexes and packages download. An Open of the same image
// while Prepare extracts waits for that extraction instead of starting
// another (the cache builds a key once at a time); when Prepare fails or
// its context ends, nothing is left in the cache and Open extracts anew.
func (s *Sandbox) Prepare(ctx context.Context, img v1.Image) error {
	if err := s.setup(); err != nil {
		return err
	}
	e, err := s.tree(ctx, img)
	if err != nil {
		return err
	}
	e.Release()
	return nil
}
