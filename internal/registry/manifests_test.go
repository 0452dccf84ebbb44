package registry

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestManifestPushPull(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		type pushed struct {
			repo, tag string
			desc      ocispec.Descriptor
		}
		var mu sync.Mutex
		var seen []pushed
		c := newTestClient(t, drv, WithManifestListener(ManifestListenerFunc(func(_ context.Context, repo, tag string, desc ocispec.Descriptor) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, pushed{repo, tag, desc})
			return errors.New("listener errors never fail the push")
		})))
		img := newTestImage(t, "pull", nil)
		r := c.pushImage("lib/app", "v1", img)
		c.expect(r, http.StatusCreated, "")
		if r.header.Get("Docker-Content-Digest") != img.digest.String() || r.header.Get("Location") != "/v2/lib/app/manifests/"+img.digest.String() {
			t.Fatalf("push headers %v", r.header)
		}
		for _, ref := range []string{"v1", img.digest.String()} {
			for _, method := range []string{"GET", "HEAD"} {
				r := c.do(method, "/v2/lib/app/manifests/"+ref, nil)
				c.expect(r, http.StatusOK, "")
				if r.header.Get("Content-Type") != ocispec.MediaTypeImageManifest ||
					r.header.Get("Docker-Content-Digest") != img.digest.String() ||
					r.header.Get("Content-Length") != strconv.Itoa(len(img.manifest)) {
					t.Errorf("%s %s headers %v", method, ref, r.header)
				}
				if method == "GET" && !bytes.Equal(r.body, img.manifest) {
					t.Errorf("GET %s body mismatch", ref)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 1 || seen[0].repo != "lib/app" || seen[0].tag != "v1" || seen[0].desc.Digest != img.digest {
			t.Errorf("listener saw %+v", seen)
		}
		desc, err := c.reg.Resolve(context.Background(), "lib/app", "v1")
		if err != nil || desc.Digest != img.digest || desc.MediaType != ocispec.MediaTypeImageManifest || desc.Size != int64(len(img.manifest)) {
			t.Errorf("Resolve = %+v, %v", desc, err)
		}
		if _, err := c.reg.Resolve(context.Background(), "lib/app", "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve missing tag: %v", err)
		}
		// The manifest is also readable through the blob endpoint.
		c.expect(c.do("GET", "/v2/lib/app/blobs/"+img.digest.String(), nil), http.StatusOK, "")
	})
}

func TestManifestPushSHA512(t *testing.T) {
	c := newTestClient(t, drivers[0].new(t))
	img := newTestImage(t, "sha512", nil)
	c.pushBlob("r", img.config, digest.SHA256)
	c.pushBlob("r", img.layer, digest.SHA256)
	d := digest.SHA512.FromBytes(img.manifest)
	r := c.pushManifest("r", d.String(), ocispec.MediaTypeImageManifest, img.manifest)
	c.expect(r, http.StatusCreated, "")
	if r.header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("digest header %q", r.header.Get("Docker-Content-Digest"))
	}
	c.expect(c.do("GET", "/v2/r/manifests/"+d.String(), nil), http.StatusOK, "")
	// Wrong digest for the content.
	c.expect(c.pushManifest("r", digest.SHA512.FromString("x").String(), ocispec.MediaTypeImageManifest, img.manifest), http.StatusBadRequest, codeDigestInvalid)
}

