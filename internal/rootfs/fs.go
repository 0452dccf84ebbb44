package rootfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// resolve walks name from the root. Symbolic links met on the way are
// followed inside the image root; the last element's link is followed only
// when follow is set.
func (f *FS) resolve(name string, follow bool) (*node, error) {
	cur := f.root
	rest := name
	if rest == "." {
		rest = ""
	}
	hops := 0
	for rest != "" {
		var elem string
		elem, rest, _ = strings.Cut(rest, "/")
		switch elem {
		case "", ".":
			continue
		case "..":
			cur = cur.parent // the root's parent is the root
			continue
		}
		if !cur.isDir() {
			return nil, fs.ErrNotExist // ENOTDIR
		}
		child := cur.children[elem]
		if child == nil {
			return nil, fs.ErrNotExist
		}
		if child.isSymlink() && (rest != "" || follow) {
			hops++
			if hops > maxSymlinkHops {
				return nil, ErrSymlinkLoop
			}
			target := child.linkname
			if target == "" {
				return nil, fs.ErrNotExist
			}
			if strings.HasPrefix(target, "/") {
				cur = f.root
			}
			if rest != "" {
				target += "/" + rest
			}
			rest = target
			continue
		}
		cur = child
	}
	return cur, nil
}

func (f *FS) walk(op, name string, follow bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.resolve(name, follow)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

// Open opens name, following symbolic links. Directories implement
// fs.ReadDirFile; files kept in memory or spooled also implement io.Seeker
// and io.ReaderAt. A lazily read file holds its layer's stream open until
// Close.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.walk("open", name, true)
	if err != nil {
		return nil, err
	}
	fi := &fileInfo{name: path.Base(name), n: n}
	if n.isDir() {
		return &dirFile{info: fi, n: n}, nil
	}
	if n.content == nil { // devices, FIFOs: metadata only
		return &memFile{info: fi, r: bytes.NewReader(nil)}, nil
	}
	c := n.content
	if c.kept {
		return &memFile{info: fi, r: bytes.NewReader(c.data)}, nil
	}
	if s := f.spool(c.layer); s != nil && c.offset >= 0 {
		return &memFile{info: fi, r: io.NewSectionReader(s, c.offset, c.size)}, nil
	}
	return &streamFile{info: fi, fs: f, c: c, path: name}, nil
}

// Stat returns the FileInfo of name, following symbolic links.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.walk("stat", name, true)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), n: n}, nil
}

// Lstat returns the FileInfo of name without following a final symbolic
// link. Its Sys() is an *Entry.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.walk("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), n: n}, nil
}

// ReadLink returns the target of the symbolic link name, as stored.
func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.walk("readlink", name, false)
	if err != nil {
		return "", err
	}
	if !n.isSymlink() {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.linkname, nil
}

// Entry returns the metadata of name without following a final symbolic
// link: which layer wrote it, owner, link target.
func (f *FS) Entry(name string) (Entry, error) {
	n, err := f.walk("entry", name, false)
	if err != nil {
		return Entry{}, err
	}
	return n.entry(), nil
}

// ReadDir lists the directory name (following symbolic links), sorted.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.walk("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	out := make([]fs.DirEntry, len(n.sorted))
	for i, c := range n.sorted {
		out[i] = &fileInfo{name: c.name, n: c}
	}
	return out, nil
}

// ReadFile reads name, following symbolic links. Files larger than the
// WithMaxFileSize limit are an error wrapping ErrLimit; use Open to stream
// them.
func (f *FS) ReadFile(name string) ([]byte, error) {
	n, err := f.walk("readfile", name, true)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	if n.content == nil {
		return []byte{}, nil
	}
	c := n.content
	if c.kept {
		return bytes.Clone(c.data), nil
	}
	if c.size > f.maxFile {
		return nil, &fs.PathError{Op: "readfile", Path: name,
			Err: fmt.Errorf("%w: %d bytes, over the %d bytes file limit", ErrLimit, c.size, f.maxFile)}
	}
	if data := f.cachedContent(c); data != nil {
		return bytes.Clone(data), nil
	}
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data := make([]byte, c.size)
	if _, err := io.ReadFull(file, data); err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	f.storeContent(c, data)
	return bytes.Clone(data), nil
}

