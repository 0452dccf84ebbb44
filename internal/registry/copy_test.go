package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

func TestCopyByDigestWithIndexAndReferrers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		ctx := context.Background()
		c := newTestClient(t, drv)
		a, b := newTestImage(t, "a", nil), newTestImage(t, "b", nil)
		c.expect(c.pushImage("quarantine/app", a.digest.String(), a), http.StatusCreated, "")
		c.expect(c.pushImage("quarantine/app", b.digest.String(), b), http.StatusCreated, "")
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: a.digest, Size: int64(len(a.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
			{MediaType: ocispec.MediaTypeImageManifest, Digest: b.digest, Size: int64(len(b.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}},
		}}
		idx.SchemaVersion = 2
		idxBody := mustJSON(t, idx)
		idxDigest := digest.FromBytes(idxBody)
		c.expect(c.pushManifest("quarantine/app", "v1", ocispec.MediaTypeImageIndex, idxBody), http.StatusCreated, "")

		// A referrer of the index and a referrer of that referrer.
		subj := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: idxDigest, Size: int64(len(idxBody))}
		report := newTestImage(t, "report", func(m *ocispec.Manifest) { m.ArtifactType = "application/vnd.example.report"; m.Subject = &subj })
		c.expect(c.pushImage("quarantine/app", report.digest.String(), report), http.StatusCreated, "")
		repSubj := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: report.digest, Size: int64(len(report.manifest))}
		sig := newTestImage(t, "sig", func(m *ocispec.Manifest) { m.ArtifactType = "application/vnd.example.sig"; m.Subject = &repSubj })
		c.expect(c.pushImage("quarantine/app", sig.digest.String(), sig), http.StatusCreated, "")

		blobsBefore := countBlobs(t, drv)
		res, err := c.reg.Copy(ctx, "quarantine/app", "live/app", idxDigest, CopyOptions{Tags: []string{"v1"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != idxDigest || res.Manifests != 5 || len(res.Referrers) != 2 {
			t.Fatalf("result %+v", res)
		}
		if n := countBlobs(t, drv); n != blobsBefore {
			t.Errorf("copy stored %d new blobs; want 0 (links only)", n-blobsBefore)
		}
		r := c.do("GET", "/v2/live/app/manifests/v1", nil, "Accept: "+ocispec.MediaTypeImageIndex)
		c.expect(r, http.StatusOK, "")
		if !bytes.Equal(r.body, idxBody) || r.header.Get("Docker-Content-Digest") != idxDigest.String() {
			t.Fatal("live/app:v1 is not the same index")
		}
		c.expect(c.do("GET", "/v2/live/app/blobs/"+digest.FromBytes(b.layer).String(), nil), http.StatusOK, "")
		refs, err := c.reg.Referrers(ctx, "live/app", idxDigest, "")
		if err != nil || len(refs) != 1 || refs[0].Digest != report.digest || refs[0].ArtifactType != "application/vnd.example.report" {
			t.Fatalf("referrers in live: %+v %v", refs, err)
		}
		refs, _ = c.reg.Referrers(ctx, "live/app", report.digest, "")
		if len(refs) != 1 || refs[0].Digest != sig.digest {
			t.Fatalf("referrers of the report in live: %+v", refs)
		}

		// Copying again is a no-op that succeeds.
		if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", idxDigest, CopyOptions{Tags: []string{"v1"}}); err != nil {
			t.Fatal(err)
		}
		// Unknown digest and bad names fail clearly.
		if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", digest.FromString("nope"), CopyOptions{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown digest: %v", err)
		}
		if _, err := c.reg.Copy(ctx, "quarantine/app", "Live/App", idxDigest, CopyOptions{}); err == nil {
			t.Error("invalid destination accepted")
		}
		if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", idxDigest, CopyOptions{Tags: []string{"bad tag"}}); err == nil {
			t.Error("invalid tag accepted")
		}

		// DeleteManifest removes a referrer and its referrers entry.
		if err := c.reg.DeleteManifest(ctx, "live/app", sig.digest); err != nil {
			t.Fatal(err)
		}
		if refs, _ := c.reg.Referrers(ctx, "live/app", report.digest, ""); len(refs) != 0 {
			t.Errorf("referrers of the report after deleting the signature: %+v", refs)
		}
		if _, _, err := c.reg.Manifest(ctx, "live/app", sig.digest.String()); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted manifest: %v", err)
		}
		if err := c.reg.DeleteManifest(ctx, "live/app", sig.digest); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
	})
}

