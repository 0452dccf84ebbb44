package oci

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestCopyEverySourceForm(t *testing.T) {
	ctx := context.Background()
	src := newTestRegistry(t, nil)
	img := ociImage(t, 1, amd64)
	idx := ociIndex(t)
	imgDigest, idxDigest := mustDigest(t, img), mustDigest(t, idx)
	im, _ := idx.IndexManifest()
	armDigest := im.Manifests[1].Digest

	pushTo(t, src.tag(t, "org/app", "v1"), img)
	pushTo(t, src.tag(t, "org/multi", "v2"), idx)
	pushTo(t, mustRef(t, src.host+"/org/app@"+imgDigest.String()), img)

	dir := t.TempDir()
	lay := writeLayout(t, filepath.Join(dir, "layout"), map[string]any{"v1": img, "multi": idx})
	single := writeLayout(t, filepath.Join(dir, "single"), map[string]any{"only": img})
	arch := tarDir(t, lay, filepath.Join(dir, "app.oci.tar"))
	archGz := gzipFile(t, arch, filepath.Join(dir, "app.tar.gz"))
	ggcrTar := filepath.Join(dir, "ggcr.tar")
	if err := tarball.WriteToFile(ggcrTar, mustRef(t, "example.test/ggcr/app:v3"), img); err != nil {
		t.Fatal(err)
	}
	saved := dockerArchive(t, filepath.Join(dir, "saved.tar"), img, "example.test/app:v4", nil)
	savedGz := gzipFile(t, saved, filepath.Join(dir, "saved.tar.gz"))

	tests := []struct {
		name       string
		src        string
		opts       []Option
		wantDigest v1.Hash // zero: docker-archive, checked separately
		wantIndex  bool
		wantName   string // SuggestedName repo:tag
	}{
		{name: "registry image", src: src.host + "/org/app:v1", wantDigest: imgDigest, wantName: "org/app:v1"},
		{name: "registry by digest", src: src.host + "/org/app@" + imgDigest.String(), wantDigest: imgDigest, wantName: "org/app:sha256-" + imgDigest.Hex},
		{name: "registry index keeps all platforms", src: "docker://" + src.host + "/org/multi:v2", wantDigest: idxDigest, wantIndex: true, wantName: "org/multi:v2"},
		{name: "registry index --platform", src: src.host + "/org/multi:v2", opts: []Option{WithPlatform(arm64)}, wantDigest: armDigest, wantName: "org/multi:v2"},
		{name: "registry index --platform without variant", src: src.host + "/org/multi:v2", opts: []Option{WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})}, wantDigest: armDigest, wantName: "org/multi:v2"},
		{name: "oci layout by tag", src: "oci:" + lay + ":v1", wantDigest: imgDigest, wantName: "layout:v1"},
		{name: "oci layout single manifest", src: "oci:" + single, wantDigest: imgDigest, wantName: "single:only"},
		{name: "oci layout index", src: "oci:" + lay + ":multi", wantDigest: idxDigest, wantIndex: true, wantName: "layout:multi"},
		{name: "oci layout index --platform", src: "oci:" + lay + ":multi", opts: []Option{WithPlatform(arm64)}, wantDigest: armDigest, wantName: "layout:multi"},
		{name: "oci-archive", src: "oci-archive:" + arch + ":v1", wantDigest: imgDigest, wantName: "app:v1"},
		{name: "oci-archive gzip-compressed", src: "oci-archive:" + archGz + ":v1", wantDigest: imgDigest, wantName: "app:v1"},
		{name: "oci-archive index", src: "oci-archive:" + arch + ":multi", wantDigest: idxDigest, wantIndex: true, wantName: "app:multi"},
		{name: "docker-archive from ggcr (compressed layers)", src: "docker-archive:" + ggcrTar, wantName: "ggcr/app:v3"},
		{name: "docker-archive docker-save style", src: "docker-archive:" + saved, wantName: "app:v4"},
		{name: "docker-archive gzip-compressed", src: "docker-archive:" + savedGz, wantName: "app:v4"},
		{name: "docker-archive by name", src: "docker-archive:" + saved + ":example.test/app:v4", wantName: "app:v4"},
		{name: "docker-archive by index", src: "docker-archive:" + saved + ":@0", wantName: "app:v4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newDestination(t)
			s, err := ParseSource(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			a, err := s.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			repo, tag := a.SuggestedName()
			if got := repo + ":" + tag; got != tt.wantName {
				t.Errorf("SuggestedName = %s, want %s", got, tt.wantName)
			}
			var reports int
			opts := append([]Option{WithProgress(func(Progress) { reports++ })}, tt.opts...)
			ref := dst.tag(t, "quarantine/"+repo, tag)
			res, err := Copy(ctx, a, ref, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if reports == 0 {
				t.Error("no progress reported")
			}
			desc, err := remote.Get(ref)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != res.Digest {
				t.Errorf("destination tag has %s, Copy said %s", desc.Digest, res.Digest)
			}
			if tt.wantDigest.Hex != "" && desc.Digest != tt.wantDigest {
				t.Errorf("digest = %s, want %s (unchanged)", desc.Digest, tt.wantDigest)
			}
			if tt.wantDigest.Hex == "" && desc.Digest != a.Descriptor.Digest {
				t.Errorf("digest = %s, want the artifact's %s", desc.Digest, a.Descriptor.Digest)
			}
			if got := desc.MediaType.IsIndex(); got != tt.wantIndex {
				t.Errorf("index = %v, want %v", got, tt.wantIndex)
			}
			if tt.wantIndex {
				ri, _ := desc.ImageIndex()
				if err := validate.Index(ri); err != nil {
					t.Errorf("validate.Index: %v", err)
				}
				if len(res.Platforms) != 2 {
					t.Errorf("platforms = %v, want 2", res.Platforms)
				}
			} else {
				ri, _ := desc.Image()
				if err := validate.Image(ri); err != nil {
					t.Errorf("validate.Image: %v", err)
				}
			}
		})
	}
}

