package rootfs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/refusal"
)

// Whiteout markers (OCI image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// node is one path of the merged tree.
type node struct {
	name     string
	parent   *node
	mode     fs.FileMode
	size     int64
	uid, gid int
	mtime    time.Time
	linkname string
	devmaj   int64
	devmin   int64
	// layer wrote this node's header (-1: root or implicit directory);
	// maxLayer is the highest layer of any node in its subtree.
	layer, maxLayer int
	content         *content // regular files; shared by hardlinks
	children        map[string]*node
	sorted          []*node // children by name, set by finish
}

// content locates a regular file's bytes.
type content struct {
	layer   int
	ordinal int    // entry number in the layer's tar
	entry   string // raw entry name, checked when re-streaming
	size    int64
	offset  int64 // data offset in the uncompressed tar; -1 unknown (sparse)
	data    []byte
	kept    bool
}

func (n *node) isDir() bool     { return n.mode.IsDir() }
func (n *node) isSymlink() bool { return n.mode&fs.ModeSymlink != 0 }

// path returns n's fs.FS path.
func (n *node) path() string {
	if n.parent == n {
		return "."
	}
	var elems []string
	for m := n; m.parent != m; m = m.parent {
		elems = append(elems, m.name)
	}
	slices.Reverse(elems)
	return strings.Join(elems, "/")
}

// finish sorts every directory's children, once, after the last layer.
func (n *node) finish() {
	if !n.isDir() {
		return
	}
	n.sorted = make([]*node, 0, len(n.children))
	for _, c := range n.children {
		n.sorted = append(n.sorted, c)
		c.finish()
	}
	slices.SortFunc(n.sorted, func(a, b *node) int { return strings.Compare(a.name, b.name) })
}

type builder struct {
	fs      *FS
	o       *options
	entries int
	budget  int64
}

// countingReader counts bytes and stops at a limit.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		// Probe: a stream of exactly limit bytes is fine.
		var one [1]byte
		k, err := c.r.Read(one[:])
		if k > 0 {
			return 0, fmt.Errorf("%w: more than %d uncompressed bytes", ErrLimit, c.limit)
		}
		return 0, err
	}
	if rem := c.limit - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

