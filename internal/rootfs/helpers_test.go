package rootfs

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ent is one tar entry of a synthetic layer.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func file(name, body string) ent { return ent{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func sym(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hard(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}
func wh(name string) ent { return ent{name: name, typ: tar.TypeReg, mode: 0o600} }

// tarBytes writes ents as an uncompressed tar.
func tarBytes(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: epoch,
			Uid: 0, Gid: 0, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rawLayer(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	return l
}

// image builds an image with one layer per element of layers.
func image(t testing.TB, layers ...[]ent) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, ents := range layers {
		ls = append(ls, rawLayer(t, tarBytes(t, ents...)))
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func newFS(t testing.TB, img v1.Image, opts ...Option) *FS {
	t.Helper()
	f, err := New(t.Context(), img, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// rawImage is an image of raw uncompressed layers that never computes
// digests (mutate would decompress every layer to compute its DiffID).
type rawImage struct {
	v1.Image // empty.Image for the methods New does not use
	layers   []v1.Layer
}

func (r rawImage) Layers() ([]v1.Layer, error) { return r.layers, nil }
func (r rawImage) ConfigFile() (*v1.ConfigFile, error) {
	cf := &v1.ConfigFile{}
	for _, l := range r.layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, d)
	}
	return cf, nil
}

// bytesLayer is an uncompressed layer held in memory: its digest and
// diff_id are the same.
type bytesLayer struct {
	v1.Layer // nil: methods New does not use panic
	data     []byte
	digest   v1.Hash
}

func (b bytesLayer) Digest() (v1.Hash, error) { return b.digest, nil }
func (b bytesLayer) DiffID() (v1.Hash, error) { return b.digest, nil }
func (b bytesLayer) Size() (int64, error)     { return int64(len(b.data)), nil }
func (b bytesLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.data)), nil
}
func (b bytesLayer) Compressed() (io.ReadCloser, error) { return b.Uncompressed() }

func newBytesLayer(data []byte) bytesLayer {
	h, _, _ := v1.SHA256(bytes.NewReader(data))
	return bytesLayer{data: data, digest: h}
}