func (f *FS) spool(layer int) io.ReaderAt {
	if layer < len(f.spools) && f.spools[layer] != nil {
		return f.spools[layer]
	}
	return nil
}

// openContent re-streams c's layer up to its entry and returns a reader of
// its data and the stream to close.
func (f *FS) openContent(c *content) (io.Reader, io.Closer, error) {
	if data := f.cachedContent(c); data != nil {
		return bytes.NewReader(data), io.NopCloser(nil), nil
	}
	l := f.layers[c.layer]
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, nil, f.layerErr(c, fmt.Errorf("re-opening layer: %w", err))
	}
	tr := tar.NewReader(rc)
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err != nil {
			rc.Close()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, f.layerErr(c, fmt.Errorf("re-reading layer: %w", err))
		}
		if i == c.ordinal {
			if hdr.Name != c.entry || hdr.Size != c.size {
				rc.Close()
				return nil, nil, f.layerErr(c, errors.New("layer changed since it was indexed"))
			}
			return io.LimitReader(tr, c.size), rc, nil
		}
	}
}

func (f *FS) layerErr(c *content, err error) error {
	dig, _ := f.layers[c.layer].Digest()
	return &LayerError{Index: c.layer, Digest: dig, Entry: c.entry, Err: err}
}

func (n *node) entry() Entry {
	return Entry{
		Path: n.path(), Mode: n.mode, Size: n.size, UID: n.uid, GID: n.gid, ModTime: n.mtime,
		Linkname: n.linkname, Layer: n.layer, Devmajor: n.devmaj, Devminor: n.devmin,
	}
}

// fileInfo is both fs.FileInfo and fs.DirEntry of a node.
type fileInfo struct {
	name string
	n    *node
}

func (i *fileInfo) Name() string               { return i.name }
func (i *fileInfo) Size() int64                { return i.n.size }
func (i *fileInfo) Mode() fs.FileMode          { return i.n.mode }
func (i *fileInfo) ModTime() time.Time         { return i.n.mtime }
func (i *fileInfo) IsDir() bool                { return i.n.isDir() }
func (i *fileInfo) Sys() any                   { e := i.n.entry(); return &e }
func (i *fileInfo) Type() fs.FileMode          { return i.n.mode.Type() }
func (i *fileInfo) Info() (fs.FileInfo, error) { return i, nil }
func (i *fileInfo) String() string             { return fs.FormatFileInfo(i) }

// memFile reads content from memory or a spooled layer.
type memFile struct {
	info *fileInfo
	r    interface {
		io.Reader
		io.Seeker
		io.ReaderAt
	}
}

func (m *memFile) Stat() (fs.FileInfo, error)                { return m.info, nil }
func (m *memFile) Read(p []byte) (int, error)                { return m.r.Read(p) }
func (m *memFile) Seek(off int64, whence int) (int64, error) { return m.r.Seek(off, whence) }
func (m *memFile) ReadAt(p []byte, off int64) (int, error)   { return m.r.ReadAt(p, off) }
func (m *memFile) Close() error                              { return nil }

// streamFile re-streams its layer on first Read.
type streamFile struct {
	info   *fileInfo
	fs     *FS
	c      *content
	path   string
	r      io.Reader
	closer io.Closer
	closed bool
}

func (s *streamFile) Stat() (fs.FileInfo, error) { return s.info, nil }

func (s *streamFile) Read(p []byte) (int, error) {
	if s.closed {
		return 0, &fs.PathError{Op: "read", Path: s.path, Err: fs.ErrClosed}
	}
	if s.r == nil {
		r, c, err := s.fs.openContent(s.c)
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: s.path, Err: err}
		}
		s.r, s.closer = r, c
	}
	return s.r.Read(p)
}

func (s *streamFile) Close() error {
	if s.closed {
		return &fs.PathError{Op: "close", Path: s.path, Err: fs.ErrClosed}
	}
	s.closed = true
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

// dirFile is an open directory.
type dirFile struct {
	info *fileInfo
	n    *node
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(count int) ([]fs.DirEntry, error) {
	rest := d.n.sorted[d.off:]
	if count > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if count > 0 && count < len(rest) {
		rest = rest[:count]
	}
	out := make([]fs.DirEntry, len(rest))
	for i, c := range rest {
		out[i] = &fileInfo{name: c.name, n: c}
	}
	d.off += len(rest)
	return out, nil
}
