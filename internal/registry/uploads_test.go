package registry

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

func TestChunkedUpload(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
			t.Run(string(alg), func(t *testing.T) {
				var mu sync.Mutex
				var observed []int64
				c := newTestClient(t, drv, WithUploadObserver(func(repo string, n int64, d time.Duration) {
					mu.Lock()
					defer mu.Unlock()
					observed = append(observed, n)
				}))
				content := bytes.Repeat([]byte("abcdefgh"), 1000)
				d := alg.FromBytes(content)

				r := c.do("POST", "/v2/chunky/blobs/uploads/", nil)
				c.expect(r, http.StatusAccepted, "")
				loc := r.header.Get("Location")
				if r.header.Get("Range") != "0-0" || loc == "" {
					t.Fatalf("POST headers: %v", r.header)
				}
				// First chunk.
				r = c.do("PATCH", loc, content[:3000], "Content-Range: 0-2999", "Content-Type: application/octet-stream")
				c.expect(r, http.StatusAccepted, "")
				if got := r.header.Get("Range"); got != "0-2999" {
					t.Errorf("Range %q", got)
				}
				loc = r.header.Get("Location")
				// Out of order and overlapping chunks are refused with the current range.
				for _, cr := range []string{"5000-5999", "2000-2999"} {
					r = c.do("PATCH", loc, content[2000:3000], "Content-Range: "+cr)
					c.expect(r, http.StatusRequestedRangeNotSatisfiable, "")
					if got := r.header.Get("Range"); got != "0-2999" {
						t.Errorf("416 Range %q", got)
					}
				}
				// Status.
				r = c.do("GET", loc, nil)
				c.expect(r, http.StatusNoContent, "")
				if r.header.Get("Range") != "0-2999" || r.header.Get("Docker-Upload-UUID") == "" || r.header.Get("Location") == "" {
					t.Errorf("status headers: %v", r.header)
				}
				// A second registry over the same driver (another process)
				// continues from the persisted hash state.
				c2 := newTestClient(t, drv)
				r = c2.do("PATCH", loc, content[3000:6000], "Content-Range: 3000-5999")
				c2.expect(r, http.StatusAccepted, "")
				// Streamed chunk without Content-Range.
				r = c2.do("PATCH", loc, content[6000:7000])
				c2.expect(r, http.StatusAccepted, "")
				// Last chunk on the PUT.
				r = c.do("PUT", loc+"?digest="+d.String(), content[7000:], "Content-Range: 7000-7999")
				c.expect(r, http.StatusCreated, "")
				if r.header.Get("Docker-Content-Digest") != d.String() {
					t.Errorf("digest header %q", r.header.Get("Docker-Content-Digest"))
				}
				r = c.do("GET", "/v2/chunky/blobs/"+d.String(), nil)
				c.expect(r, http.StatusOK, "")
				if !bytes.Equal(r.body, content) {
					t.Error("content mismatch")
				}
				// The finished upload is gone.
				c.expect(c.do("GET", loc, nil), http.StatusNotFound, codeBlobUploadUnknown)
				mu.Lock()
				if len(observed) != 1 || observed[0] != int64(len(content)) {
					t.Errorf("observer saw %v", observed)
				}
				mu.Unlock()
			})
		}
	})
}

func TestUploadDigestMismatchStoresNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		content := []byte("the real content")
		wrong := digest.FromString("something else")
		ctx := context.Background()

		r := c.do("POST", "/v2/r/blobs/uploads/?digest="+wrong.String(), content)
		c.expect(r, http.StatusBadRequest, codeDigestInvalid)

		r = c.do("POST", "/v2/r/blobs/uploads/", nil)
		loc := r.header.Get("Location")
		c.expect(c.do("PATCH", loc, content), http.StatusAccepted, "")
		c.expect(c.do("PUT", loc+"?digest="+wrong.String(), nil), http.StatusBadRequest, codeDigestInvalid)
		c.expect(c.do("PUT", loc+"?digest=sha256:nothex", nil), http.StatusBadRequest, codeDigestInvalid)

		for _, d := range []digest.Digest{wrong, digest.FromBytes(content)} {
			if ok, _ := c.reg.exists(ctx, blobDataPath(d)); ok {
				t.Errorf("blob %s stored after a failed upload", d)
			}
			c.expect(c.do("HEAD", "/v2/r/blobs/"+d.String(), nil), http.StatusNotFound, "")
		}
	})
}

