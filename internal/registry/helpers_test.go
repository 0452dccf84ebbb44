package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/regstore"
	"github.com/drydock-project/drydock/internal/s3test"
)

// drivers are the storage drivers every behavioural test runs against.
var drivers = []struct {
	name string
	new  func(t *testing.T) storagedriver.StorageDriver
}{
	{"filesystem", func(t *testing.T) storagedriver.StorageDriver {
		return filesystem.New(filesystem.DriverParameters{RootDirectory: t.TempDir(), MaxThreads: 100})
	}},
	{"inmemory", func(t *testing.T) storagedriver.StorageDriver { return inmemory.New() }},
	// Replicas' storage: a real S3 server (versitygw) behind the read
	// cache, with the index in the files on the same bucket...
	{"s3", func(t *testing.T) storagedriver.StorageDriver { return s3Stack(t, s3Bucket(t), nil) }},
	// ... and with the index in a real PostgreSQL.
	{"s3+postgres", func(t *testing.T) storagedriver.StorageDriver {
		db, err := dbtest.Postgres(t).Opener(t).Open(context.Background(), regstore.Component)
		if err != nil {
			t.Fatal(err)
		}
		index, err := regstore.NewSQLDriver(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { index.Close() })
		return s3Stack(t, s3Bucket(t), index)
	}},
}

// s3Bucket makes a fresh bucket on the test binary's S3 server and returns
// the s3 driver's parameters for it.
func s3Bucket(t *testing.T) map[string]any { return s3test.Bucket(t) }

// s3Stack composes the storage on an S3 bucket as regstore.Open does.
func s3Stack(t *testing.T, params map[string]any, index *regstore.SQLDriver) storagedriver.StorageDriver {
	t.Helper()
	blobs, err := factory.Create(context.Background(), "s3aws", params)
	if err != nil {
		t.Fatal(err)
	}
	return regstore.Compose(blobs, index).Driver
}

// forEachDriver runs fn as a subtest per driver.
func forEachDriver(t *testing.T, fn func(t *testing.T, drv storagedriver.StorageDriver)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) { fn(t, d.new(t)) })
	}
}

type testClient struct {
	t   *testing.T
	srv *httptest.Server
	reg *Registry
	drv storagedriver.StorageDriver
}

func newTestClient(t *testing.T, drv storagedriver.StorageDriver, opts ...Option) *testClient {
	t.Helper()
	reg, err := New(context.Background(), drv, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &testClient{t: t, srv: srv, reg: reg, drv: drv}
}

// with returns the client reporting to t (for subtests).
func (c *testClient) with(t *testing.T) *testClient {
	cc := *c
	cc.t = t
	return &cc
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the first spec error code of an error response.
func (r response) errorCode() string {
	var e errorBody
	if json.Unmarshal(r.body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// do sends a request; url is a path ("/v2/...") or absolute. Headers are
// "Key: value" strings.
func (c *testClient) do(method, url string, body []byte, headers ...string) response {
	c.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = c.srv.URL + url
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *testClient) expect(r response, status int, code string) {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if code != "" && r.errorCode() != code {
		c.t.Fatalf("error code %q, want %q; body %s", r.errorCode(), code, r.body)
	}
}

// pushBlob pushes content monolithically and returns its digest.
func (c *testClient) pushBlob(repo string, content []byte, alg digest.Algorithm) digest.Digest {
	c.t.Helper()
	d := alg.FromBytes(content)
	r := c.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content, "Content-Type: application/octet-stream")
	c.expect(r, http.StatusCreated, "")
	return d
}

// pushManifest pushes a manifest by ref with its media type.
func (c *testClient) pushManifest(repo, ref, mediaType string, body []byte) response {
	c.t.Helper()
	return c.do("PUT", "/v2/"+repo+"/manifests/"+ref, body, "Content-Type: "+mediaType)
}

// testImage is a small OCI image: config, one layer, manifest.
type testImage struct {
	config, layer []byte
	manifest      []byte
	digest        digest.Digest
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestImage(t *testing.T, seed string, mutate func(m *ocispec.Manifest)) testImage {
	t.Helper()
	img := testImage{config: []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`), layer: []byte("layer-" + seed)}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(img.layer), Size: int64(len(img.layer))}},
	}
	m.SchemaVersion = 2
	if mutate != nil {
		mutate(&m)
	}
	img.manifest = mustJSON(t, m)
	img.digest = digest.FromBytes(img.manifest)
	return img
}

// push uploads the image's blobs and its manifest under ref.
func (c *testClient) pushImage(repo, ref string, img testImage) response {
	c.t.Helper()
	c.pushBlob(repo, img.config, digest.SHA256)
	c.pushBlob(repo, img.layer, digest.SHA256)
	return c.pushManifest(repo, ref, ocispec.MediaTypeImageManifest, img.manifest)
}

// doNoFatal is do for use off the test goroutine: failures become status 0.
func (c *testClient) doNoFatal(method, path string, body []byte, headers ...string) response {
	req, err := http.NewRequest(method, c.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return response{body: []byte(err.Error())}
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		return response{body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
