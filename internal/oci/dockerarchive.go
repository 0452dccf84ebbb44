package oci

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// A docker-archive (the format of "docker save" and of skopeo's
// docker-archive: transport) holds a manifest.json, one config per image
// and uncompressed (or sometimes compressed) layer tars, but no registry
// manifest. drydock builds that manifest the way containers/image (skopeo,
// podman) does when it copies docker-archive:FILE to a registry, so that
// the digest matches:
//
//   - a Docker schema 2 manifest (application/vnd.docker.distribution.manifest.v2+json),
//     compact JSON with the fields schemaVersion, mediaType, config, layers;
//   - the config blob is the archive's config file, byte for byte;
//   - every layer is decompressed if the archive holds it compressed,
//     checked against the config's rootfs.diff_ids, and compressed with
//     github.com/klauspost/pgzip at its default level and block size (what
//     containers/image's copy does for a registry destination), media type
//     application/vnd.docker.image.rootfs.diff.tar.gzip.
//
// The gzip bytes depend on the deflate implementation the tool is built
// with. github.com/klauspost/compress changed its output in v1.18.1: a
// skopeo built with compress v1.18.1 or later (as drydock is, v1.20.x)
// gives the same digests as drydock; one built with an older version
// (Debian 12's skopeo 1.9.3 uses v1.15.12) writes the same manifest
// structure, config and uncompressed layers, but different gzip bytes for
// compressible layers, hence other layer and manifest digests.
// TestDockerArchiveDigestMatchesSkopeo tells the two cases apart.

const (
	maxDockerManifestJSON = 4 << 20
	maxConfigSize         = 32 << 20
)

type dockerManifestItem struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// daDescriptor and daManifest serialize exactly like containers/image's
// manifest.Schema2Descriptor and manifest.Schema2.
type daDescriptor struct {
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	Digest    string `json:"digest"`
}

type daManifest struct {
	SchemaVersion int            `json:"schemaVersion"`
	MediaType     string         `json:"mediaType"`
	Config        daDescriptor   `json:"config"`
	Layers        []daDescriptor `json:"layers"`
}

func openDockerArchive(ctx context.Context, s Source, o *options) (_ *Artifact, err error) {
	what := "docker-archive " + s.Path
	a := &Artifact{Source: s}
	defer func() {
		if err != nil {
			_ = a.Close()
			err = fmt.Errorf("opening %s: %w", what, err)
		}
	}()
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, f.Close)
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.IsDir() {
		return nil, errors.New("is a directory")
	}
	var magic [4]byte
	if n, _ := io.ReadFull(f, magic[:]); n >= 3 && bytes.Equal(magic[:3], []byte{0x1f, 0x8b, 0x08}) {
		// A compressed archive (docker save | gzip): unpack to a temporary file.
		tmp, err := decompressToTemp(ctx, f, o.tempDir)
		if err != nil {
			return nil, fmt.Errorf("decompressing: %w", err)
		}
		a.closers = append(a.closers, func() error { tmp.Close(); return os.Remove(tmp.Name()) })
		f = tmp
	}
	ix, err := indexTar(f)
	if err != nil {
		return nil, err
	}
	r, err := ix.open("manifest.json")
	if err != nil {
		return nil, fmt.Errorf("not a docker-archive: %w", err)
	}
	mb, err := readLimited(r, maxDockerManifestJSON, "manifest.json")
	if err != nil {
		return nil, err
	}
	var items []dockerManifestItem
	if err := json.Unmarshal(mb, &items); err != nil {
		return nil, fmt.Errorf("parsing manifest.json: %w", err)
	}
	item, refName, err := chooseDockerItem(items, s)
	if err != nil {
		return nil, err
	}
	a.RefName = refName
	r, err = ix.open(item.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfgBytes, err := readLimited(r, maxConfigSize, "config "+item.Config)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		RootFS *struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return nil, fmt.Errorf("parsing config %s: %w", item.Config, err)
	}
	if cfg.RootFS == nil {
		return nil, fmt.Errorf("config %s: rootfs is not set", item.Config)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(item.Layers) {
		return nil, fmt.Errorf("inconsistent layer count: %d in manifest.json, %d in config", len(item.Layers), len(diffIDs))
	}
	// Validate everything cheap first: every layer file is present.
	paths := map[v1.Hash]string{}
	for i, d := range diffIDs {
		if d.Algorithm != "sha256" {
			return nil, fmt.Errorf("layer %d: unsupported diff_id algorithm %q", i, d.Algorithm)
		}
		if _, err := ix.open(item.Layers[i]); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if _, ok := paths[d]; !ok {
			paths[d] = item.Layers[i]
		}
	}
	// Then read every layer once: check it against its diff_id and learn
	// the digest and size of its gzip form.
	rep := newReporter(o.progress)
	layers := map[v1.Hash]*daLayer{}
	m := daManifest{
		SchemaVersion: 2,
		MediaType:     string(types.DockerManifestSchema2),
		Config: daDescriptor{
			MediaType: string(types.DockerConfigJSON),
			Size:      int64(len(cfgBytes)),
			Digest:    digestOf(cfgBytes).String(),
		},
		Layers: []daDescriptor{},
	}
	for _, d := range diffIDs {
		l, ok := layers[d]
		if !ok {
			l = &daLayer{ctx: ctx, ix: ix, path: paths[d], diffID: d}
			if err := l.prepare(ctx, rep); err != nil {
				return nil, err
			}
			layers[d] = l
			layers[l.digest] = l
		}
		m.Layers = append(m.Layers, daDescriptor{MediaType: string(types.DockerLayer), Size: l.size, Digest: l.digest.String()})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	core := &daImage{raw: raw, config: cfgBytes, layers: layers}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, err
	}
	a.Image = img
	a.Descriptor = v1.Descriptor{MediaType: types.DockerManifestSchema2, Size: int64(len(raw)), Digest: digestOf(raw)}
	o.logger.Debug("opened docker-archive", "path", s.Path, "digest", a.Descriptor.Digest.String(), "layers", len(diffIDs))
	return a, nil
}

