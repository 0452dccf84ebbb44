package rootfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/klauspost/compress/zstd"

	"github.com/drydock-project/drydock/internal/refusal"
)

// blobLayer serves blob as its compressed bytes and claims digest, size
// and diffID, each of which a test may make wrong. A non-nil failAt makes
// the stream fail after that many bytes, as a dropped connection does; a
// non-nil endErr replaces the final io.EOF, as go-containerregistry's own
// verification does when the digest does not match.
type blobLayer struct {
	v1.Layer
	blob           []byte
	digest, diffID v1.Hash
	size           int64
	failAt         int
	endErr         error
}

func (b *blobLayer) Digest() (v1.Hash, error) { return b.digest, nil }
func (b *blobLayer) DiffID() (v1.Hash, error) { return b.diffID, nil }
func (b *blobLayer) Size() (int64, error)     { return b.size, nil }
func (b *blobLayer) Compressed() (io.ReadCloser, error) {
	var r io.Reader = bytes.NewReader(b.blob)
	if b.failAt > 0 {
		r = io.MultiReader(io.LimitReader(r, int64(b.failAt)), errReader{errors.New("connection reset by peer")})
	}
	if b.endErr != nil {
		r = io.MultiReader(r, errReader{b.endErr})
	}
	return io.NopCloser(r), nil
}
func (b *blobLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("Uncompressed must not be used for the first pass")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func sha(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// honest returns a layer whose claims are all true.
func honest(blob, plain []byte) *blobLayer {
	return &blobLayer{blob: blob, digest: sha(blob), diffID: sha(plain), size: int64(len(blob))}
}

func TestVerify(t *testing.T) {
	plain := tarBytes(t, file("etc/os-release", "ID=debian\n"), file("var/lib/dpkg/status", "Package: x\n"))
	gz := gzipped(t, plain)
	other := tarBytes(t, file("etc/os-release", "ID=alpine\n"))
	garbage := append(gzipped(t, plain[:700]), "not gzip"...)
	badTar := gzipped(t, append(bytes.Repeat([]byte{'x'}, 512), make([]byte, 1024)...))
	tests := []struct {
		name   string
		layer  func() *blobLayer
		kind   refusal.Kind // "" for no refusal
		errHas string
		ok     bool
	}{
		{name: "gzip", layer: func() *blobLayer { return honest(gz, plain) }, ok: true},
		{name: "zstd", layer: func() *blobLayer { z := zstded(t, plain); return honest(z, plain) }, ok: true},
		{name: "uncompressed", layer: func() *blobLayer { return honest(plain, plain) }, ok: true},
		{name: "diff_id mismatch", layer: func() *blobLayer { l := honest(gz, plain); l.diffID = sha(other); return l },
			kind: refusal.Corrupt, errHas: "rootfs.diff_ids says " + sha(other).String()},
		{name: "blob is not its digest", layer: func() *blobLayer { l := honest(gzipped(t, other), other); l.digest = sha(gz); return l },
			kind: refusal.Corrupt, errHas: "hashes to " + sha(gzipped(t, other)).String()},
		{name: "the source's own verification fails at the end", layer: func() *blobLayer {
			l := honest(gzipped(t, other), other)
			l.digest, l.endErr = sha(gz), errors.New("error verifying sha256 checksum")
			l.size = int64(len(l.blob))
			return l
		}, kind: refusal.Corrupt, errHas: "not to the digest the manifest names"},
		{name: "longer than the manifest says", layer: func() *blobLayer { l := honest(gz, plain); l.size -= 10; return l },
			kind: refusal.Corrupt, errHas: "manifest says"},
		{name: "shorter than the manifest says", layer: func() *blobLayer { l := honest(gz, plain); l.size += 10; return l },
			kind: refusal.Corrupt, errHas: "manifest says"},
		{name: "bad gzip stream, bytes as named", layer: func() *blobLayer { return honest(garbage, plain) },
			kind: refusal.Corrupt, errHas: "layer 0 (" + sha(garbage).String()},
		{name: "bad tar, bytes as named", layer: func() *blobLayer { return honest(badTar, plain) }, kind: refusal.Corrupt},
		{name: "dropped connection: not a refusal", layer: func() *blobLayer { l := honest(gz, plain); l.failAt = 100; return l },
			errHas: "connection reset by peer"},
		{name: "unknown digest algorithm", layer: func() *blobLayer {
			l := honest(gz, plain)
			l.digest = v1.Hash{Algorithm: "md5", Hex: "00"}
			return l
		}, kind: refusal.Corrupt, errHas: "md5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.layer()
			fsys, err := New(t.Context(), rawImage{Image: empty.Image, layers: []v1.Layer{l}},
				WithContents(func(string) bool { return true }))
			if tt.ok {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				check(t, fsys, map[string]string{"etc/os-release": "file:ID=debian\n"})
				fsys.Close()
				return
			}
			if err == nil {
				fsys.Close()
				t.Fatal("New succeeded")
			}
			t.Log(err)
			kind, isRefusal := refusal.KindOf(err)
			if kind != tt.kind {
				t.Errorf("kind = %q, want %q", kind, tt.kind)
			}
			if refusal.IsPermanent(err) != isRefusal {
				t.Errorf("permanent = %v for a refusal %v", refusal.IsPermanent(err), isRefusal)
			}
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q does not contain %q", err, tt.errHas)
			}
			var r *refusal.Error
			if errors.As(err, &r) && r.Digest == "" && tt.name != "unknown digest algorithm" {
				t.Errorf("refusal %v names no digest", err)
			}
			var le *LayerError
			if !errors.As(err, &le) {
				t.Errorf("%v is not a *LayerError", err)
			}
		})
	}
}

