package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
		res, err := c.reg.Copy(ctx, "quarantine/app", "live/app", idxDigest, "v1")
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
		if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", idxDigest, "v1"); err != nil {
			t.Fatal(err)
		}
		// Unknown digest and bad names fail clearly.
		if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", digest.FromString("nope")); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown digest: %v", err)
		}
		if _, err := c.reg.Copy(ctx, "quarantine/app", "Live/App", idxDigest); err == nil {
			t.Error("invalid destination accepted")
		}
		if _, err := c.reg.Copy(ctx, "quarantine/app", "live/app", idxDigest, "bad tag"); err == nil {
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
