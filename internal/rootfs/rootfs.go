// Package rootfs is a merged, read-only view of a container image's layers.
//
// New streams every layer once, in order, and applies it the way a container
// runtime's overlay snapshotter does (OCI image-spec "Applying Changesets"):
//
//   - entries are applied by their literal path: a later entry replaces an
//     earlier one, a non-directory replaces a whole directory tree, and a
//     directory over a directory merges (the upper one's metadata wins);
//   - a parent directory missing from a layer's tar is created implicitly;
//     when a lower layer had a non-directory there (for example the
//     /lib -> usr/lib symlink), the new directory shadows it, as overlayfs
//     does, and a Warning is recorded;
//   - a whiteout ".wh.NAME" removes NAME of the lower layers, an opaque marker
//     ".wh..wh..opq" hides all lower content of its directory; both affect
//     only lower layers, never entries of their own layer;
//   - a hardlink (tar TypeLink) gets the content and metadata of its target
//     as it stood when the link was applied (the target may be in the same
//     or a lower layer).
//
// The result is an index of metadata (mode, size, owner, mtime, link target,
// the layer that wrote each path) that implements fs.FS, fs.ReadDirFS,
// fs.ReadFileFS, fs.StatFS and fs.ReadLinkFS. Symbolic links are resolved as
// the image itself would see them, confined to the image root: an absolute
// target starts at the image root, ".." at the root stays at the root, and
// more than 40 links in one lookup is ErrSymlinkLoop.
//
// File contents are not held in memory. WithContents picks the files whose
// bytes are kept during the single pass; any other file is read lazily, by
// re-streaming its layer up to that entry, or, with WithSpoolDir, from an
// uncompressed copy of the layer spooled to disk during the pass (then every
// read is a positioned read, and the FS must be closed). A lazy read costs a
// decompression of the layer up to the entry: read many such files with
// ReadFiles, which makes one pass per layer. Layers tells which paths each
// layer wrote, Entry which layer last wrote a path.
//
// Each layer is read from its compressed blob, which is checked against
// the manifest's digest and size, and its uncompressed content against the
// config's rootfs.diff_ids: a mismatch, a config whose diff_ids do not
// match the layers one for one, or a blob that is exactly the one named
// but does not decompress or is not a tar, is a *refusal.Error of kind
// refusal.Corrupt naming the layer (index and digest) and, when there is
// one, the entry. A read that fails before the blob is whole is a plain
// *LayerError: it may succeed another time.
//
// Hostile input never escapes the view and never panics. Entry names are
// cleaned as Docker and containerd clean them before extracting: a relative
// name that still climbs above the root ("../x", "a/../../x") would make
// them refuse the layer, and is skipped here with a recorded Warning; a name
// with a NUL byte is skipped with a Warning; an absolute name ("/etc/x")
// is cleaned from the root and applied, and one with inner ".." that stays
// inside ("a/../b", "/../x") is applied as cleaned, both with a Warning
// (skipping them would hide from the scanner what the runtime does
// install). Hardlink targets follow the same rules (an absolute target,
// as kaniko writes, is taken from the root). A symbolic link whose target,
// taken literally from its directory, climbs above the root is applied
// (lookups stay inside the root, as in a container) with a Warning.
// Warnings about names, link targets or symbolic links that try to leave
// the root are marked Hostile, and CheckHostile turns them into a
// refusal.Hostile error: what the gate, the scanner and the patcher refuse.
// Device nodes and FIFOs are metadata only: they read as empty.
//
// Limits (entries per image, uncompressed bytes per layer, bytes of one file
// kept in memory, bytes kept in all) have defaults and options; going
// over an image limit is a refusal.OverLimit error wrapping ErrLimit that
// names the layer.
package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/refusal"
)

// Default limits.
const (
	DefaultMaxEntries      = 1 << 20        // entries (tar headers) per image
	DefaultMaxLayerSize    = 16 << 30       // uncompressed bytes per layer
	DefaultMaxFileSize     = 64 << 20       // bytes of one file read into memory
	DefaultMaxContentBytes = 512 << 20      // bytes kept by WithContents, all files
	maxSymlinkHops         = 40             // like Linux's MAXSYMLINKS
	ctxCheckEvery          = 256            // entries between ctx.Err() checks
	spoolPattern           = "rootfs-*.tar" // name of spooled layers
	implicitDirMode        = fs.ModeDir | 0o755
)

// ErrLimit is wrapped by errors about a limit the image goes over.
var ErrLimit = errors.New("rootfs: limit exceeded")

// ErrHostile is wrapped by CheckHostile's refusal.
var ErrHostile = errors.New("image layers hold entries that leave the root")