func (b *builder) applyLayer(ctx context.Context, idx int, l v1.Layer, diffID v1.Hash) (err error) {
	if b.o.cache != nil {
		// A layer indexed (and verified) before is replayed from its
		// record, if it was made from the content this image's config
		// names.
		if dig, err := l.Digest(); err == nil {
			if rec, err := b.o.cache.Layer(dig); err == nil && rec != nil && rec.DiffID == diffID {
				info := Layer{Index: idx, Digest: dig, DiffID: diffID}
				err := b.replay(idx, rec, &info)
				if err == nil && rec.Size > b.o.maxLayerSize {
					err = fmt.Errorf("%w: more than %d uncompressed bytes", ErrLimit, b.o.maxLayerSize)
				}
				if err != nil {
					le := &LayerError{Index: idx, Digest: dig, Err: err}
					if errors.Is(err, ErrLimit) {
						return &refusal.Error{Kind: refusal.OverLimit, Reason: le.Error(), Digest: dig.String(), Err: le}
					}
					return le
				}
				if b.o.spool {
					b.fs.spools = append(b.fs.spools, nil) // keep spools[i] layer i's
				}
				b.fs.info = append(b.fs.info, info)
				return nil
			}
		}
	}
	var rec *recorder
	if b.o.cache != nil {
		rec = &recorder{}
	}
	ls, err := openLayer(idx, l, diffID)
	if err != nil {
		var r *refusal.Error
		if errors.As(err, &r) {
			return err
		}
		dig, _ := l.Digest()
		return &LayerError{Index: idx, Digest: dig, Err: err}
	}
	defer ls.Close()
	info := Layer{Index: idx, Digest: ls.digest, DiffID: diffID}
	cr := &countingReader{r: ls.plain, limit: b.o.maxLayerSize}
	var src io.Reader = cr
	var spool *os.File
	var spoolBuf *bufio.Writer
	if b.o.spool {
		spool, err = os.CreateTemp(b.o.spoolDir, spoolPattern)
		if err != nil {
			return ls.layerErr("", fmt.Errorf("creating spool file: %w", err))
		}
		b.fs.spools = append(b.fs.spools, spool)
		spoolBuf = bufio.NewWriterSize(spool, 1<<20)
		src = io.TeeReader(cr, spoolBuf)
	}
	tr := tar.NewReader(src)
	last := "" // the entry being read when an error comes
	for ordinal := 0; ; ordinal++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ls.classify(ctx, last, fmt.Errorf("reading tar after this entry: %w", err))
		}
		last = hdr.Name
		b.entries++
		if b.entries > b.o.maxEntries {
			return ls.refuse(refusal.OverLimit, hdr.Name, fmt.Errorf("%w: more than %d entries in the image", ErrLimit, b.o.maxEntries))
		}
		if ordinal%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return ls.layerErr(hdr.Name, err)
			}
		}
		var body io.Reader = tr
		if rec != nil {
			rec.data.Reset()
			body = tee{tr, &rec.data}
		}
		offset := cr.n
		if err := b.apply(idx, ordinal, hdr, body, offset, &info); err != nil {
			return ls.classify(ctx, hdr.Name, err)
		}
		if rec != nil {
			e := recordOf(hdr, offset)
			if hdr.Typeflag == tar.TypeReg && int64(rec.data.Len()) == hdr.Size {
				e.Kept, e.Data = true, bytes.Clone(rec.data.Bytes())
			}
			rec.rec.Entries = append(rec.rec.Entries, e)
		}
	}
	// Drain trailing padding so the spool and the size are the whole
	// stream, and check both digests.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return ls.classify(ctx, "", fmt.Errorf("reading tar: %w", err))
	}
	if err := ls.finish(ctx); err != nil {
		return err
	}
	if spool != nil {
		if err := spoolBuf.Flush(); err != nil {
			return ls.layerErr("", fmt.Errorf("writing spool file: %w", err))
		}
	}
	info.Size = cr.n
	b.fs.info = append(b.fs.info, info)
	if rec != nil {
		rec.rec.Size, rec.rec.DiffID = cr.n, diffID // verified by finish
		_ = b.o.cache.PutLayer(ls.digest, &rec.rec) // a cache that cannot store is only slower
	}
	return nil
}

func (b *builder) warn(idx int, entry, format string, args ...any) {
	b.addWarning(idx, entry, false, format, args...)
}

// warnHostile records an entry name no honest image builder writes.
func (b *builder) warnHostile(idx int, entry, format string, args ...any) {
	b.addWarning(idx, entry, true, format, args...)
}

func (b *builder) addWarning(idx int, entry string, hostile bool, format string, args ...any) {
	dig := v1.Hash{}
	if idx < len(b.fs.layers) {
		dig, _ = b.fs.layers[idx].Digest()
	}
	b.fs.warnings = append(b.fs.warnings, Warning{Layer: idx, Digest: dig, Entry: entry, Reason: fmt.Sprintf(format, args...), Hostile: hostile})
}

// cleanName turns a tar entry name into an fs.FS path ("." for the root),
// or "" to skip it.
func (b *builder) cleanName(idx int, raw string) string {
	return b.cleanRef(idx, raw, raw, "name")
}

// cleanRef cleans raw, the name or hardlink target (what) of the entry
// named entry, as Docker and containerd do before extracting: a NUL byte
// or a path climbing above the root is hostile and skipped; a ".."
// element that stays inside is hostile and applied as cleaned; an
// absolute path is applied from the root (kaniko writes absolute hardlink
// targets; runtimes join them to their root).
func (b *builder) cleanRef(idx int, entry, raw, what string) string {
	subject := what
	if what != "name" {
		subject = fmt.Sprintf("%s %q", what, raw)
	}
	if strings.IndexByte(raw, 0) >= 0 {
		b.warnHostile(idx, entry, "%s contains a NUL byte: skipped", subject)
		return ""
	}
	trimmed := strings.TrimLeft(raw, "/")
	abs := trimmed != raw
	p := path.Clean(trimmed)
	if abs {
		// Absolute: cleaned from the root, as runtimes join it to theirs.
		p = strings.TrimPrefix(path.Clean(raw), "/")
		if p == "" {
			p = "."
		}
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		b.warnHostile(idx, entry, "%s escapes the image root: skipped", subject)
		return ""
	}
	switch {
	case p == ".":
	case slices.Contains(strings.Split(trimmed, "/"), ".."):
		b.warnHostile(idx, entry, "%s contains \"..\", applied as cleaned %q as runtimes do", subject, p)
	case abs:
		b.warn(idx, entry, "absolute %s, applied relative to the image root as runtimes do", subject)
	}
	return p
}

