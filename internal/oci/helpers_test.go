package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testRegistry is a registry on loopback: go-containerregistry's
// in-memory one, or for destinations the server named by
// $DRYDOCK_TEST_REGISTRY (e.g. http://127.0.0.1:5000 for a running
// "drydock serve"), so the same tests run against the real server.
type testRegistry struct {
	url  string
	host string
}

func newTestRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return &testRegistry{url: s.URL, host: strings.TrimPrefix(s.URL, "http://")}
}

// newDestination is the registry imports are copied into.
func newDestination(t *testing.T) *testRegistry {
	t.Helper()
	if u := os.Getenv("DRYDOCK_TEST_REGISTRY"); u != "" {
		return &testRegistry{url: strings.TrimSuffix(u, "/"), host: strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")}
	}
	return newTestRegistry(t, nil)
}

// uniqueRepo returns prefix plus a random suffix, so that tests against a
// shared server do not see each other's repositories.
func uniqueRepo(prefix string) string {
	return fmt.Sprintf("%s-%08x", prefix, rand.Uint32())
}

func (r *testRegistry) server(t *testing.T) Server {
	t.Helper()
	s, err := ParseServer(r.url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r *testRegistry) tag(t *testing.T, repo, tag string) name.Tag {
	t.Helper()
	ref, err := r.server(t).Tag(repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// catalog lists the registry's repositories.
func (r *testRegistry) catalog(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get(r.url + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	slices.Sort(c.Repositories)
	return c.Repositories
}

func (r *testRegistry) hasBlob(t *testing.T, repo string, h v1.Hash) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, r.url+"/v2/"+repo+"/blobs/"+h.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// assertNothingLeft fails if the registry lists repo or holds any of the
// given blobs in it.
func (r *testRegistry) assertNothingLeft(t *testing.T, repo string, blobs []v1.Hash) {
	t.Helper()
	if slices.Contains(r.catalog(t), repo) {
		t.Errorf("registry lists %s after a failed import", repo)
	}
	for _, b := range blobs {
		if r.hasBlob(t, repo, b) {
			t.Errorf("registry still has blob %s in %s after a failed import", b, repo)
		}
	}
}

// ociImage builds a small random image with OCI media types for platform p.
func ociImage(t *testing.T, seed int64, p v1.Platform) v1.Image {
	t.Helper()
	src := rand.New(rand.NewSource(seed))
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for range 2 {
		l, err := random.Layer(3000, types.OCILayer, random.WithSource(src))
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, l)
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

// ociIndex builds a two-platform index.
func ociIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, p := range []v1.Platform{amd64, arm64} {
		img := ociImage(t, int64(100+i), p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx
}

// writeLayout writes items (v1.Image or v1.ImageIndex) into a new OCI
// layout, each annotated with its tag.
func writeLayout(t *testing.T, dir string, items map[string]any) string {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for tag := range items {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	for _, tag := range tags {
		opt := layout.WithAnnotations(map[string]string{annotationRefName: tag})
		switch it := items[tag].(type) {
		case v1.Image:
			err = p.AppendImage(it, opt)
		case v1.ImageIndex:
			err = p.AppendIndex(it, opt)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarDir writes the files under dir into a tar file.
func tarDir(t *testing.T, dir, file string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		info, _ := d.Info()
		h, _ := tar.FileInfoHeader(info, "")
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// dockerArchive writes a docker-save style archive of img with
// uncompressed layers; mangle may change the files before they are written.
func dockerArchive(t *testing.T, file string, img v1.Image, repoTag string, mangle func(files map[string][]byte, names []string)) string {
	t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	files := map[string][]byte{cfgName.Hex + ".json": cfg}
	names := []string{cfgName.Hex + ".json"}
	layers, _ := img.Layers()
	var layerNames []string
	for _, l := range layers {
		d, _ := l.DiffID()
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		n := d.Hex + "/layer.tar"
		files[n] = b
		names = append(names, n)
		layerNames = append(layerNames, n)
	}
	var tags []string
	if repoTag != "" {
		tags = []string{repoTag}
	}
	mj, _ := json.Marshal([]dockerManifestItem{{Config: cfgName.Hex + ".json", RepoTags: tags, Layers: layerNames}})
	files["manifest.json"] = mj
	names = append(names, "manifest.json")
	if mangle != nil {
		mangle(files, names)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		b, ok := files[n]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// pushTo writes an image or index into a registry.
func pushTo(t *testing.T, ref name.Reference, it any, opts ...remote.Option) {
	t.Helper()
	var err error
	switch v := it.(type) {
	case v1.Image:
		err = remote.Write(ref, v, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, v, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// dockerConfig writes a docker config.json with credentials for host and
// points $DOCKER_CONFIG at it.
func dockerConfig(t *testing.T, host, user, pass string) {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// basicAuth guards h with HTTP basic authentication.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// allBlobs lists the config and layer digests of an image or index.
func allBlobs(t *testing.T, it any) []v1.Hash {
	t.Helper()
	var out []v1.Hash
	var walk func(any)
	walk = func(it any) {
		switch v := it.(type) {
		case v1.Image:
			m, err := v.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m.Config.Digest)
			for _, l := range m.Layers {
				out = append(out, l.Digest)
			}
		case v1.ImageIndex:
			im, err := v.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range im.Manifests {
				img, err := v.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				walk(img)
			}
		}
	}
	walk(it)
	return out
}

// importSource parses, opens and copies src to dst the way the CLI does.
func importSource(ctx context.Context, src string, dst name.Reference, opts ...Option) (Result, error) {
	s, err := ParseSource(src)
	if err != nil {
		return Result{}, err
	}
	a, err := s.Open(ctx, opts...)
	if err != nil {
		return Result{}, err
	}
	defer a.Close()
	return Copy(ctx, a, dst, opts...)
}

func mustDigest(t *testing.T, it interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := it.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
