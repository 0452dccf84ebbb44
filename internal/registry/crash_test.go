package registry

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// These tests leave the driver as a push killed at each step would, then
// start a fresh Registry (a restarted process) over it and check that its
// answers are consistent: nothing half-written is visible and nothing
// answers 500.

func TestCrashInterruptedChunkedUpload(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		ctx := context.Background()
		c := newTestClient(t, drv)
		content := bytes.Repeat([]byte("crash-safe "), 500)
		d := digest.FromBytes(content)
		r := c.do("POST", "/v2/crash/blobs/uploads/", nil)
		loc := r.header.Get("Location")
		id := loc[strings.LastIndex(loc, "/")+1:]
		c.expect(c.do("PATCH", loc, content[:1000], "Content-Range: 0-999"), http.StatusAccepted, "")

		// The process died after writing the next chunk's part but before
		// saving the state that lists it: a part no state names, holding
		// bytes that even differ from what the client sent.
		if err := drv.PutContent(ctx, uploadPartPath("crash", id, "00000000000000001000-deadbeef0000"), bytes.Repeat([]byte("X"), 1500)); err != nil {
			t.Fatal(err)
		}

		// Not visible as a blob.
		c2 := newTestClient(t, drv)
		c2.expect(c2.do("HEAD", "/v2/crash/blobs/"+d.String(), nil), http.StatusNotFound, "")
		// The restarted registry reports what the state covers, and the
		// client resends the lost chunk.
		r = c2.do("GET", loc, nil)
		c2.expect(r, http.StatusNoContent, "")
		if r.header.Get("Range") != "0-999" {
			t.Fatalf("Range after crash %q", r.header.Get("Range"))
		}
		c2.expect(c2.do("PATCH", loc, content[1000:2500], "Content-Range: 1000-2499"), http.StatusAccepted, "")
		c2.expect(c2.do("PATCH", loc, content[2500:], "Content-Range: 2500-"+strconv.Itoa(len(content)-1)), http.StatusAccepted, "")
		c2.expect(c2.do("PUT", loc+"?digest="+d.String(), nil), http.StatusCreated, "")
		r = c2.do("GET", "/v2/crash/blobs/"+d.String(), nil)
		if !bytes.Equal(r.body, content) {
			t.Error("resumed blob content mismatch")
		}
	})
}

func TestCrashManifestPushSteps(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		ctx := context.Background()
		c := newTestClient(t, drv)
		img := newTestImage(t, "steps", nil)
		c.pushBlob("m", img.config, digest.SHA256)
		c.pushBlob("m", img.layer, digest.SHA256)

		// Step 1 done (manifest content stored), died before the revision
		// link: the manifest does not exist in the repository.
		if err := drv.PutContent(ctx, blobDataPath(img.digest), img.manifest); err != nil {
			t.Fatal(err)
		}
		c2 := newTestClient(t, drv)
		c2.expect(c2.do("GET", "/v2/m/manifests/"+img.digest.String(), nil), http.StatusNotFound, codeManifestUnknown)
		if repos, _ := c2.reg.Repositories(ctx); len(repos) != 0 {
			t.Errorf("repositories %v", repos)
		}

		// Revision linked, died before the tag: reachable by digest only.
		if err := c2.reg.writeLink(ctx, revisionLinkPath("m", img.digest), img.digest); err != nil {
			t.Fatal(err)
		}
		c3 := newTestClient(t, drv)
		r := c3.do("GET", "/v2/m/manifests/"+img.digest.String(), nil)
		c3.expect(r, http.StatusOK, "")
		if r.header.Get("Content-Type") != ocispec.MediaTypeImageManifest {
			t.Errorf("media type fallback %q", r.header.Get("Content-Type"))
		}
		c3.expect(c3.do("GET", "/v2/m/manifests/latest", nil), http.StatusNotFound, codeManifestUnknown)
		r = c3.do("GET", "/v2/m/tags/list", nil)
		c3.expect(r, http.StatusOK, "")
		if string(r.body) != `{"name":"m","tags":[]}` {
			t.Errorf("tags %s", r.body)
		}
		// The client retries the push; it completes.
		c3.expect(c3.pushManifest("m", "latest", ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
		c3.expect(c3.do("GET", "/v2/m/manifests/latest", nil), http.StatusOK, "")
	})
}

func TestCrashDanglingLinks(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		ctx := context.Background()
		c := newTestClient(t, drv)
		ghost := digest.FromString("never stored")

		// A tag pointing at a manifest that is not stored.
		if err := c.reg.writeLink(ctx, tagLinkPath("g", "dangling"), ghost); err != nil {
			t.Fatal(err)
		}
		// A revision link whose content is gone.
		if err := c.reg.writeLink(ctx, revisionLinkPath("g", ghost), ghost); err != nil {
			t.Fatal(err)
		}
		// A layer link whose blob data is gone.
		if err := c.reg.writeLink(ctx, layerLinkPath("g", ghost), ghost); err != nil {
			t.Fatal(err)
		}
		// A torn (empty) tag link written by some other tool.
		if err := drv.PutContent(ctx, tagLinkPath("g", "torn"), nil); err != nil {
			t.Fatal(err)
		}
		// Blob data moved into place but never linked (died before the link).
		orphan := []byte("orphan")
		if err := drv.PutContent(ctx, blobDataPath(digest.FromBytes(orphan)), orphan); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name, method, path string
			status             int
		}{
			{"dangling tag", "GET", "/v2/g/manifests/dangling", 404},
			{"dangling tag head", "HEAD", "/v2/g/manifests/dangling", 404},
			{"torn tag", "GET", "/v2/g/manifests/torn", 404},
			{"revision without content", "GET", "/v2/g/manifests/" + ghost.String(), 404},
			{"layer without data", "GET", "/v2/g/blobs/" + ghost.String(), 404},
			{"orphan blob not linked", "GET", "/v2/g/blobs/" + digest.FromBytes(orphan).String(), 404},
			{"delete torn tag", "DELETE", "/v2/g/manifests/torn", 404},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := c.with(t)
				c.expect(c.do(tt.method, tt.path, nil), tt.status, "")
			})
		}
		// An index may not reference the unstored manifest.
		idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + ghost.String() + `","size":1}]}`
		c.expect(c.pushManifest("g", "idx", ocispec.MediaTypeImageIndex, []byte(idx)), http.StatusBadRequest, codeManifestBlobUnkown)
		// The orphaned blob is pushed again normally.
		c.pushBlob("g", orphan, digest.SHA256)
		c.expect(c.do("GET", "/v2/g/blobs/"+digest.FromBytes(orphan).String(), nil), http.StatusOK, "")
	})
}
