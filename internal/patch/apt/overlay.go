package apt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
)

// overlayFS is the image as it will be once the changeset is applied on
// top: what native script handlers (ldconfig, update-ca-certificates)
// read. Symbolic links are resolved inside the image root, through the
// changeset's entries first.
type overlayFS struct {
	img ImageFS
	cs  *layer.Changeset
	u   *Unpacker // path resolution over both
}

func newOverlay(img ImageFS, cs *layer.Changeset) *overlayFS {
	return &overlayFS{img: img, cs: cs, u: &Unpacker{fsys: img, cs: cs}}
}

// resolveAll resolves every element of name, the last one too when follow.
func (o *overlayFS) resolveAll(name string, follow bool) (string, error) {
	if name == "." {
		return ".", nil
	}
	p, err := o.u.resolve(name)
	if err != nil {
		return "", err
	}
	for hops := 0; follow; hops++ {
		if hops > maxHops {
			return "", errors.New("too many levels of symbolic links")
		}
		k, target := o.u.lookup(p)
		if k != isSymlink {
			break
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		if p, err = o.u.resolve(confine(target)); err != nil {
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
func (o *overlayFS) stat(op, name, p string) (fs.FileInfo, error) {
	base := path.Base(name)
	if p == "." {
		return &ovInfo{name: base, mode: fs.ModeDir | 0o755}, nil
	}
	if e := o.cs.Get(p); e != nil {
		switch e.Kind {
		case layer.Whiteout:
			return nil, notExist(op, name)
		case layer.Dir:
			return &ovInfo{name: base, mode: fs.ModeDir | e.Mode, mtime: e.ModTime}, nil
		case layer.Symlink:
			return &ovInfo{name: base, mode: fs.ModeSymlink | 0o777, size: int64(len(e.Linkname)), mtime: e.ModTime}, nil
		case layer.Hardlink:
			if t := o.cs.Get(e.Linkname); t != nil {
				return &ovInfo{name: base, mode: t.Mode, size: t.Size, mtime: t.ModTime}, nil
			}
		}
		return &ovInfo{name: base, mode: e.Mode, size: e.Size, mtime: e.ModTime}, nil
	}
	if k, _ := o.u.lookup(p); k == absent {
		return nil, notExist(op, name)
	}
	return o.img.Lstat(p)
}

func (o *overlayFS) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	p, err := o.resolveAll(name, false)
	if err != nil {
		return nil, notExist("lstat", name)
	}
	return o.stat("lstat", name, p)
}

func (o *overlayFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	p, err := o.resolveAll(name, true)
	if err != nil {
		return nil, notExist("stat", name)
	}
	return o.stat("stat", name, p)
}

func (o *overlayFS) ReadLink(name string) (string, error) {
	p, err := o.resolveAll(name, false)
	if err != nil {
		return "", notExist("readlink", name)
	}
	k, target := o.u.lookup(p)
	if k != isSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return target, nil
}

func (o *overlayFS) Open(name string) (fs.File, error) {
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
		if e.Kind == layer.Hardlink {
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

func (o *overlayFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := o.resolveAll(name, true)
	if err != nil {
		return nil, notExist("readdir", name)
	}
	return o.readDir(p)
}

// readDir merges the image's entries of directory p with the changeset's.
func (o *overlayFS) readDir(p string) ([]fs.DirEntry, error) {
	byName := map[string]fs.DirEntry{}
	replaced := false // the changeset replaced the directory itself
	if e := o.cs.Get(p); e != nil && e.Kind == layer.Dir {
		if k, _ := o.u.lookup(p); k == isDir {
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
		if e.Kind == layer.Whiteout {
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

// batchReader is implemented by *rootfs.FS: many lazily read files in one
// pass per layer.
type batchReader interface {
	ReadFiles(ctx context.Context, names []string, fn func(name string, data []byte) error) error
}

// ReadFiles reads many files: those the changeset holds from its spool,
// the others through the image's batch reader when it has one.
func (o *overlayFS) ReadFiles(ctx context.Context, names []string, fn func(name string, data []byte) error) error {
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
		if k, _ := o.u.lookup(p); k == absent {
			continue
		}
		if _, ok := resolved[p]; !ok {
			fromImage = append(fromImage, p)
		}
		resolved[p] = append(resolved[p], name)
	}
	br, ok := o.img.(batchReader)
	if !ok {
		for _, p := range fromImage {
			data, err := fs.ReadFile(o.img, p)
			if err != nil {
				continue
			}
			for _, name := range resolved[p] {
				if err := fn(name, data); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return br.ReadFiles(ctx, fromImage, func(p string, data []byte) error {
		for _, name := range resolved[p] {
			if err := fn(name, data); err != nil {
				return err
			}
		}
		return nil
	})
}