func TestDiffIDCount(t *testing.T) {
	plain := tarBytes(t, file("a", "b"))
	img := countImage{rawImage{Image: empty.Image, layers: []v1.Layer{newBytesLayer(plain), newBytesLayer(plain)}}}
	_, err := New(t.Context(), img)
	if k, _ := refusal.KindOf(err); k != refusal.Corrupt || !strings.Contains(fmt.Sprint(err), "1 rootfs.diff_ids for the manifest's 2 layers") {
		t.Fatalf("New = %v; want a corrupt refusal naming the counts", err)
	}
}

// countImage's config lists one diff_id fewer than its layers.
type countImage struct{ rawImage }

func (c countImage) ConfigFile() (*v1.ConfigFile, error) {
	cf, err := c.rawImage.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf.RootFS.DiffIDs = cf.RootFS.DiffIDs[1:]
	return cf, nil
}

func TestOverLimitRefusal(t *testing.T) {
	many := make([]ent, 20)
	for i := range many {
		many[i] = file("f"+itoa8(int64(i)), "x")
	}
	_, err := New(t.Context(), image(t, many), WithMaxEntries(10))
	if k, _ := refusal.KindOf(err); k != refusal.OverLimit || !errors.Is(err, ErrLimit) || !refusal.IsPermanent(err) {
		t.Fatalf("New = %v; want a permanent over-limit refusal wrapping ErrLimit", err)
	}
	var r *refusal.Error
	if errors.As(err, &r); r.Entry != "f12" || !strings.HasPrefix(r.Digest, "sha256:") {
		t.Errorf("refusal names entry %q digest %q; want f12 and the layer digest", r.Entry, r.Digest)
	}
}

func TestSymlinkEscapes(t *testing.T) {
	tests := []struct {
		path, target string
		want         bool
	}{
		{"lib", "usr/lib", false},
		{"usr/bin/x", "../lib/x", false},
		{"usr/bin/x", "../../lib/x", false},
		{"usr/bin/x", "../../../etc/shadow", true},
		{"x", "..", true},
		{"a/b", "./../..", true},
		{"a/b", "c/../../..", true},
		{"a/b/c", "../../d", false},
		{"etc/alternatives/awk", "/usr/bin/mawk", false},
		{"etc/x", "/../etc/shadow", true},
		{"etc/x", "/", false},
		{"x", "", false},
		{"a/b", "c/d/../../../../..", true},
		{"a/b", "//..//..", true},
	}
	for _, tt := range tests {
		if got := symlinkEscapes(tt.path, tt.target); got != tt.want {
			t.Errorf("symlinkEscapes(%q, %q) = %v, want %v", tt.path, tt.target, got, tt.want)
		}
	}
}