func TestUploadCancelAndErrors(t *testing.T) {
	c := newTestClient(t, drivers[1].new(t))
	r := c.do("POST", "/v2/r/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	c.expect(c.do("DELETE", loc, nil), http.StatusNoContent, "")
	c.expect(c.do("PATCH", loc, []byte("x")), http.StatusNotFound, codeBlobUploadUnknown)
	c.expect(c.do("DELETE", loc, nil), http.StatusNotFound, codeBlobUploadUnknown)

	id := strings.TrimPrefix(loc, "/v2/r/blobs/uploads/")
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"traversal id", "PATCH", "/v2/r/blobs/uploads/..%2f..%2fx", 404, ""},
		{"bad id", "PATCH", "/v2/r/blobs/uploads/not-an-id", 404, codeBlobUploadUnknown},
		{"upload of another repo", "GET", "/v2/other/blobs/uploads/" + id, 404, codeBlobUploadUnknown},
		{"put to unknown upload", "PUT", "/v2/r/blobs/uploads/" + newUploadID() + "?digest=" + digest.FromString("x").String(), 404, codeBlobUploadUnknown},
		{"bad mount digest", "POST", "/v2/r/blobs/uploads/?mount=sha256:zz", 400, codeDigestInvalid},
		{"bad name", "POST", "/v2/-bad/blobs/uploads/", 400, codeNameInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { c := c.with(t); c.expect(c.do(tt.method, tt.path, nil), tt.status, tt.code) })
	}

	r = c.do("POST", "/v2/r/blobs/uploads/", nil)
	loc = r.header.Get("Location")
	c.expect(c.do("PUT", loc, nil), http.StatusBadRequest, codeDigestInvalid)
	c.expect(c.do("PATCH", loc, []byte("abc"), "Content-Range: 0-9"), http.StatusBadRequest, codeSizeInvalid)
}

func TestEmptyBlob(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
			d := alg.FromBytes(nil)
			r := c.do("POST", "/v2/e/blobs/uploads/", nil)
			c.expect(c.do("PUT", r.header.Get("Location")+"?digest="+d.String(), nil), http.StatusCreated, "")
			r = c.do("GET", "/v2/e/blobs/"+d.String(), nil)
			c.expect(r, http.StatusOK, "")
			if len(r.body) != 0 {
				t.Errorf("empty blob has %d bytes", len(r.body))
			}
		}
	})
}

func TestConcurrentPushSameBlobAndTag(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		img := newTestImage(t, "concurrent", nil)
		var wg sync.WaitGroup
		errs := make(chan string, 64)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, b := range [][]byte{img.config, img.layer} {
					d := digest.FromBytes(b)
					r := c.doNoFatal("POST", "/v2/conc/blobs/uploads/?digest="+d.String(), b)
					if r.status != http.StatusCreated {
						errs <- fmt.Sprintf("blob push %d: %d %s", i, r.status, r.body)
					}
				}
				r := c.doNoFatal("PUT", "/v2/conc/manifests/latest", img.manifest, "Content-Type: application/vnd.oci.image.manifest.v1+json")
				if r.status != http.StatusCreated {
					errs <- fmt.Sprintf("manifest push %d: %d %s", i, r.status, r.body)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		r := c.do("GET", "/v2/conc/manifests/latest", nil)
		c.expect(r, http.StatusOK, "")
		if !bytes.Equal(r.body, img.manifest) {
			t.Error("manifest content corrupted")
		}
		r = c.do("GET", "/v2/conc/blobs/"+digest.FromBytes(img.layer).String(), nil)
		if !bytes.Equal(r.body, img.layer) {
			t.Error("layer content corrupted")
		}
	})
}

func TestPurgeUploads(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := newTestClient(t, drivers[1].new(t), WithClock(clock))
	old := c.do("POST", "/v2/p/q/blobs/uploads/", nil).header.Get("Location")
	c.expect(c.do("PATCH", old, []byte("abandoned")), http.StatusAccepted, "")
	clock.now = clock.now.Add(2 * time.Hour)
	fresh := c.do("POST", "/v2/p/q/blobs/uploads/", nil).header.Get("Location")

	n, err := c.reg.PurgeUploads(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("purged %d uploads, want 1", n)
	}
	c.expect(c.do("GET", old, nil), http.StatusNotFound, codeBlobUploadUnknown)
	c.expect(c.do("GET", fresh, nil), http.StatusNoContent, "")
}

type fakeClock struct{ now time.Time }

func (f *fakeClock) Now() time.Time { return f.now }