func countBlobs(t *testing.T, drv storagedriver.StorageDriver) int {
	t.Helper()
	n := 0
	err := drv.Walk(context.Background(), "/docker/registry/v2/blobs", func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() && strings.HasSuffix(fi.Path(), "/data") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTransportServesGoContainerRegistry(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, drivers[1].new(t))
	img := newTestImage(t, "x", nil)
	c.expect(c.pushImage("quarantine/x", "v1", img), http.StatusCreated, "")
	ref, err := name.ParseReference("drydock.internal/quarantine/x:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithTransport(c.reg.Transport()), remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != img.digest.String() {
		t.Fatalf("digest %s, want %s", desc.Digest, img.digest)
	}
	rc, size, err := c.reg.OpenBlob(ctx, "quarantine/x", digest.FromBytes(img.layer))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if size != int64(len(img.layer)) || !bytes.Equal(got, img.layer) {
		t.Fatalf("blob %q", got)
	}
	if _, err := remote.Get(ref.Context().Tag("missing"), remote.WithTransport(c.reg.Transport())); err == nil {
		t.Fatal("missing tag found")
	}
	if _, _, err := c.reg.Manifest(ctx, "quarantine/x", "v1"); err != nil {
		t.Fatal(err)
	}
}

// TestCopyPlansBeforeWriting: a nested index is copied whole, children
// first; Check sees every manifest of each root's content; a referrer
// Referrer refuses is left behind with its own referrers; and a failing
// Check or BeforeWrite leaves the destination untouched.
func TestCopyPlansBeforeWriting(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, drivers[0].new(t))
	a, b := newTestImage(t, "a", nil), newTestImage(t, "b", nil)
	c.expect(c.pushImage("quarantine/app", a.digest.String(), a), http.StatusCreated, "")
	c.expect(c.pushImage("quarantine/app", b.digest.String(), b), http.StatusCreated, "")
	desc := func(img testImage) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.digest, Size: int64(len(img.manifest))}
	}
	inner := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc(b)}}
	inner.SchemaVersion = 2
	innerBody := mustJSON(t, inner)
	innerDigest := digest.FromBytes(innerBody)
	c.expect(c.pushManifest("quarantine/app", innerDigest.String(), ocispec.MediaTypeImageIndex, innerBody), http.StatusCreated, "")
	outer := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc(a),
		{MediaType: ocispec.MediaTypeImageIndex, Digest: innerDigest, Size: int64(len(innerBody))}}}
	outer.SchemaVersion = 2
	outerBody := mustJSON(t, outer)
	outerDigest := digest.FromBytes(outerBody)
	c.expect(c.pushManifest("quarantine/app", "v1", ocispec.MediaTypeImageIndex, outerBody), http.StatusCreated, "")
	// Two referrers of image a: one followed, one not; the refused one
	// has a referrer of its own, which must stay behind with it.
	subj := desc(a)
	keep := newTestImage(t, "keep", func(m *ocispec.Manifest) { m.ArtifactType = "application/keep"; m.Subject = &subj })
	drop := newTestImage(t, "drop", func(m *ocispec.Manifest) { m.ArtifactType = "application/drop"; m.Subject = &subj })
	c.expect(c.pushImage("quarantine/app", keep.digest.String(), keep), http.StatusCreated, "")
	c.expect(c.pushImage("quarantine/app", drop.digest.String(), drop), http.StatusCreated, "")
	dropSubj := desc(drop)
	onDrop := newTestImage(t, "on-drop", func(m *ocispec.Manifest) { m.ArtifactType = "application/keep"; m.Subject = &dropSubj })
	c.expect(c.pushImage("quarantine/app", onDrop.digest.String(), onDrop), http.StatusCreated, "")

	inLive := func(d digest.Digest) bool {
		_, _, err := c.reg.Manifest(ctx, "live/app", d.String())
		return err == nil
	}
	stop := errors.New("stop")
	checked := map[digest.Digest][]digest.Digest{}
	opts := CopyOptions{
		Tags: []string{"v1"},
		Check: func(_ context.Context, root digest.Digest, n imgref.Node) error {
			checked[root] = append(checked[root], n.Digest())
			return nil
		},
		Referrer: func(_ context.Context, subject digest.Digest, n imgref.Node) (Follow, error) {
			if subject != a.digest {
				t.Errorf("referrer %s asked for subject %s", n.Digest(), subject)
			}
			if n.Descriptor.ArtifactType == "application/drop" {
				return Follow{Reason: "not this one"}, nil
			}
			return Follow{Copy: true}, nil
		},
	}
	// A failing Check, then a failing BeforeWrite: nothing is written.
	failing := opts
	failing.Check = func(_ context.Context, _ digest.Digest, n imgref.Node) error {
		if n.Digest() == b.digest {
			return stop
		}
		return nil
	}
	if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", outerDigest, failing); !errors.Is(err, stop) {
		t.Fatalf("Copy with a failing Check: %v", err)
	}
	failing = opts
	var roots []digest.Digest
	failing.BeforeWrite = func(_ context.Context, rs []ocispec.Descriptor) error {
		for _, r := range rs {
			roots = append(roots, r.Digest)
		}
		return stop
	}
	if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", outerDigest, failing); !errors.Is(err, stop) {
		t.Fatalf("Copy with a failing BeforeWrite: %v", err)
	}
	if want := []digest.Digest{outerDigest, keep.digest}; !slices.Equal(roots, want) {
		t.Errorf("BeforeWrite roots %v, want %v", roots, want)
	}
	for _, d := range []digest.Digest{outerDigest, innerDigest, a.digest, b.digest, keep.digest} {
		if inLive(d) {
			t.Errorf("%s written by a copy that failed before writing", d)
		}
	}
	clear(checked)
	res, err := c.reg.Copy(ctx, "quarantine/app", "live/app", outerDigest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := []digest.Digest{a.digest, b.digest, innerDigest, outerDigest}; !slices.Equal(checked[outerDigest], want) {
		t.Errorf("checked for the index: %v, want %v", checked[outerDigest], want)
	}
	if want := []digest.Digest{keep.digest}; !slices.Equal(checked[keep.digest], want) {
		t.Errorf("checked for the followed referrer: %v, want %v", checked[keep.digest], want)
	}
	if res.Manifests != 5 || len(res.Referrers) != 1 || res.Referrers[0].Digest != keep.digest ||
		len(res.LeftBehind) != 1 || res.LeftBehind[0].Referrer.Digest != drop.digest || res.LeftBehind[0].Subject != a.digest ||
		res.LeftBehind[0].Reason != "not this one" {
		t.Errorf("result %+v", res)
	}
	for d, want := range map[digest.Digest]bool{outerDigest: true, innerDigest: true, a.digest: true, b.digest: true, keep.digest: true,
		drop.digest: false, onDrop.digest: false} {
		if inLive(d) != want {
			t.Errorf("%s in live/app: %v, want %v", d, !want, want)
		}
	}
	if refs, _ := c.reg.Referrers(ctx, "live/app", a.digest, ""); len(refs) != 1 || refs[0].Digest != keep.digest {
		t.Errorf("referrers of a in live/app: %+v", refs)
	}
}