func TestManifestValidation(t *testing.T) {
	c := newTestClient(t, drivers[1].new(t), WithMaxManifestSize(4096))
	base := newTestImage(t, "valid", nil)
	c.pushBlob("v", base.config, digest.SHA256)
	c.pushBlob("v", base.layer, digest.SHA256)
	c.expect(c.pushManifest("v", "base", ocispec.MediaTypeImageManifest, base.manifest), http.StatusCreated, "")

	missingLayer := newTestImage(t, "valid", func(m *ocispec.Manifest) {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("absent"), Size: 6})
	})
	foreign := newTestImage(t, "valid", func(m *ocispec.Manifest) {
		m.Layers = append(m.Layers,
			ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Digest: digest.FromString("nd"), Size: 2},
			ocispec.Descriptor{MediaType: mediaTypeDockerForeign, Digest: digest.FromString("fl"), Size: 2})
	})
	withSubject := newTestImage(t, "valid", func(m *ocispec.Manifest) {
		m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("no such subject"), Size: 10}
	})
	dockerManifest := strings.ReplaceAll(string(base.manifest), ocispec.MediaTypeImageManifest, mediaTypeDockerManifest)
	index := func(children ...digest.Digest) string {
		var b strings.Builder
		b.WriteString(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[`)
		for i, d := range children {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"mediaType":"` + ocispec.MediaTypeImageManifest + `","digest":"` + d.String() + `","size":` + strconv.Itoa(len(base.manifest)) + `}`)
		}
		b.WriteString("]}")
		return b.String()
	}
	dockerList := strings.ReplaceAll(index(base.digest), ocispec.MediaTypeImageIndex, mediaTypeDockerList)

	tests := []struct {
		name, ref, contentType, body string
		status                       int
		code                         string
	}{
		{"missing layer", "t", ocispec.MediaTypeImageManifest, string(missingLayer.manifest), 400, codeManifestBlobUnkown},
		{"foreign layers need not exist", "t", ocispec.MediaTypeImageManifest, string(foreign.manifest), 201, ""},
		{"subject may be missing", "t", ocispec.MediaTypeImageManifest, string(withSubject.manifest), 201, ""},
		{"docker schema2", "d", mediaTypeDockerManifest, dockerManifest, 201, ""},
		{"oci index", "i", ocispec.MediaTypeImageIndex, index(base.digest), 201, ""},
		{"empty index", "i", ocispec.MediaTypeImageIndex, index(), 201, ""},
		{"docker list", "l", mediaTypeDockerList, dockerList, 201, ""},
		{"index with unknown child", "i", ocispec.MediaTypeImageIndex, index(digest.FromString("nope")), 400, codeManifestBlobUnkown},
		{"media type mismatch", "t", ocispec.MediaTypeImageIndex, string(base.manifest), 400, codeManifestInvalid},
		{"unsupported media type", "t", "application/vnd.example+json", `{"schemaVersion":2}`, 400, codeManifestInvalid},
		{"not json", "t", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,`, 400, codeManifestInvalid},
		{"schema 1", "t", ocispec.MediaTypeImageManifest, `{"schemaVersion":1}`, 400, codeManifestInvalid},
		{"bad layer digest", "t", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:zz","size":1},"layers":[]}`, 400, codeManifestInvalid},
		{"too large", "t", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"x":"` + strings.Repeat("a", 5000) + `"}`, 413, codeSizeInvalid},
		{"bad tag", "-bad", ocispec.MediaTypeImageManifest, string(base.manifest), 400, codeTagInvalid},
		{"bad digest", "sha256:baddigeststring", ocispec.MediaTypeImageManifest, string(base.manifest), 400, codeDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c.with(t)
			c.expect(c.pushManifest("v", tt.ref, tt.contentType, []byte(tt.body)), tt.status, tt.code)
		})
	}
	r := c.do("GET", "/v2/v/manifests/d", nil)
	c.expect(r, http.StatusOK, "")
	if r.header.Get("Content-Type") != mediaTypeDockerManifest {
		t.Errorf("docker manifest served as %q", r.header.Get("Content-Type"))
	}
}

func TestManifestDelete(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		img := newTestImage(t, "del", nil)
		c.expect(c.pushImage("d", "a", img), http.StatusCreated, "")
		c.expect(c.pushManifest("d", "b", ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
		other := newTestImage(t, "other", nil)
		c.expect(c.pushImage("d", "c", other), http.StatusCreated, "")

		// Untag only.
		c.expect(c.do("DELETE", "/v2/d/manifests/a", nil), http.StatusAccepted, "")
		c.expect(c.do("GET", "/v2/d/manifests/a", nil), http.StatusNotFound, codeManifestUnknown)
		c.expect(c.do("GET", "/v2/d/manifests/b", nil), http.StatusOK, "")
		c.expect(c.do("DELETE", "/v2/d/manifests/a", nil), http.StatusNotFound, codeManifestUnknown)

		// By digest: the manifest and all its tags go; other tags stay.
		c.expect(c.do("DELETE", "/v2/d/manifests/"+img.digest.String(), nil), http.StatusAccepted, "")
		c.expect(c.do("GET", "/v2/d/manifests/"+img.digest.String(), nil), http.StatusNotFound, codeManifestUnknown)
		c.expect(c.do("HEAD", "/v2/d/manifests/b", nil), http.StatusNotFound, "")
		c.expect(c.do("GET", "/v2/d/manifests/c", nil), http.StatusOK, "")
		tags, err := c.reg.Tags(context.Background(), "d")
		if err != nil || strings.Join(tags, ",") != "c" {
			t.Errorf("tags after delete: %v %v", tags, err)
		}
		c.expect(c.do("DELETE", "/v2/d/manifests/"+img.digest.String(), nil), http.StatusNotFound, codeManifestUnknown)
	})
}

// TestManifestRecorderFailsThePush: a recorder that cannot record an
// arrival fails the push with 503 (the manifest stays stored), and the
// client's retry records it; a plain listener's error fails nothing.
func TestManifestRecorderFailsThePush(t *testing.T) {
	var mu sync.Mutex
	var recorded []string
	fail := true
	c := newTestClient(t, inmemory.New(),
		WithManifestRecorder(ManifestListenerFunc(func(_ context.Context, repo, tag string, _ ocispec.Descriptor) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				fail = false
				return errors.New("database is gone")
			}
			recorded = append(recorded, repo+":"+tag)
			return nil
		})),
		WithManifestListener(ManifestListenerFunc(func(context.Context, string, string, ocispec.Descriptor) error {
			return errors.New("a listener's error fails nothing")
		})))
	img := newTestImage(t, "recorded", nil)
	r := c.pushImage("quarantine/app", "v1", img)
	c.expect(r, http.StatusServiceUnavailable, "UNAVAILABLE")
	c.expect(c.do("GET", "/v2/quarantine/app/manifests/"+img.digest.String(), nil), http.StatusOK, "")
	c.expect(c.pushManifest("quarantine/app", "v1", ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
	mu.Lock()
	defer mu.Unlock()
	if len(recorded) != 1 || recorded[0] != "quarantine/app:v1" {
		t.Errorf("recorded %v, want the retried push once", recorded)
	}
}