func TestCopyDockerArchiveManifest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := ociImage(t, 7, amd64)
	saved := dockerArchive(t, filepath.Join(dir, "saved.tar"), img, "", nil)
	open := func() *Artifact {
		s, err := ParseSource("docker-archive:" + saved)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	a, b := open(), open()
	if a.Descriptor.Digest != b.Descriptor.Digest {
		t.Fatalf("two opens gave %s and %s; want a reproducible digest", a.Descriptor.Digest, b.Descriptor.Digest)
	}
	m, err := a.Image.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON {
		t.Errorf("media types %s / %s, want Docker schema 2", m.MediaType, m.Config.MediaType)
	}
	wantCfg, _ := img.ConfigName()
	if m.Config.Digest != wantCfg {
		t.Errorf("config digest %s, want the archive's config %s", m.Config.Digest, wantCfg)
	}
	layers, _ := a.Image.Layers()
	srcLayers, _ := img.Layers()
	for i, l := range layers {
		got, _ := l.DiffID()
		want, _ := srcLayers[i].DiffID()
		if got != want {
			t.Errorf("layer %d diff_id %s, want %s", i, got, want)
		}
		if m.Layers[i].MediaType != types.DockerLayer {
			t.Errorf("layer %d media type %s", i, m.Layers[i].MediaType)
		}
	}
	if err := validate.Image(a.Image); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	if a.RefName != "" {
		t.Errorf("RefName = %q", a.RefName)
	}
	if repo, tag := a.SuggestedName(); repo != "saved" || tag != "latest" {
		t.Errorf("SuggestedName = %s:%s, want saved:latest", repo, tag)
	}
}

func TestCopyExistingBlobsAndRepeat(t *testing.T) {
	ctx := context.Background()
	dst := newDestination(t)
	repo := uniqueRepo("quarantine/repeat")
	dir := t.TempDir()
	img := ociImage(t, 3, amd64)
	lay := writeLayout(t, filepath.Join(dir, "l"), map[string]any{"v1": img})
	ref := dst.tag(t, repo, "v1")
	first, err := importSource(ctx, "oci:"+lay+":v1", ref)
	if err != nil {
		t.Fatal(err)
	}
	if first.BlobsExisting != 0 || first.Blobs != 3 {
		t.Errorf("first import: %+v", first)
	}
	second, err := importSource(ctx, "oci:"+lay+":v1", dst.tag(t, repo, "again"))
	if err != nil {
		t.Fatal(err)
	}
	if second.BlobsExisting != 3 || second.BytesPushed != 0 || second.Digest != first.Digest {
		t.Errorf("second import: %+v", second)
	}
}