// symlinkEscapes reports whether the target of a symbolic link at p, taken
// literally from the link's directory (from the root when absolute), climbs
// above the image root. Inside the image the kernel stops at the root; a
// tool that follows the link on a host directory does not.
func symlinkEscapes(p, target string) bool {
	depth := 0
	if !strings.HasPrefix(target, "/") {
		if dir := path.Dir(p); dir != "." {
			depth = strings.Count(dir, "/") + 1
		}
	}
	for elem := range strings.SplitSeq(target, "/") {
		switch elem {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// apply applies one tar entry of layer idx.
func (b *builder) apply(idx, ordinal int, hdr *tar.Header, tr io.Reader, offset int64, info *Layer) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock,
		tar.TypeDir, tar.TypeFifo, tar.TypeGNUSparse:
	default:
		b.warn(idx, hdr.Name, "unsupported tar type %q: skipped", hdr.Typeflag)
		return nil
	}
	p := b.cleanName(idx, hdr.Name)
	if p == "" {
		return nil
	}
	if p == "." {
		if hdr.Typeflag == tar.TypeDir {
			r := b.fs.root
			r.mode, r.uid, r.gid, r.mtime = fs.ModeDir|fs.FileMode(hdr.Mode)&fs.ModePerm, hdr.Uid, hdr.Gid, hdr.ModTime
		}
		return nil
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if base == opaqueMarker {
		parent, err := b.mkdirs(idx, hdr.Name, dir)
		if err != nil {
			return err
		}
		removeLower(parent, idx)
		bumpMax(parent, idx)
		info.Opaque = append(info.Opaque, cleanDir(dir))
		return nil
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		target := strings.TrimPrefix(base, whiteoutPrefix)
		if strings.HasPrefix(target, whiteoutPrefix) {
			return nil // other AUFS metadata (.wh..wh.plnk, ...): not content
		}
		if target == "" || target == "." || target == ".." {
			b.warn(idx, hdr.Name, "invalid whiteout name: skipped")
			return nil
		}
		tp := path.Join(dir, target)
		parent := b.lookup(dir)
		if parent != nil && parent.isDir() {
			if n := parent.children[target]; n != nil {
				if n.maxLayer < idx {
					delete(parent.children, target)
				} else if n.isDir() {
					removeLower(n, idx) // same layer writes below it: keep those
				}
			}
		}
		info.Whiteouts = append(info.Whiteouts, tp)
		return nil
	}

	parent, err := b.mkdirs(idx, hdr.Name, dir)
	if err != nil {
		return err
	}
	n := &node{
		name:     base,
		parent:   parent,
		mode:     hdr.FileInfo().Mode(),
		size:     hdr.Size,
		uid:      hdr.Uid,
		gid:      hdr.Gid,
		mtime:    hdr.ModTime,
		layer:    idx,
		maxLayer: idx,
	}
	old := parent.children[base]
	switch hdr.Typeflag {
	case tar.TypeDir:
		if old != nil && old.isDir() {
			old.mode, old.uid, old.gid, old.mtime, old.layer = n.mode, n.uid, n.gid, n.mtime, idx
			old.size = 0
			bumpMax(old, idx)
			info.Paths = append(info.Paths, p)
			return nil
		}
		n.size = 0
		n.children = map[string]*node{}
		if old != nil && old.isSymlink() {
			b.warn(idx, hdr.Name, "directory replaces the symbolic link %q -> %q of a lower layer", p, old.linkname)
		}
	case tar.TypeSymlink:
		n.linkname = hdr.Linkname
		n.size = int64(len(hdr.Linkname))
		if symlinkEscapes(p, hdr.Linkname) {
			// Applied: the view resolves it inside the root, as the
			// kernel does in a container.
			b.warnHostile(idx, hdr.Name, "symbolic link target %q climbs above the image root", hdr.Linkname)
		}
	case tar.TypeLink:
		target := b.cleanRef(idx, hdr.Name, hdr.Linkname, "hardlink target")
		if target == "" {
			return nil // hostile, recorded
		}
		t := b.lookup(target)
		if target == "." || t == nil || t.content == nil {
			b.warn(idx, hdr.Name, "hardlink to %q: no regular file there: skipped", hdr.Linkname)
			return nil
		}
		n.mode, n.size, n.content = t.mode, t.size, t.content
		n.uid, n.gid, n.mtime = t.uid, t.gid, t.mtime
	case tar.TypeChar, tar.TypeBlock:
		n.devmaj, n.devmin, n.size = hdr.Devmajor, hdr.Devminor, 0
	case tar.TypeFifo:
		n.size = 0
	default: // regular
		if n.size < 0 {
			return fmt.Errorf("negative size %d", n.size)
		}
		c := &content{layer: idx, ordinal: ordinal, entry: hdr.Name, size: hdr.Size, offset: offset}
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparse(hdr) {
			c.offset = -1
		}
		if b.o.keep != nil && b.o.keep(p) {
			switch {
			case hdr.Size > b.o.maxFileSize:
				b.warn(idx, hdr.Name, "%d bytes: over the file size limit, not kept in memory", hdr.Size)
			case hdr.Size > b.budget:
				// Over the total budget: read lazily.
			default:
				data := make([]byte, hdr.Size)
				if _, err := io.ReadFull(tr, data); err != nil {
					return fmt.Errorf("reading content: %w", err)
				}
				c.data, c.kept = data, true
				b.budget -= hdr.Size
			}
		}
		n.content = c
	}
	parent.children[base] = n
	bumpMax(parent, idx)
	info.Paths = append(info.Paths, p)
	return nil
}

func cleanDir(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

func hasSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// lookup finds the node at the literal path p (no symlinks followed).
func (b *builder) lookup(p string) *node {
	n := b.fs.root
	if p == "" || p == "." {
		return n
	}
	for elem := range strings.SplitSeq(p, "/") {
		if !n.isDir() {
			return nil
		}
		if n = n.children[elem]; n == nil {
			return nil
		}
	}
	return n
}

// mkdirs returns the directory at the literal path dir, creating missing
// directories, and replacing non-directories, as implicit directories.
func (b *builder) mkdirs(idx int, entry, dir string) (*node, error) {
	n := b.fs.root
	if dir == "" {
		return n, nil
	}
	for elem := range strings.SplitSeq(dir, "/") {
		c := n.children[elem]
		if c == nil || !c.isDir() {
			if c != nil && c.isSymlink() {
				b.warn(idx, entry, "implicit directory replaces the symbolic link %q -> %q of a lower layer",
					c.path(), c.linkname)
			}
			c = &node{name: elem, parent: n, mode: implicitDirMode, layer: -1, maxLayer: idx,
				children: map[string]*node{}}
			n.children[elem] = c
		}
		n = c
	}
	return n, nil
}

// bumpMax records that layer idx wrote below n.
func bumpMax(n *node, idx int) {
	for {
		if n.maxLayer < idx {
			n.maxLayer = idx
		}
		if n.parent == n {
			return
		}
		n = n.parent
	}
}

// removeLower hides everything below dir that layers before idx wrote,
// keeping what layer idx (or later) wrote.
func removeLower(dir *node, idx int) {
	for name, c := range dir.children {
		switch {
		case c.maxLayer < idx:
			delete(dir.children, name)
		case c.isDir():
			removeLower(c, idx)
		}
	}
}
