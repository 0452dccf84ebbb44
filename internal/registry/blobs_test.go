package registry

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

func TestPing(t *testing.T) {
	c := newTestClient(t, drivers[1].new(t))
	r := c.do("GET", "/v2/", nil)
	c.expect(r, http.StatusOK, "")
	if string(r.body) != "{}" {
		t.Errorf("body %q, want {}", r.body)
	}
	if got := r.header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
		t.Errorf("Docker-Distribution-API-Version %q", got)
	}
}

func TestBlobPullRanges(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		content := bytes.Repeat([]byte("0123456789"), 300) // 3000 bytes
		for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
			d := c.pushBlob("a/b", content, alg)
			tests := []struct {
				name, method, rng string
				status            int
				body              []byte
				contentRange      string
			}{
				{"full", "GET", "", 200, content, ""},
				{"head", "HEAD", "", 200, nil, ""},
				{"range", "GET", "bytes=500-1499", 206, content[500:1500], "bytes 500-1499/3000"},
				{"open range", "GET", "bytes=2500-", 206, content[2500:], "bytes 2500-2999/3000"},
				{"suffix", "GET", "bytes=-100", 206, content[2900:], "bytes 2900-2999/3000"},
				{"clipped", "GET", "bytes=2000-5000", 206, content[2000:], "bytes 2000-2999/3000"},
				{"inverted", "GET", "bytes=500-0", 416, nil, ""},
				{"past end", "GET", "bytes=5000-10000", 416, nil, ""},
			}
			for _, tt := range tests {
				t.Run(string(alg)+"/"+tt.name, func(t *testing.T) {
					c := c.with(t)
					var hdrs []string
					if tt.rng != "" {
						hdrs = append(hdrs, "Range: "+tt.rng)
					}
					r := c.do(tt.method, "/v2/a/b/blobs/"+d.String(), nil, hdrs...)
					c.expect(r, tt.status, "")
					if tt.status >= 300 {
						return
					}
					if tt.body != nil && !bytes.Equal(r.body, tt.body) {
						t.Errorf("body mismatch: %d bytes, want %d", len(r.body), len(tt.body))
					}
					if got := r.header.Get("Content-Range"); got != tt.contentRange {
						t.Errorf("Content-Range %q, want %q", got, tt.contentRange)
					}
					if got := r.header.Get("Docker-Content-Digest"); got != d.String() {
						t.Errorf("Docker-Content-Digest %q", got)
					}
					if tt.method == "HEAD" {
						if got := r.header.Get("Content-Length"); got != strconv.Itoa(len(content)) {
							t.Errorf("HEAD Content-Length %q", got)
						}
					}
				})
			}
		}
	})
}

func TestBlobErrors(t *testing.T) {
	c := newTestClient(t, drivers[1].new(t))
	d := c.pushBlob("repo", []byte("hello"), digest.SHA256)
	missing := digest.FromString("missing")
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown blob", "GET", "/v2/repo/blobs/" + missing.String(), 404, codeBlobUnknown},
		{"unknown blob head", "HEAD", "/v2/repo/blobs/" + missing.String(), 404, ""},
		{"not linked in other repo", "GET", "/v2/other/blobs/" + d.String(), 404, codeBlobUnknown},
		{"bad digest", "GET", "/v2/repo/blobs/sha256:xyz", 400, codeDigestInvalid},
		{"unsupported algorithm", "GET", "/v2/repo/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, codeDigestInvalid},
		{"bad name", "GET", "/v2/Repo/blobs/" + d.String(), 400, codeNameInvalid},
		{"traversal", "GET", "/v2/a/../repo/blobs/" + d.String(), 400, codeNameInvalid},
		{"encoded traversal", "GET", "/v2/a/..%2frepo/blobs/" + d.String(), 400, codeNameInvalid},
		{"bad method", "POST", "/v2/repo/blobs/" + d.String(), 405, codeUnsupported},
		{"unknown endpoint", "GET", "/v2/repo/nothing", 404, ""},
		{"delete unknown", "DELETE", "/v2/repo/blobs/" + missing.String(), 404, codeBlobUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c.with(t)
			c.expect(c.do(tt.method, tt.path, nil), tt.status, tt.code)
		})
	}
}

func TestBlobDeleteUnlinks(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		d := c.pushBlob("one", []byte("shared"), digest.SHA256)
		c.pushBlob("two", []byte("shared"), digest.SHA256)
		c.expect(c.do("DELETE", "/v2/one/blobs/"+d.String(), nil), http.StatusAccepted, "")
		c.expect(c.do("HEAD", "/v2/one/blobs/"+d.String(), nil), http.StatusNotFound, "")
		c.expect(c.do("GET", "/v2/two/blobs/"+d.String(), nil), http.StatusOK, "")
	})
}

func TestMount(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		d := c.pushBlob("src", []byte("mount me"), digest.SHA512)
		other := digest.FromString("never pushed")

		r := c.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src", nil)
		c.expect(r, http.StatusCreated, "")
		if got := r.header.Get("Location"); got != "/v2/dst/blobs/"+d.String() {
			t.Errorf("Location %q", got)
		}
		c.expect(c.do("GET", "/v2/dst/blobs/"+d.String(), nil), http.StatusOK, "")

		// Missing in the source repository: an upload starts instead.
		r = c.do("POST", "/v2/dst2/blobs/uploads/?mount="+d.String()+"&from=nothere", nil)
		c.expect(r, http.StatusAccepted, "")
		if r.header.Get("Docker-Upload-UUID") == "" {
			t.Error("no Docker-Upload-UUID on fallback upload")
		}
		// Anonymous mount: found anywhere in the registry.
		c.expect(c.do("POST", "/v2/dst3/blobs/uploads/?mount="+d.String(), nil), http.StatusCreated, "")
		c.expect(c.do("POST", "/v2/dst3/blobs/uploads/?mount="+other.String(), nil), http.StatusAccepted, "")
		// Bad source name: no mount, plain upload.
		c.expect(c.do("POST", "/v2/dst4/blobs/uploads/?mount="+d.String()+"&from=../src", nil), http.StatusAccepted, "")
	})
}
