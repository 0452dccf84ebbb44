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
	sums    map[string]string // path -> sha256 of the regular files written
	buf     []byte
}

func newExtractor(root string, max int64) *extractor {
	if max <= 0 {
		max = defaultMaxTree
	}
	return &extractor{root: root, max: max, sums: map[string]string{}, buf: make([]byte, 256<<10)}
}

// within returns the host path of the image path name: every parent must
// be a real directory (created when missing, with mode 0755).
func (x *extractor) within(name string) (string, error) {
	name = path.Clean("/" + name)[1:]
	if name == "" {
		return x.root, nil
	}
	cur := x.root
	parts := strings.Split(name, "/")
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(cur, 0o755); err != nil {
				return "", err
			}
			continue
		}
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s: parent %s is not a directory", name, strings.TrimPrefix(cur, x.root))
		}
	}
	return filepath.Join(cur, parts[len(parts)-1]), nil
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
		if x.entries++; x.entries > maxEntries {
			return fmt.Errorf("more than %d entries", maxEntries)
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
		delete(x.sums, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
		return os.RemoveAll(p)
	}
	p, err := x.within(name)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	delete(x.sums, name)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg:
		if x.written += h.Size; x.written > x.max {
			return fmt.Errorf("more than %d bytes", x.max)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		hash := sha256.New()
		_, err = io.CopyBuffer(io.MultiWriter(f, hash), struct{ io.Reader }{tr}, x.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		x.sums[name] = hex.EncodeToString(hash.Sum(nil))
	case tar.TypeSymlink:
		if err := os.Symlink(h.Linkname, p); err != nil {
			return err
		}
	case tar.TypeLink:
		target := path.Clean("/" + h.Linkname)[1:]
		src, err := x.within(target)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("hard link to %s, which is not a regular file", target)
		}
		if err := os.Link(src, p); err != nil {
			return err
		}
		if s, ok := x.sums[target]; ok {
			x.sums[name] = s
		}
		return nil
	default:
		return nil // devices, FIFOs: not needed to run scripts
	}
	if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
		return fmt.Errorf("owner %d:%d: %w (the sandbox maps only the ids of its user namespace)", h.Uid, h.Gid, err)
	}
	if h.Typeflag != tar.TypeSymlink {
		if err := os.Chmod(p, fs.FileMode(h.Mode&0o777)|specialBits(h.Mode)); err != nil {
			return err
		}
	}
	if h.Typeflag != tar.TypeDir {
		ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
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
// parents first, without following links, skipping what skip rejects.
func walkTree(root string, skip func(name string) bool, fn func(name, p string, fi fs.FileInfo) error) error {
	n := 0
	return filepath.Walk(root, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		name := filepath.ToSlash(strings.TrimPrefix(strings.TrimPrefix(p, root), "/"))
		if name == "" {
			return nil
		}
		if n++; n > maxEntries {
			return fmt.Errorf("more than %d entries", maxEntries)
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