// ErrSymlinkLoop is wrapped by lookups that meet more than 40 symbolic links.
var ErrSymlinkLoop = errors.New("too many levels of symbolic links")

// LayerError is an error while indexing one layer. Entry is the tar entry
// name being read, when there is one.
type LayerError struct {
	Index  int     // position in the image, 0 = base
	Digest v1.Hash // the layer's (compressed) digest
	Entry  string
	Err    error
}

func (e *LayerError) Error() string {
	if e.Entry != "" {
		return fmt.Sprintf("layer %d (%s): entry %q: %v", e.Index, e.Digest, e.Entry, e.Err)
	}
	return fmt.Sprintf("layer %d (%s): %v", e.Index, e.Digest, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// Warning is something in a layer that was skipped or adjusted.
type Warning struct {
	Layer  int
	Digest v1.Hash
	Entry  string // the raw tar entry name
	Reason string
	// Hostile marks names that try to climb out of the root (".." or a
	// NUL byte): runtimes refuse such layers, and so do callers that must
	// not bless them (the patcher).
	Hostile bool
}

func (w Warning) String() string {
	return fmt.Sprintf("layer %d (%s): entry %q: %s", w.Layer, w.Digest, w.Entry, w.Reason)
}

// Entry is the metadata of one path of the merged view.
type Entry struct {
	Path     string // fs.FS path, "." for the root
	Mode     fs.FileMode
	Size     int64 // content bytes (regular files), target length (symlinks)
	UID, GID int
	ModTime  time.Time
	// Linkname is a symbolic link's target, as stored.
	Linkname string
	// Layer is the index of the layer that last wrote this path; -1 for the
	// root and for directories created implicitly.
	Layer              int
	Devmajor, Devminor int64
}

// Layer describes one layer and what it wrote.
type Layer struct {
	Index  int
	Digest v1.Hash // compressed digest, as in the manifest
	DiffID v1.Hash // uncompressed digest, from the image config (zero if absent)
	// Size is the number of uncompressed bytes read.
	Size int64
	// Paths lists the cleaned paths of the entries the layer applied, in tar
	// order (whiteouts excluded).
	Paths []string
	// Whiteouts lists the paths a ".wh." entry removed; Opaque the
	// directories whose lower content an opaque marker hid.
	Whiteouts []string
	Opaque    []string
}

// Option configures New.
type Option func(*options) error

type options struct {
	keep            func(path string) bool
	maxEntries      int
	maxLayerSize    int64
	maxFileSize     int64
	maxContentBytes int64
	spoolDir        string
	spool           bool
	cache           LayerCache
}

// WithContents keeps in memory, during the single pass, the contents of the
// regular files whose path (an fs.FS path of the entry, as written in the
// layer) keep accepts, within the WithMaxFileSize and WithMaxContentBytes
// limits. Other files are read lazily. keep must be cheap: it sees every
// regular file of every layer.
func WithContents(keep func(path string) bool) Option {
	return func(o *options) error {
		if keep == nil {
			return errors.New("rootfs: WithContents: nil function")
		}
		o.keep = keep
		return nil
	}
}

// WithMaxEntries limits the number of tar entries of the whole image.
func WithMaxEntries(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("rootfs: WithMaxEntries(%d): must be positive", n)
		}
		o.maxEntries = n
		return nil
	}
}

// WithMaxLayerSize limits the uncompressed bytes of each layer (a guard
// against decompression bombs).
func WithMaxLayerSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("rootfs: WithMaxLayerSize(%d): must be positive", n)
		}
		o.maxLayerSize = n
		return nil
	}
}

// WithMaxFileSize limits the size of a single file read into memory, by
// WithContents and by ReadFile. Larger files can still be streamed with Open.
func WithMaxFileSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("rootfs: WithMaxFileSize(%d): must be positive", n)
		}
		o.maxFileSize = n
		return nil
	}
}

// WithMaxContentBytes limits the total bytes WithContents keeps; files past
// the budget are read lazily instead.
func WithMaxContentBytes(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("rootfs: WithMaxContentBytes(%d): must not be negative", n)
		}
		o.maxContentBytes = n
		return nil
	}
}

// WithSpoolDir writes each layer's uncompressed tar to a temporary file in
// dir ("" for os.TempDir) during the pass, so that lazy reads are positioned
// reads instead of re-streaming the layer. The disk use is the image's
// uncompressed size; Close removes the files.
func WithSpoolDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			dir = os.TempDir()
		}
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("rootfs: WithSpoolDir: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("rootfs: WithSpoolDir: %s is not a directory", dir)
		}
		o.spoolDir, o.spool = dir, true
		return nil
	}
}