func chooseDockerItem(items []dockerManifestItem, s Source) (dockerManifestItem, string, error) {
	first := func(it dockerManifestItem) string {
		if len(it.RepoTags) > 0 {
			return it.RepoTags[0]
		}
		return ""
	}
	switch {
	case s.Index >= 0:
		if s.Index >= len(items) {
			return dockerManifestItem{}, "", fmt.Errorf("no image @%d: the archive holds %d", s.Index, len(items))
		}
		return items[s.Index], first(items[s.Index]), nil
	case s.Tag != "":
		want, err := name.NewTag(s.Tag)
		if err != nil {
			return dockerManifestItem{}, "", err
		}
		var all []string
		for _, it := range items {
			for _, rt := range it.RepoTags {
				all = append(all, rt)
				if t, err := name.NewTag(rt); err == nil && t.Name() == want.Name() {
					return it, rt, nil
				}
			}
		}
		return dockerManifestItem{}, "", fmt.Errorf("no image named %q (names: %s): %w", s.Tag, cmp.Or(strings.Join(all, ", "), "none"), ErrNotFound)
	}
	switch len(items) {
	case 0:
		return dockerManifestItem{}, "", errors.New("manifest.json lists no images")
	case 1:
		return items[0], first(items[0]), nil
	}
	return dockerManifestItem{}, "", fmt.Errorf("the archive holds %d images; pick one with :NAME:TAG or :@INDEX", len(items))
}

func decompressToTemp(ctx context.Context, f *os.File, dir string) (*os.File, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, "drydock-docker-archive-*.tar")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, ctxReader{ctx, zr}); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return tmp, nil
}

// daImage is the partial.CompressedImageCore of a docker-archive image.
type daImage struct {
	raw, config []byte
	layers      map[v1.Hash]*daLayer // by diff_id and by gzip digest
}

func (i *daImage) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *daImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }
func (i *daImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *daImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok && l.digest == h {
		return l, nil
	}
	return nil, fmt.Errorf("layer %s: %w", h, ErrNotFound)
}

// daLayer is one layer of a docker-archive, served gzip-compressed.
type daLayer struct {
	ctx          context.Context
	ix           *tarIndex
	path         string
	diffID       v1.Hash
	digest       v1.Hash // of the gzip form
	size         int64   // of the gzip form
	uncompressed int64
}

func (l *daLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *daLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *daLayer) Size() (int64, error)                { return l.size, nil }
func (l *daLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

// Compressed streams the layer's gzip form, computed again on the fly;
// the copy verifies it against the digest prepare computed.
func (l *daLayer) Compressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		_, _, err := l.recompress(l.ctx, pw, nil)
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// prepare reads the layer once, checks its diff_id and records the digest
// and size of its gzip form.
func (l *daLayer) prepare(ctx context.Context, rep *reporter) error {
	h := sha256.New()
	cw := &countWriter{w: h}
	diffID, n, err := l.recompress(ctx, cw, rep)
	if err != nil {
		return err
	}
	if diffID != l.diffID {
		return fmt.Errorf("layer %s: %w: its diff_id is %s but its content hashes to %s", l.path, ErrContentMismatch, l.diffID, diffID)
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	l.size = cw.n
	l.uncompressed = n
	return nil
}

// recompress writes the layer's gzip form to w and returns the digest and
// size of its uncompressed form.
func (l *daLayer) recompress(ctx context.Context, w io.Writer, rep *reporter) (v1.Hash, int64, error) {
	sec, err := l.ix.open(l.path)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	var src io.Reader = sec
	if rep != nil {
		src = rep.reader(sec, Progress{Phase: PhasePrepare, Digest: l.diffID, MediaType: types.DockerUncompressedLayer, Total: sec.Size()})
	}
	plain, err := autoDecompress(src)
	if err != nil {
		return v1.Hash{}, 0, fmt.Errorf("layer %s: %w", l.path, err)
	}
	defer plain.Close()
	h := sha256.New()
	zw := pgzip.NewWriter(w)
	n, err := io.Copy(zw, io.TeeReader(ctxReader{ctx, plain}, h))
	if err != nil {
		zw.Close()
		return v1.Hash{}, 0, fmt.Errorf("layer %s (corrupt or truncated?): %w", l.path, err)
	}
	if err := zw.Close(); err != nil {
		return v1.Hash{}, 0, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n, nil
}

// autoDecompress returns the decompressed stream of r if r starts with a
// known compression magic, else r itself.
func autoDecompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(6)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b, 0x08}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return nil, errors.New("xz-compressed layers are not supported")
	}
	return io.NopCloser(br), nil
}

func digestOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
