package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// Result describes what Copy wrote.
type Result struct {
	// Reference is the destination tag, e.g. 127.0.0.1:5000/quarantine/nginx:1.27.1.
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Size is the size of the top manifest in bytes.
	Size int64 `json:"size"`
	// Platforms lists os/arch[/variant] of an index's images; empty for a single image.
	Platforms []string `json:"platforms,omitempty"`
	// Blobs counts config and layer blobs; BlobsExisting of them were already there.
	Blobs         int   `json:"blobs"`
	BlobsExisting int   `json:"blobsExisting"`
	BytesPushed   int64 `json:"bytesPushed"`
	Manifests     int   `json:"manifests"`
}

// node is one manifest to write.
type node struct {
	desc     v1.Descriptor
	raw      []byte
	children []*node
	platform *v1.Platform
}

// blobTask is one config or layer blob to write.
type blobTask struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
}

type plan struct {
	top   *node
	order []*node // manifests, children before parents
	blobs []*blobTask
}

// Copy writes src to dst (a tag, or a digest reference) with every blob
// and manifest byte for byte, so the digest does not change; an index stays
// an index with all its children unless WithPlatform selects one.
//
// Order: everything that can be checked is checked before the first write
// (manifests parse and match their digests, local blobs exist with the
// right sizes); then blobs, child manifests and the top manifest (with the
// tag) are written, each blob verified against its digest while it
// streams. On failure Copy deletes from dst the blobs and manifests it
// wrote that were not there before, and returns the error.
func Copy(ctx context.Context, src *Artifact, dst name.Reference, opts ...Option) (Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return Result{}, err
	}
	if src == nil || (src.Image == nil && src.Index == nil) {
		return Result{}, errors.New("copy: no source artifact")
	}
	p, err := makePlan(src, o)
	if err != nil {
		return Result{}, fmt.Errorf("checking %s: %w", src.Source, err)
	}
	if src.stat != nil {
		for _, b := range p.blobs {
			size, err := src.stat(b.desc.Digest)
			if err != nil {
				return Result{}, fmt.Errorf("checking %s: %w", src.Source, err)
			}
			if size != b.desc.Size {
				return Result{}, fmt.Errorf("checking %s: blob %s: %w: %d bytes, manifest says %d", src.Source, b.desc.Digest, ErrContentMismatch, size, b.desc.Size)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	repo := dst.Context().RepositoryStr()
	reg := dst.Context().Registry
	scopes := []string{repoScope(repo, "pull", "push")}
	var mountFrom string
	if src.Source.Kind == KindRegistry && src.Source.Ref.Context().RegistryStr() == reg.RegistryStr() &&
		src.Source.Ref.Context().RepositoryStr() != repo {
		// Same registry: blobs can be mounted instead of uploaded.
		mountFrom = src.Source.Ref.Context().RepositoryStr()
		scopes = append(scopes, repoScope(mountFrom, "pull"))
	}
	c, err := newClient(ctx, reg, o, scopes...)
	if err != nil {
		return Result{}, fmt.Errorf("connecting to %s: %w", reg.RegistryStr(), err)
	}
	cp := &copier{c: c, o: o, repo: repo, mountFrom: mountFrom, rep: newReporter(o.progress)}
	res, err := cp.run(ctx, p, dst)
	if err != nil {
		if cerr := cp.cleanup(ctx, reg); cerr != nil {
			err = errors.Join(err, fmt.Errorf("removing what the failed copy wrote: %w", cerr))
		}
		return Result{}, fmt.Errorf("copying %s to %s: %w", src.Source, dst.Name(), err)
	}
	return res, nil
}

func makePlan(src *Artifact, o *options) (*plan, error) {
	p := &plan{}
	seen := map[v1.Hash]bool{}
	mseen := map[v1.Hash]*node{}
	var err error
	switch {
	case src.Index != nil && o.platform != nil:
		im, err := src.Index.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", src.Descriptor.Digest, err)
		}
		child, err := matchPlatform(im.Manifests, *o.platform)
		if err != nil {
			return nil, err
		}
		if child.MediaType.IsIndex() {
			return nil, fmt.Errorf("platform %s selects a nested index, which is not supported", o.platform)
		}
		img, err := src.Index.Image(child.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s for %s: %w", child.Digest, o.platform, err)
		}
		p.top, err = planImage(p, img, child, seen)
		if err != nil {
			return nil, err
		}
	case src.Index != nil:
		p.top, err = planIndex(p, src.Index, src.Descriptor, seen, mseen, 0)
	default:
		p.top, err = planImage(p, src.Image, src.Descriptor, seen)
		if err == nil && o.platform != nil {
			err = checkImagePlatform(src.Image, *o.platform)
		}
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// checkRaw checks that raw matches the descriptor it was referenced by.
func checkRaw(raw []byte, want v1.Descriptor) error {
	if want.Digest.Hex == "" {
		return nil
	}
	got, err := digestAs(raw, want.Digest.Algorithm)
	if err != nil {
		return err
	}
	if got != want.Digest {
		return fmt.Errorf("manifest %s: %w: content hashes to %s", want.Digest, ErrContentMismatch, got)
	}
	if want.Size != 0 && want.Size != int64(len(raw)) {
		return fmt.Errorf("manifest %s: %w: %d bytes, descriptor says %d", want.Digest, ErrContentMismatch, len(raw), want.Size)
	}
	return nil
}

func digestAs(b []byte, alg string) (v1.Hash, error) {
	h, err := newHash(alg)
	if err != nil {
		return v1.Hash{}, err
	}
	h.Write(b)
	return v1.Hash{Algorithm: alg, Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("unsupported digest algorithm %q", alg)
}

// mediaTypeOf returns the manifest's own mediaType field, else fallback.
func mediaTypeOf(raw []byte, fallback types.MediaType) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.MediaType != "" {
		return probe.MediaType
	}
	if fallback == "" {
		return types.OCIManifestSchema1
	}
	return fallback
}

func planImage(p *plan, img v1.Image, want v1.Descriptor, seen map[v1.Hash]bool) (*node, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", want.Digest, err)
	}
	if err := checkRaw(raw, want); err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", want.Digest, err)
	}
	d, _ := digestAs(raw, "sha256")
	if want.Digest.Hex != "" {
		d = want.Digest
	}
	n := &node{desc: v1.Descriptor{MediaType: mediaTypeOf(raw, want.MediaType), Size: int64(len(raw)), Digest: d}, raw: raw, platform: want.Platform}
	add := func(desc v1.Descriptor, open func() (io.ReadCloser, error)) {
		if seen[desc.Digest] {
			return
		}
		seen[desc.Digest] = true
		p.blobs = append(p.blobs, &blobTask{desc: desc, open: open})
	}
	cfg := m.Config
	add(cfg, func() (io.ReadCloser, error) {
		b, err := img.RawConfigFile()
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	for _, l := range m.Layers {
		if !l.MediaType.IsDistributable() {
			continue // foreign layers stay where their URLs point
		}
		add(l, func() (io.ReadCloser, error) {
			layer, err := img.LayerByDigest(l.Digest)
			if err != nil {
				return nil, err
			}
			return layer.Compressed()
		})
	}
	p.order = append(p.order, n)
	return n, nil
}

func planIndex(p *plan, idx v1.ImageIndex, want v1.Descriptor, seen map[v1.Hash]bool, mseen map[v1.Hash]*node, depth int) (*node, error) {
	if depth > 4 {
		return nil, errors.New("indexes nested too deep")
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", want.Digest, err)
	}
	if err := checkRaw(raw, want); err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing index %s: %w", want.Digest, err)
	}
	d, _ := digestAs(raw, "sha256")
	if want.Digest.Hex != "" {
		d = want.Digest
	}
	n := &node{desc: v1.Descriptor{MediaType: mediaTypeOf(raw, want.MediaType), Size: int64(len(raw)), Digest: d}, raw: raw, platform: want.Platform}
	for _, cd := range im.Manifests {
		if c, ok := mseen[cd.Digest]; ok {
			n.children = append(n.children, c)
			continue
		}
		var c *node
		switch {
		case cd.MediaType.IsIndex():
			ci, err := idx.ImageIndex(cd.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading child index %s: %w", cd.Digest, err)
			}
			c, err = planIndex(p, ci, cd, seen, mseen, depth+1)
			if err != nil {
				return nil, err
			}
		default:
			img, err := idx.Image(cd.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading child manifest %s: %w", cd.Digest, err)
			}
			c, err = planImage(p, img, cd, seen)
			if err != nil {
				return nil, fmt.Errorf("child manifest %s: %w", cd.Digest, err)
			}
		}
		mseen[cd.Digest] = c
		n.children = append(n.children, c)
	}
	p.order = append(p.order, n)
	return n, nil
}

// matchPlatform picks the first child of an index for p. A wanted variant
// must match; without one, a child with any variant matches.
func matchPlatform(ms []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	var avail []string
	for _, d := range ms {
		if d.Platform == nil {
			continue
		}
		avail = append(avail, d.Platform.String())
		if d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture &&
			(want.Variant == "" || d.Platform.Variant == want.Variant ||
				(want.Architecture == "arm64" && d.Platform.Variant == "" && want.Variant == "v8")) {
			return d, nil
		}
	}
	sort.Strings(avail)
	avail = slices.Compact(avail)
	return v1.Descriptor{}, fmt.Errorf("platform %s: %w in the index (platforms: %v)", want.String(), ErrNotFound, avail)
}

func checkImagePlatform(img v1.Image, want v1.Platform) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if cf.OS != want.OS || cf.Architecture != want.Architecture || (want.Variant != "" && cf.Variant != want.Variant) {
		got := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		return fmt.Errorf("platform %s: %w: the source is a single image for %s", want.String(), ErrNotFound, got.String())
	}
	return nil
}

// copier writes a plan and remembers what it wrote, for cleanup.
type copier struct {
	c         *client
	o         *options
	repo      string
	mountFrom string // repository on the same registry to mount blobs from
	rep       *reporter

	mu          sync.Mutex
	pushedBlobs []v1.Hash // written, or being written, by this copy
	pushedMans  []v1.Hash
	existing    int
	bytes       int64
}

func (cp *copier) run(ctx context.Context, p *plan, dst name.Reference) (Result, error) {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cp.o.jobs)
	for _, b := range p.blobs {
		g.Go(func() error { return cp.copyBlob(gctx, b) })
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	for _, n := range p.order {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		top := n == p.top
		ref := n.desc.Digest.String()
		if top {
			if t, ok := dst.(name.Tag); ok {
				ref = t.TagStr()
			} else if dst.Identifier() != ref {
				return Result{}, fmt.Errorf("destination %s names digest %s, the source is %s", dst.Name(), dst.Identifier(), ref)
			}
		}
		existed, err := cp.c.exists(ctx, cp.repo, "manifests", n.desc.Digest.String(), string(n.desc.MediaType))
		if err != nil {
			return Result{}, fmt.Errorf("checking manifest %s: %w", n.desc.Digest, err)
		}
		if existed && !top {
			cp.rep.report(Progress{Phase: PhaseManifest, Digest: n.desc.Digest, MediaType: n.desc.MediaType, Complete: n.desc.Size, Total: n.desc.Size, Done: true, Skipped: true})
			continue
		}
		if !existed {
			cp.mu.Lock()
			cp.pushedMans = append(cp.pushedMans, n.desc.Digest)
			cp.mu.Unlock()
		}
		if err := cp.c.putManifest(ctx, cp.repo, ref, n.desc.MediaType, n.raw); err != nil {
			return Result{}, fmt.Errorf("writing manifest %s: %w", n.desc.Digest, err)
		}
		cp.rep.report(Progress{Phase: PhaseManifest, Digest: n.desc.Digest, MediaType: n.desc.MediaType, Complete: n.desc.Size, Total: n.desc.Size, Done: true})
	}
	res := Result{
		Reference:     dst.Name(),
		Digest:        p.top.desc.Digest.String(),
		MediaType:     string(p.top.desc.MediaType),
		Size:          p.top.desc.Size,
		Blobs:         len(p.blobs),
		BlobsExisting: cp.existing,
		BytesPushed:   cp.bytes,
		Manifests:     len(p.order),
	}
	for _, c := range p.top.children {
		if c.platform != nil {
			res.Platforms = append(res.Platforms, c.platform.String())
		}
	}
	cp.o.logger.Debug("copy finished", "ref", res.Reference, "digest", res.Digest, "blobs", res.Blobs, "existing", res.BlobsExisting, "bytes", res.BytesPushed, "elapsed", time.Since(start))
	return res, nil
}

func (cp *copier) copyBlob(ctx context.Context, b *blobTask) error {
	d := b.desc.Digest
	existed, err := cp.c.exists(ctx, cp.repo, "blobs", d.String(), "")
	if err != nil {
		return fmt.Errorf("checking blob %s: %w", d, err)
	}
	if existed {
		cp.mu.Lock()
		cp.existing++
		cp.mu.Unlock()
		cp.rep.report(Progress{Phase: PhaseBlob, Digest: d, MediaType: b.desc.MediaType, Complete: b.desc.Size, Total: b.desc.Size, Done: true, Skipped: true})
		return nil
	}
	// Remember the blob before writing: a cancelled request may still
	// have been committed by the registry.
	cp.mu.Lock()
	cp.pushedBlobs = append(cp.pushedBlobs, d)
	cp.mu.Unlock()
	var loc *url.URL
	if cp.mountFrom != "" {
		mounted, l, err := cp.c.mountBlob(ctx, cp.repo, cp.mountFrom, d)
		if err != nil {
			return fmt.Errorf("mounting blob %s from %s: %w", d, cp.mountFrom, err)
		}
		if mounted {
			cp.rep.report(Progress{Phase: PhaseBlob, Digest: d, MediaType: b.desc.MediaType, Complete: b.desc.Size, Total: b.desc.Size, Done: true})
			return nil
		}
		loc = l
	}
	rc, err := b.open()
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", d, err)
	}
	defer rc.Close()
	h, err := newHash(d.Algorithm)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	vr := &verifyReader{r: rc, h: h, want: b.desc}
	body := cp.rep.reader(vr, Progress{Phase: PhaseBlob, Digest: d, MediaType: b.desc.MediaType, Total: b.desc.Size})
	err = cp.c.uploadBlob(ctx, cp.repo, d, b.desc.Size, body, loc)
	if err == nil {
		cp.mu.Lock()
		cp.bytes += b.desc.Size
		cp.mu.Unlock()
		// The transport stops reading at Content-Length; make sure the
		// source really ended there and matched.
		vr.finish()
	}
	if vr.err != nil {
		return fmt.Errorf("blob %s: %w", d, vr.err)
	}
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", d, err)
	}
	return nil
}

