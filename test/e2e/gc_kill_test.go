package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gcOrphans is how many unreferenced blobs the kill test stores: enough
// that the sweep is still deleting when the kill comes.
const gcOrphans = 20_000

// TestGCSurvivesKill: a real `drydock serve` is killed (SIGKILL) once its
// collection logs that the blob sweep started, with unreferenced blobs
// still on disk. After a restart the next collection completes; every
// tagged image still pulls whole, and the storage holds exactly the
// reachable blobs: the orphans and the deleted image's blobs are gone.
func TestGCSurvivesKill(t *testing.T) {
	data := t.TempDir()
	// No scheduled collection: the one River runs at start would, with a
	// grace of 0, collect the first image's layers between their upload
	// and its manifest (the push is then refused, as it should be).
	env := []string{anonymousAll, "DRYDOCK_GC_GRACE=0s", "DRYDOCK_GC_SCHEDULE=0s"}
	s := startServeEnv(t, data, env)
	addUser(t, data, "gcadmin", "gc-admin-password", "admin")
	admin := "http://gcadmin:gc-admin-password@" + s.Addr

	type pushed struct {
		repo, tag string
		manifest  digest.Digest
		blobs     []digest.Digest
	}
	var kept []pushed
	for i := range 6 {
		repo := fmt.Sprintf("quarantine/app%d", i%2)
		m, blobs := pushTestImage(t, s.URL(), repo, fmt.Sprintf("v%d", i))
		kept = append(kept, pushed{repo, fmt.Sprintf("v%d", i), m, blobs})
	}
	gone, goneBlobs := pushTestImage(t, s.URL(), "quarantine/app0", "gone")
	req, _ := http.NewRequest("DELETE", s.URL()+"/v2/quarantine/app0/manifests/"+gone.String(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete %s: %v %v", gone, resp, err)
	}

	blobsDir := findBlobsDir(t, data)
	var orphans []string
	for range gcOrphans {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		d := digest.FromBytes(b)
		p := filepath.Join(blobsDir, "sha256", d.Encoded()[:2], d.Encoded(), "data")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, p)
	}

	mustDrydock(t, nil, "gc", "--no-wait", "--skip-retention", "--server", admin)
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(s.Logs(), `"phase":"blobs"`) {
		if strings.Contains(s.Logs(), "garbage collection finished") {
			t.Fatalf("the collection finished before the blob sweep was seen:\n%s", s.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the blob sweep did not start in 5 minutes:\n%s", s.Logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Kill()
	left := 0
	for _, p := range orphans {
		if _, err := os.Stat(p); err == nil {
			left++
		}
	}
	if left == 0 {
		t.Fatalf("%d of %d orphans left at the kill: the kill did not come mid-sweep", left, len(orphans))
	}
	t.Logf("killed with %d of %d unreferenced blobs still on disk", left, len(orphans))

	s = startServeEnv(t, data, env)
	admin = "http://gcadmin:gc-admin-password@" + s.Addr
	r := mustDrydock(t, nil, "gc", "--skip-retention", "--server", admin)
	if !strings.Contains(r.Stdout, "succeeded") {
		t.Fatalf("the collection after the restart:\n%s\n%s", r.Stdout, r.Stderr)
	}

	want := map[digest.Digest]bool{}
	for _, k := range kept {
		pullWhole(t, s.URL(), k.repo, k.tag, k.manifest, k.blobs)
		want[k.manifest] = true
		for _, b := range k.blobs {
			want[b] = true
		}
	}
	have := map[digest.Digest]bool{}
	err := filepath.WalkDir(blobsDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "data" {
			have[digest.Digest("sha256:"+filepath.Base(filepath.Dir(p)))] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for d := range want {
		if !have[d] {
			t.Errorf("reachable blob %s lost", d)
		}
	}
	for d := range have {
		if !want[d] {
			t.Errorf("unreachable blob %s still stored", d)
		}
	}
	for _, b := range append(goneBlobs, gone) {
		if have[b] && !want[b] {
			t.Errorf("the deleted image's blob %s was not freed", b)
		}
	}
}

// findBlobsDir returns the filesystem driver's blobs directory in data.
func findBlobsDir(t *testing.T, data string) string {
	t.Helper()
	var dir string
	_ = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasSuffix(p, filepath.Join("docker", "registry", "v2", "blobs")) {
			dir = p
			return filepath.SkipAll
		}
		return nil
	})
	if dir == "" {
		t.Fatalf("no registry blobs directory under %s", data)
	}
	return dir
}

// pushTestImage pushes a config, two random layers and a manifest under
// tag, over plain HTTP, and returns the manifest's digest and its blobs.
func pushTestImage(t *testing.T, base, repo, tag string) (digest.Digest, []digest.Digest) {
	t.Helper()
	put := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob to %s: %d", repo, resp.StatusCode)
		}
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(b))}
	}
	rnd := func(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }
	cfg := put([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"id":%q}`, digest.FromBytes(rnd(8)))))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	l1, l2 := put(rnd(4096)), put(rnd(8192))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{l1, l2}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest("PUT", base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest %s:%s: %d", repo, tag, resp.StatusCode)
	}
	return digest.FromBytes(body), []digest.Digest{cfg.Digest, l1.Digest, l2.Digest}
}

// pullWhole checks that repo:tag resolves to m and that each blob reads
// back with its digest.
func pullWhole(t *testing.T, base, repo, tag string, m digest.Digest, blobs []digest.Digest) {
	t.Helper()
	get := func(p string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+p, nil)
		req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get("/v2/" + repo + "/manifests/" + tag); code != http.StatusOK || digest.FromBytes(b) != m {
		t.Errorf("%s:%s: %d, digest %s, want %s", repo, tag, code, digest.FromBytes(b), m)
	}
	for _, d := range blobs {
		if code, b := get("/v2/" + repo + "/blobs/" + d.String()); code != http.StatusOK || digest.FromBytes(b) != d {
			t.Errorf("%s: blob %s: %d", repo, d, code)
		}
	}
}
