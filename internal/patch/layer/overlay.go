package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// Overlay is the image as it will be once the changeset is applied on
// top: the view a package manager's unpacker resolves paths in, and what
// native script handlers (ldconfig, update-ca-certificates) read. It
// implements fs.FS, fs.ReadDirFS and fs.StatFS, with Lstat and ReadLink.
// Symbolic links are resolved inside the image root, through the
// changeset's entries first. It sees the changeset as it is at each call.
type Overlay struct {
	img ImageFS
	cs  *Changeset
}

// NewOverlay returns the view of img with cs applied on top.
func NewOverlay(img ImageFS, cs *Changeset) *Overlay { return &Overlay{img: img, cs: cs} }

// Absent is what Lookup returns for a path that does not exist.
const Absent Kind = 0

// ErrNotDir is wrapped by resolution errors about a path whose directory
// component is not a directory.
var ErrNotDir = errors.New("not a directory")

// MaxSymlinkHops bounds the symbolic links one lookup follows, as Linux's
// MAXSYMLINKS does.
const MaxSymlinkHops = 40

// Lookup tells what p (a resolved path, not following its last element)
// is once the changeset is applied over the image: Absent, Dir, Symlink
// (with its target) or File (anything else).
func (o *Overlay) Lookup(p string) (Kind, string) {
	if e := o.cs.Get(p); e != nil {
		switch e.Kind {
		case Dir:
			return Dir, ""
		case Symlink:
			return Symlink, e.Linkname
		case Whiteout:
			return Absent, ""
		default:
			return File, ""
		}
	}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if e := o.cs.Get(d); e != nil && e.Kind == Whiteout {
			return Absent, ""
		}
	}
	fi, err := o.img.Lstat(p)
	if err != nil {
		return Absent, ""
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := o.img.ReadLink(p)
		if err != nil {
			return Absent, ""
		}
		return Symlink, t
	case fi.IsDir():
		return Dir, ""
	}
	return File, ""
}

// Confine cleans a path relative to the root, keeping it inside: leading
// ".." elements stay at the root, as the kernel does for "/..".
func Confine(p string) string {
	p = path.Clean(strings.TrimPrefix(p, "/"))
	for p == ".." || strings.HasPrefix(p, "../") {
		p = strings.TrimPrefix(strings.TrimPrefix(p, ".."), "/")
		if p == "" {
			p = "."
		}
	}
	return p
}

// ResolveDir resolves every element of the directory path p through
// symbolic links, inside the root; "" is the root.
func (o *Overlay) ResolveDir(p string) (string, error) {
	hops := 0
	return o.resolveDir(p, &hops)
}

func (o *Overlay) resolveDir(p string, hops *int) (string, error) {
	cur := ""
	if p == "." || p == "" {
		return cur, nil
	}
	for elem := range strings.SplitSeq(p, "/") {
		next := path.Join(cur, elem)
		k, target := o.Lookup(next)
		switch k {
		case Symlink:
			if *hops++; *hops > MaxSymlinkHops {
				return "", fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			t := target
			if !path.IsAbs(t) {
				t = path.Join(cur, t)
			}
			t = Confine(t)
			if t == "." {
				cur = ""
				continue
			}
			r, err := o.resolveDir(t, hops)
			if err != nil {
				return "", err
			}
			cur = r
		case File:
			return "", fmt.Errorf("%s: %s is %w", p, next, ErrNotDir)
		default:
			cur = next
		}
	}
	return cur, nil
}

// Resolve resolves the directories of p (a clean relative path), not its
// last element: where a package manager writes p.
func (o *Overlay) Resolve(p string) (string, error) {
	dir, base := path.Split(p)
	if dir == "" {
		return p, nil
	}
	r, err := o.ResolveDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return "", err
	}
	return path.Join(r, base), nil
}

// resolveAll resolves every element of name, the last one too when follow.
func (o *Overlay) resolveAll(name string, follow bool) (string, error) {
	if name == "." {
		return ".", nil
	}
	p, err := o.Resolve(name)
	if err != nil {
		return "", err
	}
	for hops := 0; follow; hops++ {
		if hops > MaxSymlinkHops {
			return "", errors.New("too many levels of symbolic links")
		}
		k, target := o.Lookup(p)
		if k != Symlink {
			break
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		if p, err = o.Resolve(Confine(target)); err != nil {
			return "", err
		}
		if p == "." {
			break
		}
	}
	return p, nil
}

type ovInfo struct {
	name  string
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

func (i *ovInfo) Name() string               { return i.name }
func (i *ovInfo) Size() int64                { return i.size }
func (i *ovInfo) Mode() fs.FileMode          { return i.mode }
func (i *ovInfo) ModTime() time.Time         { return i.mtime }
func (i *ovInfo) IsDir() bool                { return i.mode.IsDir() }
func (i *ovInfo) Sys() any                   { return nil }
func (i *ovInfo) Type() fs.FileMode          { return i.mode.Type() }
func (i *ovInfo) Info() (fs.FileInfo, error) { return i, nil }

func notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

// stat describes the resolved path p.
func (o *Overlay) stat(op, name, p string) (fs.FileInfo, error) {
	base := path.Base(name)
	if p == "." {
		return &ovInfo{name: base, mode: fs.ModeDir | 0o755}, nil
	}
	if e := o.cs.Get(p); e != nil {
		switch e.Kind {
		case Whiteout:
			return nil, notExist(op, name)
		case Dir:
			return &ovInfo{name: base, mode: fs.ModeDir | e.Mode, mtime: e.ModTime}, nil
		case Symlink:
			return &ovInfo{name: base, mode: fs.ModeSymlink | 0o777, size: int64(len(e.Linkname)), mtime: e.ModTime}, nil
		case Hardlink:
			if t := o.cs.Get(e.Linkname); t != nil {
				return &ovInfo{name: base, mode: t.Mode, size: t.Size, mtime: t.ModTime}, nil
			}
		}
		return &ovInfo{name: base, mode: e.Mode, size: e.Size, mtime: e.ModTime}, nil
	}
	if k, _ := o.Lookup(p); k == Absent {
		return nil, notExist(op, name)
	}
	return o.img.Lstat(p)
}

func (o *Overlay) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	p, err := o.resolveAll(name, false)
	if err != nil {
		return nil, notExist("lstat", name)
	}
	return o.stat("lstat", name, p)
}

func (o *Overlay) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	p, err := o.resolveAll(name, true)
	if err != nil {
		return nil, notExist("stat", name)
	}
	return o.stat("stat", name, p)
}

