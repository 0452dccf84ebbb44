package apttest

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"testing/fstest"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/rootfs"
)

// MemFS is an in-memory layer.ImageFS: regular files (with implied
// directories) and symbolic links.
type MemFS struct {
	Files map[string]string
	Links map[string]string // path -> target
}

func (m MemFS) mapFS() fstest.MapFS {
	out := fstest.MapFS{}
	for p, data := range m.Files {
		out[p] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
	for p := range m.Links {
		if dir := path.Dir(p); dir != "." {
			out[dir] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		}
	}
	return out
}

func (m MemFS) Open(name string) (fs.File, error) {
	if _, ok := m.Links[name]; ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("MemFS does not follow links")}
	}
	return m.mapFS().Open(name)
}

type linkInfo struct {
	name string
	size int64
}

func (l linkInfo) Name() string       { return l.name }
func (l linkInfo) Size() int64        { return l.size }
func (l linkInfo) Mode() fs.FileMode  { return fs.ModeSymlink | 0o777 }
func (l linkInfo) ModTime() time.Time { return time.Time{} }
func (l linkInfo) IsDir() bool        { return false }
func (l linkInfo) Sys() any           { return nil }

func (m MemFS) Lstat(name string) (fs.FileInfo, error) {
	if t, ok := m.Links[name]; ok {
		return linkInfo{name: path.Base(name), size: int64(len(t))}, nil
	}
	return fs.Stat(m.mapFS(), name)
}

func (m MemFS) ReadLink(name string) (string, error) {
	if t, ok := m.Links[name]; ok {
		return t, nil
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

func (m MemFS) Entry(name string) (rootfs.Entry, error) {
	fi, err := m.Lstat(name)
	if err != nil {
		return rootfs.Entry{}, err
	}
	return rootfs.Entry{Path: name, Mode: fi.Mode(), Size: fi.Size(), Linkname: m.Links[name], Layer: 0}, nil
}

// ReadFiles reads each name (following no links), as rootfs.FS does.
func (m MemFS) ReadFiles(_ context.Context, names []string, fn func(name string, data []byte) error) error {
	for _, n := range names {
		data, err := fs.ReadFile(m, n)
		if err != nil {
			return err
		}
		if err := fn(n, data); err != nil {
			return err
		}
	}
	return nil
}

var _ layer.ImageFS = MemFS{}