func TestCopyAuth(t *testing.T) {
	ctx := context.Background()
	src := newTestRegistry(t, basicAuth("alice", "s3cret"))
	img := ociImage(t, 4, amd64)
	pushTo(t, src.tag(t, "team/app", "v1"), img, remote.WithAuth(&basicAuthn{"alice", "s3cret"}))

	t.Run("docker config credentials", func(t *testing.T) {
		dst := newDestination(t)
		dockerConfig(t, src.host, "alice", "s3cret")
		res, err := importSource(ctx, src.host+"/team/app:v1", dst.tag(t, "quarantine/team/app", "v1"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != mustDigest(t, img).String() {
			t.Errorf("digest %s, want %s", res.Digest, mustDigest(t, img))
		}
	})
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", "alice", "nope"},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			empty := newDestination(t)
			repo := uniqueRepo("quarantine/team/app")
			if tc.user != "" {
				dockerConfig(t, src.host, tc.user, tc.pass)
			} else {
				t.Setenv("DOCKER_CONFIG", t.TempDir())
			}
			_, err := importSource(ctx, src.host+"/team/app:v1", empty.tag(t, repo, "v1"))
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v, want an AuthError", err)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), "authentication to "+src.host+" failed") {
				t.Errorf("error %q does not say which registry refused", err)
			}
			empty.assertNothingLeft(t, repo, allBlobs(t, img))
		})
	}
	t.Run("destination credentials from the server URL", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		guarded := newTestRegistry(t, basicAuth("bob", "pw"))
		lay := writeLayout(t, filepath.Join(t.TempDir(), "l"), map[string]any{"v1": img})
		srv, err := ParseServer("http://bob:pw@" + guarded.host)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := srv.Tag("quarantine/l", "v1")
		if _, err := importSource(ctx, "oci:"+lay, ref, srv.Options()...); err != nil {
			t.Fatal(err)
		}
		bad, _ := ParseServer("http://bob:wrong@" + guarded.host)
		_, err = importSource(ctx, "oci:"+lay, ref, bad.Options()...)
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v, want an AuthError", err)
		}
	})
}

type basicAuthn struct{ user, pass string }

func (b *basicAuthn) Authorization() (*authn.AuthConfig, error) {
	return &authn.AuthConfig{Username: b.user, Password: b.pass}, nil
}

func TestCopyBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := ociImage(t, 5, amd64)
	idx := ociIndex(t)
	m, _ := img.Manifest()
	blobs := append(allBlobs(t, img), allBlobs(t, idx)...)

	good := writeLayout(t, filepath.Join(dir, "good"), map[string]any{"v1": img, "multi": idx})
	archive := tarDir(t, good, filepath.Join(dir, "good.tar"))
	saved := dockerArchive(t, filepath.Join(dir, "saved.tar"), img, "", nil)
	blobPath := func(root string, h v1.Hash) string { return filepath.Join(root, "blobs", h.Algorithm, h.Hex) }

	missingBlob := writeLayout(t, filepath.Join(dir, "missing-blob"), map[string]any{"v1": img})
	must(t, os.Remove(blobPath(missingBlob, m.Layers[1].Digest)))

	mismatch := writeLayout(t, filepath.Join(dir, "mismatch"), map[string]any{"v1": img})
	garbage := make([]byte, m.Layers[1].Size)
	must(t, os.WriteFile(blobPath(mismatch, m.Layers[1].Digest), garbage, 0o644))

	wrongSize := writeLayout(t, filepath.Join(dir, "wrong-size"), map[string]any{"v1": img})
	must(t, os.WriteFile(blobPath(wrongSize, m.Layers[0].Digest), []byte("short"), 0o644))

	missingChild := writeLayout(t, filepath.Join(dir, "missing-child"), map[string]any{"multi": idx})
	im, _ := idx.IndexManifest()
	must(t, os.Remove(blobPath(missingChild, im.Manifests[1].Digest)))

	badManifest := writeLayout(t, filepath.Join(dir, "bad-manifest"), map[string]any{"v1": img})
	md := mustDigest(t, img)
	raw, _ := img.RawManifest()
	raw[len(raw)-2] = ' '
	must(t, os.WriteFile(blobPath(badManifest, md), raw, 0o644))

	full, err := os.ReadFile(archive)
	must(t, err)
	truncated := filepath.Join(dir, "truncated.tar")
	must(t, os.WriteFile(truncated, full[:len(full)/2+100], 0o644))
	corrupt := filepath.Join(dir, "corrupt.tar")
	junk := []byte(strings.Repeat("this is not a tar file\n", 100))
	must(t, os.WriteFile(corrupt, junk, 0o644))
	savedBytes, err := os.ReadFile(saved)
	must(t, err)
	truncatedSaved := filepath.Join(dir, "truncated-saved.tar")
	must(t, os.WriteFile(truncatedSaved, savedBytes[:len(savedBytes)-3000], 0o644))
	wrongDiffID := dockerArchive(t, filepath.Join(dir, "wrong-diffid.tar"), img, "", func(files map[string][]byte, names []string) {
		l := files[names[1]]
		l[len(l)-1024-1] ^= 0xff // inside the tar padding of the layer: a different digest, same size
	})
	missingLayer := dockerArchive(t, filepath.Join(dir, "missing-layer.tar"), img, "", func(files map[string][]byte, names []string) {
		delete(files, names[2])
	})

	// A source registry whose index lacks a child and whose image lacks a layer.
	srcReg := newTestRegistry(t, nil)
	pushTo(t, srcReg.tag(t, "org/multi", "v1"), idx)
	pushTo(t, srcReg.tag(t, "org/app", "v1"), img)
	del := func(path string) {
		req, _ := http.NewRequest(http.MethodDelete, srcReg.url+path, nil)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE %s: %s", path, resp.Status)
		}
	}
	del("/v2/org/multi/manifests/" + im.Manifests[0].Digest.String())
	del("/v2/org/app/blobs/" + m.Layers[1].Digest.String())

	tests := []struct {
		name    string
		src     string
		wantErr string
		is      error
	}{
		{"registry index with missing child", srcReg.host + "/org/multi:v1", "MANIFEST_UNKNOWN", nil},
		{"registry image with missing layer", srcReg.host + "/org/app:v1", "reading blob", nil},
		{"registry tag not found", srcReg.host + "/org/app:nope", "MANIFEST_UNKNOWN", ErrNotFound},
		{"bad reference", "Not A Reference!", "invalid source", ErrBadSource},
		{"uppercase repository", "example.test/UPPER:v1", "invalid source", ErrBadSource},
		{"url scheme", "https://example.test/app:v1", "has no scheme", ErrBadSource},
		{"empty oci path", "oci:", "missing path", ErrBadSource},
		{"nonexistent layout", "oci:" + filepath.Join(dir, "nope"), "no such file or directory", os.ErrNotExist},
		{"nonexistent oci-archive", "oci-archive:" + filepath.Join(dir, "nope.tar"), "no such file or directory", os.ErrNotExist},
		{"nonexistent docker-archive", "docker-archive:" + filepath.Join(dir, "nope.tar"), "no such file or directory", os.ErrNotExist},
		{"layout tag not found", "oci:" + good + ":v9", `no manifest tagged "v9"`, ErrNotFound},
		{"layout with two manifests and no tag", "oci:" + good, "name one with :TAG", nil},
		{"layout missing blob", "oci:" + missingBlob + ":v1", "missing", ErrNotFound},
		{"layout blob content mismatch", "oci:" + mismatch + ":v1", "content hashes to", ErrContentMismatch},
		{"layout blob wrong size", "oci:" + wrongSize + ":v1", "bytes, manifest says", ErrContentMismatch},
		{"layout manifest does not match digest", "oci:" + badManifest + ":v1", "content hashes to", ErrContentMismatch},
		{"index with missing child", "oci:" + missingChild + ":multi", "child manifest", nil},
		{"truncated oci-archive", "oci-archive:" + truncated + ":v1", "truncated", nil},
		{"corrupt oci-archive", "oci-archive:" + corrupt, "corrupt", nil},
		{"oci-archive is a directory", "oci-archive:" + good, "is a directory", nil},
		{"corrupt docker-archive", "docker-archive:" + corrupt, "corrupt", nil},
		{"truncated docker-archive", "docker-archive:" + truncatedSaved, "truncated", nil},
		{"docker-archive layer does not match diff_id", "docker-archive:" + wrongDiffID, "diff_id", ErrContentMismatch},
		{"docker-archive missing layer", "docker-archive:" + missingLayer, "not found", ErrNotFound},
		{"docker-archive unknown name", "docker-archive:" + saved + ":example.test/other:v1", "no image named", ErrNotFound},
		{"docker-archive index out of range", "docker-archive:" + saved + ":@3", "no image @3", nil},
		{"platform not in index", "oci:" + good + ":multi", "platform linux/s390x", ErrNotFound},
		{"platform of a single image", "oci:" + good + ":v1", "single image for linux/amd64", ErrNotFound},
		{"unreachable registry", "127.0.0.1:1/app:v1", "cannot reach registry 127.0.0.1:1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newDestination(t)
			repo := uniqueRepo("quarantine/bad")
			var opts []Option
			if strings.HasPrefix(tt.name, "platform") {
				opts = append(opts, WithPlatform(map[bool]v1.Platform{true: {OS: "linux", Architecture: "s390x"}, false: arm64}[strings.Contains(tt.name, "index")]))
			}
			_, err := importSource(ctx, tt.src, dst.tag(t, repo, "v1"), opts...)
			if err == nil {
				t.Fatal("import succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			dst.assertNothingLeft(t, repo, blobs)
		})
	}
}

func TestCopyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst := newDestination(t)
	repo := uniqueRepo("quarantine/cancelled")
	img := ociImage(t, 9, amd64)
	lay := writeLayout(t, filepath.Join(t.TempDir(), "l"), map[string]any{"v1": img})
	if _, err := importSource(ctx, "oci:"+lay, dst.tag(t, repo, "v1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	dst.assertNothingLeft(t, repo, allBlobs(t, img))
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// An https:// server on loopback is spoken to over TLS, though
// go-containerregistry would pick plain HTTP for a loopback address.
func TestCopyToTLSServer(t *testing.T) {
	ctx := context.Background()
	ts := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer ts.Close()
	srv, err := ParseServer(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Insecure {
		t.Fatal("https server parsed as insecure")
	}
	img := ociImage(t, 31, amd64)
	lay := writeLayout(t, filepath.Join(t.TempDir(), "l"), map[string]any{"v1": img})
	ref, err := srv.Tag("quarantine/tls", "v1")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(srv.Options(), WithTransport(ts.Client().Transport))
	res, err := importSource(ctx, "oci:"+lay, ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != mustDigest(t, img).String() {
		t.Errorf("digest %s, want %s", res.Digest, mustDigest(t, img))
	}
	repos, err := ListImages(ctx, srv, WithTransport(ts.Client().Transport))
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 1 || repos[0].Tags[0].Digest != res.Digest {
		t.Errorf("ListImages = %+v", repos)
	}
}

func gzipFile(t *testing.T, in, out string) string {
	t.Helper()
	b, err := os.ReadFile(in)
	must(t, err)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	must(t, zw.Close())
	must(t, os.WriteFile(out, buf.Bytes(), 0o644))
	return out
}

// When the last step (the tagged top manifest) fails, the child manifests
// and blobs already written are deleted again.
func TestCopyCleanupAfterManifestFailure(t *testing.T) {
	ctx := context.Background()
	refuseTag := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				http.Error(w, `{"errors":[{"code":"DENIED","message":"tag refused by policy"}]}`, http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	dst := newTestRegistry(t, refuseTag)
	idx := ociIndex(t)
	lay := writeLayout(t, filepath.Join(t.TempDir(), "l"), map[string]any{"multi": idx})
	var cleaned int
	_, err := importSource(ctx, "oci:"+lay, dst.tag(t, "quarantine/multi", "v1"), WithProgress(func(p Progress) {
		if p.Phase == PhaseCleanup {
			cleaned++
		}
	}))
	if err == nil || !strings.Contains(err.Error(), "tag refused by policy") {
		t.Fatalf("error %v, want the registry's refusal", err)
	}
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		req, _ := http.NewRequest(http.MethodHead, dst.url+"/v2/quarantine/multi/manifests/"+d.Digest.String(), nil)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("child manifest %s: HEAD %s, want 404 after cleanup", d.Digest, resp.Status)
		}
	}
	blobs := allBlobs(t, idx)
	for _, b := range blobs {
		if dst.hasBlob(t, "quarantine/multi", b) {
			t.Errorf("blob %s left behind", b)
		}
	}
	if want := len(blobs) + len(im.Manifests); cleaned != want {
		t.Errorf("cleanup reported %d removals, want %d", cleaned, want)
	}
}

// Importing from a repository of the destination registry mounts blobs
// instead of uploading them.
func TestCopyMountsFromSameRegistry(t *testing.T) {
	ctx := context.Background()
	reg := newDestination(t)
	img := ociImage(t, 41, amd64)
	srcRepo := uniqueRepo("other/mount-src")
	pushTo(t, reg.tag(t, srcRepo, "v1"), img)
	dstRepo := uniqueRepo("quarantine/mounted")
	res, err := importSource(ctx, reg.host+"/"+srcRepo+":v1", reg.tag(t, dstRepo, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	// (go-containerregistry's registry shares blobs across repositories,
	// so there they already exist; distribution links them per repository
	// and they are mounted.)
	if res.Digest != mustDigest(t, img).String() || res.BytesPushed != 0 {
		t.Errorf("result %+v, want no bytes uploaded", res)
	}
	for _, b := range allBlobs(t, img) {
		if !reg.hasBlob(t, dstRepo, b) {
			t.Errorf("blob %s not in %s", b, dstRepo)
		}
	}
}