// recordingBarrier records the keys of each Protect call (it protects
// nothing: no collector runs).
type recordingBarrier struct {
	mu    sync.Mutex
	calls [][]string
}

func (b *recordingBarrier) Enter(context.Context) (Guard, error) { return recordingGuard{b}, nil }

type recordingGuard struct{ b *recordingBarrier }

func (g recordingGuard) Protect(_ context.Context, keys ...string) error {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	g.b.calls = append(g.b.calls, slices.Clone(keys))
	return nil
}

func (recordingGuard) Done() {}

// TestCopyProtectsBlobsTogether: a copy links a manifest's blobs as one
// write, so a running collection costs one Protect (one database
// transaction) for all of them, not one per blob, then one for the
// manifest.
func TestCopyProtectsBlobsTogether(t *testing.T) {
	b := &recordingBarrier{}
	c := newTestClient(t, drivers[0].new(t), WithBarrier(b))
	img := newTestImage(t, "a", nil)
	c.expect(c.pushImage("quarantine/app", "v1", img), http.StatusCreated, "")
	b.mu.Lock()
	b.calls = nil
	b.mu.Unlock()
	if _, err := c.reg.Copy(t.Context(), "quarantine/app", "live/app", img.digest, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, layer := digest.FromBytes(img.config), digest.FromBytes(img.layer)
	want := []string{BlobKey(cfg), LayerKey("live/app", cfg), BlobKey(layer), LayerKey("live/app", layer)}
	if len(b.calls) != 2 || !slices.Equal(b.calls[0], want) || !slices.Contains(b.calls[1], ManifestKey("live/app", img.digest)) {
		t.Fatalf("Protect calls %q, want the blobs together %q, then the manifest", b.calls, want)
	}
}
