package rootfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerCache keeps, by layer digest, what indexing a layer read — the tar
// headers and the contents WithContents kept — and the contents read
// lazily later, so that indexing the same image again (and reading the
// same files) reads no layer. The cache is the caller's: it must key its
// records by the layer digest and by what WithContents keeps (a record
// made with another keep rule is refused as ErrCacheMismatch), and it
// must return only what it stored (it checks its own integrity).
type LayerCache interface {
	// Layer returns the record of the layer with digest d, nil when it
	// has none.
	Layer(d v1.Hash) (*LayerRecord, error)
	// PutLayer stores the record of a layer just indexed.
	PutLayer(d v1.Hash, r *LayerRecord) error
	// Content returns the content of entry ordinal of layer d, nil when
	// it has none.
	Content(d v1.Hash, ordinal int) ([]byte, error)
	// PutContent stores the content of entry ordinal of layer d, read
	// lazily.
	PutContent(d v1.Hash, ordinal int, data []byte) error
}

// ErrCacheMismatch is wrapped when a cached layer record does not fit
// the index being built (another keep rule, or a damaged record): drop
// the cache's entries and index again.
var ErrCacheMismatch = errors.New("rootfs: cached layer record does not match")

// LayerRecord is what indexing one layer read.
type LayerRecord struct {
	Size int64 // uncompressed bytes of the layer
	// DiffID is the uncompressed digest the content was verified against:
	// a record is replayed only for an image whose config names the same.
	DiffID  v1.Hash
	Entries []RecordEntry
}

// RecordEntry is one tar entry of a layer: the header fields indexing
// uses, the entry's data offset in the uncompressed stream, and its
// content when WithContents kept it.
type RecordEntry struct {
	Name               string
	Typeflag           byte
	Mode               int64
	Size               int64
	UID, GID           int
	ModTime            time.Time
	Linkname           string
	Devmajor, Devminor int64
	Sparse             bool
	Offset             int64
	Kept               bool
	Data               []byte
}

func recordOf(h *tar.Header, offset int64) RecordEntry {
	return RecordEntry{Name: h.Name, Typeflag: h.Typeflag, Mode: h.Mode, Size: h.Size, UID: h.Uid, GID: h.Gid,
		ModTime: h.ModTime, Linkname: h.Linkname, Devmajor: h.Devmajor, Devminor: h.Devminor,
		Sparse: h.Typeflag == tar.TypeGNUSparse || hasSparse(h), Offset: offset}
}

func (e *RecordEntry) header() *tar.Header {
	h := &tar.Header{Name: e.Name, Typeflag: e.Typeflag, Mode: e.Mode, Size: e.Size, Uid: e.UID, Gid: e.GID,
		ModTime: e.ModTime, Linkname: e.Linkname, Devmajor: e.Devmajor, Devminor: e.Devminor}
	if e.Sparse && e.Typeflag != tar.TypeGNUSparse {
		h.PAXRecords = map[string]string{"GNU.sparse.cached": "1"}
	}
	return h
}

// recorder captures what applyLayer reads, for the cache.
type recorder struct {
	rec  LayerRecord
	data bytes.Buffer // content read for the current entry
}

// tee is the reader apply reads an entry's content from while recording.
type tee struct {
	r   io.Reader
	buf *bytes.Buffer
}

func (t tee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf.Write(p[:n])
	return n, err
}

// replay applies a cached record of layer idx.
func (b *builder) replay(idx int, rec *LayerRecord, info *Layer) error {
	for ordinal := range rec.Entries {
		e := &rec.Entries[ordinal]
		b.entries++
		if b.entries > b.o.maxEntries {
			return fmt.Errorf("%w: more than %d entries in the image", ErrLimit, b.o.maxEntries)
		}
		var r io.Reader = missing{}
		if e.Kept {
			r = bytes.NewReader(e.Data)
		}
		if err := b.apply(idx, ordinal, e.header(), r, e.Offset, info); err != nil {
			return fmt.Errorf("%w: entry %q: %v", ErrCacheMismatch, e.Name, err)
		}
	}
	info.Size = rec.Size
	return nil
}

// missing is the content of an entry the record did not keep: asking for
// it means the record was made with another keep rule.
type missing struct{}

func (missing) Read([]byte) (int, error) { return 0, errors.New("content not in the cached record") }

// cachedContent returns c's content from the cache, if there.
func (f *FS) cachedContent(c *content) []byte {
	if f.cache == nil || c.kept {
		return nil
	}
	d, err := f.layers[c.layer].Digest()
	if err != nil {
		return nil
	}
	data, err := f.cache.Content(d, c.ordinal)
	if err != nil || int64(len(data)) != c.size {
		return nil
	}
	return data
}

// storeContent puts c's content, read lazily, in the cache.
func (f *FS) storeContent(c *content, data []byte) {
	if f.cache == nil || c.kept {
		return
	}
	if d, err := f.layers[c.layer].Digest(); err == nil {
		_ = f.cache.PutContent(d, c.ordinal, data) // a cache that cannot store is only slower
	}
}