// WithLayerCache reads layer indexes and file contents from c, and puts
// there what it reads from layers (see LayerCache).
func WithLayerCache(c LayerCache) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("rootfs: WithLayerCache: nil cache")
		}
		o.cache = c
		return nil
	}
}

// FS is the merged view of an image. It is safe for concurrent use; it is
// immutable once New returns.
type FS struct {
	root     *node
	layers   []v1.Layer
	info     []Layer
	spools   []*os.File // per layer, when spooling
	warnings []Warning
	maxFile  int64
	cache    LayerCache
}

// New indexes img's layers in one streaming pass.
func New(ctx context.Context, img v1.Image, opts ...Option) (*FS, error) {
	o := options{
		maxEntries:      DefaultMaxEntries,
		maxLayerSize:    DefaultMaxLayerSize,
		maxFileSize:     DefaultMaxFileSize,
		maxContentBytes: DefaultMaxContentBytes,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if img == nil {
		return nil, errors.New("rootfs: nil image")
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("rootfs: listing layers: %w", err)
	}
	f := &FS{
		root:    &node{name: ".", mode: implicitDirMode, layer: -1, maxLayer: -1, children: map[string]*node{}},
		layers:  layers,
		maxFile: o.maxFileSize,
		cache:   o.cache,
	}
	f.root.parent = f.root
	// DiffIDs come from the config (asking a compressed layer for its
	// DiffID decompresses it all); each layer's content is checked against
	// its own.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("rootfs: reading the image config: %w", err)
	}
	if cf == nil || len(cf.RootFS.DiffIDs) != len(layers) {
		n := 0
		if cf != nil {
			n = len(cf.RootFS.DiffIDs)
		}
		return nil, refusal.New(refusal.Corrupt, "the image config lists %d rootfs.diff_ids for the manifest's %d layers", n, len(layers))
	}
	diffIDs := cf.RootFS.DiffIDs
	b := &builder{fs: f, o: &o, budget: o.maxContentBytes}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			f.Close()
			return nil, err
		}
		if err := b.applyLayer(ctx, i, l, diffIDs[i]); err != nil {
			f.Close()
			return nil, err
		}
	}
	f.root.finish()
	return f, nil
}

// Close releases spooled layer files. Reads after Close fall back to
// re-streaming layers.
func (f *FS) Close() error {
	var errs []error
	for i, s := range f.spools {
		if s == nil {
			continue
		}
		name := s.Name()
		errs = append(errs, s.Close(), os.Remove(name))
		f.spools[i] = nil
	}
	return errors.Join(errs...)
}

// Spooled returns layer i's uncompressed tar as the pass read it and
// checked it against its diff ID (WithSpoolDir), or nil when that layer
// was not read (its index came from the layer cache), nothing was
// spooled, or the FS is closed. It reads the spool file: valid until
// Close.
func (f *FS) Spooled(i int) *io.SectionReader {
	s := f.spool(i)
	if s == nil || i >= len(f.info) {
		return nil
	}
	return io.NewSectionReader(s, 0, f.info[i].Size)
}

// Warnings returns what was skipped or adjusted while indexing, in order.
func (f *FS) Warnings() []Warning { return append([]Warning(nil), f.warnings...) }

// Layers describes the image's layers, base first, with the paths each wrote.
func (f *FS) Layers() []Layer { return append([]Layer(nil), f.info...) }

// maxHostileListed bounds the entries a hostile refusal names.
const maxHostileListed = 5

// CheckHostile returns a *refusal.Error of kind refusal.Hostile (wrapping
// ErrHostile) naming the
// entries (layer, digest, name) that try to leave the image root: names
// or hardlink targets that climb out with "..", NUL bytes, symbolic links
// whose target climbs above the root. Runtimes refuse such layers or
// confine them; whoever judges or patches the image must refuse it. nil
// when there is none.
func (f *FS) CheckHostile() error {
	var first *Warning
	var bad []string
	total := 0
	for i, w := range f.warnings {
		if !w.Hostile {
			continue
		}
		total++
		if first == nil {
			first = &f.warnings[i]
		}
		if len(bad) < maxHostileListed {
			bad = append(bad, w.String())
		}
	}
	if first == nil {
		return nil
	}
	if total > len(bad) {
		bad = append(bad, fmt.Sprintf("and %d more", total-len(bad)))
	}
	return &refusal.Error{Kind: refusal.Hostile, Reason: strings.Join(bad, "; "),
		Digest: first.Digest.String(), Entry: first.Entry, Err: ErrHostile}
}