func (o *Overlay) ReadLink(name string) (string, error) {
	p, err := o.resolveAll(name, false)
	if err != nil {
		return "", notExist("readlink", name)
	}
	k, target := o.Lookup(p)
	if k != Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return target, nil
}

func (o *Overlay) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	p, err := o.resolveAll(name, true)
	if err != nil {
		return nil, notExist("open", name)
	}
	info, err := o.stat("open", name, p)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		entries, err := o.readDir(p)
		if err != nil {
			return nil, err
		}
		return &ovDir{info: info, entries: entries}, nil
	}
	if e := o.cs.Get(p); e != nil {
		if e.Kind == Hardlink {
			e = o.cs.Get(e.Linkname)
		}
		rc, err := o.cs.Open(e)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		return &ovFile{info: info, r: bytes.NewReader(data)}, nil
	}
	return o.img.Open(p)
}

func (o *Overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := o.resolveAll(name, true)
	if err != nil {
		return nil, notExist("readdir", name)
	}
	return o.readDir(p)
}

// readDir merges the image's entries of directory p with the changeset's.
func (o *Overlay) readDir(p string) ([]fs.DirEntry, error) {
	byName := map[string]fs.DirEntry{}
	replaced := false // the changeset replaced the directory itself
	if e := o.cs.Get(p); e != nil && e.Kind == Dir {
		if k, _ := o.Lookup(p); k == Dir {
			if _, err := o.img.Lstat(p); err != nil {
				replaced = true
			}
		}
	}
	if !replaced {
		imgDir := p
		if p == "" {
			imgDir = "."
		}
		if list, err := fs.ReadDir(o.img, imgDir); err == nil {
			for _, de := range list {
				byName[de.Name()] = de
			}
		}
	}
	prefix := p + "/"
	if p == "." || p == "" {
		prefix = ""
	}
	for _, e := range o.cs.Entries() {
		rest, ok := strings.CutPrefix(e.Path, prefix)
		if !ok || rest == "" || strings.Contains(rest, "/") {
			continue
		}
		if e.Kind == Whiteout {
			delete(byName, rest)
			continue
		}
		info, err := o.stat("readdir", e.Path, e.Path)
		if err != nil {
			continue
		}
		byName[rest] = info.(*ovInfo)
	}
	out := make([]fs.DirEntry, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[name])
	}
	return out, nil
}

type ovFile struct {
	info fs.FileInfo
	r    *bytes.Reader
}

func (f *ovFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *ovFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *ovFile) Close() error               { return nil }

type ovDir struct {
	info    fs.FileInfo
	entries []fs.DirEntry
	off     int
}

func (d *ovDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *ovDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errors.New("is a directory")}
}
func (d *ovDir) Close() error { return nil }
func (d *ovDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}

// ReadFiles reads many files: those the changeset holds from its spool,
// the others through the image's batch reader when it has one.
func (o *Overlay) ReadFiles(ctx context.Context, names []string, fn func(name string, data []byte) error) error {
	resolved := map[string][]string{} // image path -> requested names
	var fromImage []string
	for _, name := range names {
		p, err := o.resolveAll(name, true)
		if err != nil {
			continue
		}
		if e := o.cs.Get(p); e != nil {
			data, err := fs.ReadFile(o, name)
			if err != nil {
				continue
			}
			if err := fn(name, data); err != nil {
				return err
			}
			continue
		}
		if k, _ := o.Lookup(p); k == Absent {
			continue
		}
		if _, ok := resolved[p]; !ok {
			fromImage = append(fromImage, p)
		}
		resolved[p] = append(resolved[p], name)
	}
	return o.img.ReadFiles(ctx, fromImage, func(p string, data []byte) error {
		for _, name := range resolved[p] {
			if err := fn(name, data); err != nil {
				return err
			}
		}
		return nil
	})
}