// cleanup deletes what this copy wrote that was not there before:
// manifests (top first), then blobs.
func (cp *copier) cleanup(ctx context.Context, reg name.Registry) error {
	cp.mu.Lock()
	mans := slices.Clone(cp.pushedMans)
	blobs := slices.Clone(cp.pushedBlobs)
	cp.mu.Unlock()
	if len(mans) == 0 && len(blobs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	c := cp.c
	if dc, err := newClient(ctx, reg, cp.o, repoScope(cp.repo, "pull", "push", "delete")); err == nil {
		c = dc
	}
	var errs []error
	remove := func(kind string, d v1.Hash) {
		deleted, err := c.delete(ctx, cp.repo, kind, d.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", kind, d, err))
		}
		if deleted {
			cp.rep.report(Progress{Phase: PhaseCleanup, Digest: d, Done: true})
		}
	}
	for i := len(mans) - 1; i >= 0; i-- {
		remove("manifests", mans[i])
	}
	for _, b := range blobs {
		remove("blobs", b)
	}
	cp.o.logger.Debug("cleaned up after failed copy", "manifests", len(mans), "blobs", len(blobs), "errors", len(errs))
	return errors.Join(errs...)
}

// verifyReader checks size and digest of what flows through it; at EOF a
// mismatch becomes an error (also kept in err, so the caller can tell it
// from a transport error).
type verifyReader struct {
	r    io.Reader
	h    hash.Hash
	want v1.Descriptor
	n    int64
	err  error
	eof  bool
}

// finish reads on to the end of the source if the consumer stopped early,
// so that the size and digest checks run.
func (v *verifyReader) finish() {
	var buf [512]byte
	for !v.eof && v.err == nil {
		if _, err := v.Read(buf[:]); err != nil && err != io.EOF && v.err == nil {
			v.err = err
		}
	}
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.eof {
		return 0, io.EOF
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.n > v.want.Size {
		v.err = fmt.Errorf("%w: more than the %d bytes its descriptor says", ErrContentMismatch, v.want.Size)
		return n, v.err
	}
	if err == io.EOF {
		v.eof = true
		got := v1.Hash{Algorithm: v.want.Digest.Algorithm, Hex: hex.EncodeToString(v.h.Sum(nil))}
		switch {
		case v.n != v.want.Size:
			v.err = fmt.Errorf("%w: %d bytes, its descriptor says %d", ErrContentMismatch, v.n, v.want.Size)
		case got != v.want.Digest:
			v.err = fmt.Errorf("%w: content hashes to %s", ErrContentMismatch, got)
		}
		if v.err != nil {
			return n, v.err
		}
	} else if err != nil {
		v.err = err
	}
	return n, err
}
