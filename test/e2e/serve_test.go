package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ref(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestServeProbesAndMetrics(t *testing.T) {
	s := startServe(t, "")
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, s.URL()+p); code != 200 {
			t.Errorf("%s = %d %q", p, code, body)
		}
	}
	// The API base challenges clients without credentials, so that they
	// come back with a token (an anonymous one here).
	if code, body := httpGet(t, s.URL()+"/v2/"); code != 401 || !strings.Contains(body, "authentication required") {
		t.Errorf("/v2/ = %d %q", code, body)
	}
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, s.Addr+"/quarantine/probe:1"), img); err != nil {
		t.Fatal(err)
	}
	_, metrics := httpGet(t, s.URL()+"/metrics")
	for _, want := range []string{
		`drydock_http_requests_total{code="201",method="PUT",route="manifest"} 1`,
		"drydock_http_request_bytes_total",
		"drydock_http_response_bytes_total",
		"drydock_registry_blob_upload_duration_seconds_count 3",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	s.Stop()
	if !strings.Contains(s.Logs(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in logs:\n%s", s.Logs())
	}
}

func TestServeConfigFileEnvAndFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "drydock.yaml")
	if err := os.WriteFile(cfg, []byte("version: v1\nlog: {level: debug}\nstorage: {driver: inmemory}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "", "--config", cfg)
	if !strings.Contains(s.Logs(), `"storage":"inmemory"`) {
		t.Errorf("config file not applied:\n%s", s.Logs())
	}
	s.Stop()

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("adress: 1.2.3.4:5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := drydock(t, nil, "serve", "--config", bad)
	if r.Code == 0 || !strings.Contains(r.Stderr, "adress") {
		t.Errorf("bad config: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = drydock(t, []string{"DRYDOCK_LOG_LEVEL=loud"}, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir())
	if r.Code == 0 || !strings.Contains(r.Stderr, "log.level") {
		t.Errorf("bad env: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestHelpTeaches(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"import", "--help"}, {"images", "--help"}, {"version", "--help"}} {
		r := mustDrydock(t, nil, args...)
		if !strings.Contains(r.Stdout, "Examples:") {
			t.Errorf("drydock %s has no examples:\n%s", strings.Join(args, " "), r.Stdout)
		}
	}
	r := mustDrydock(t, nil, "version")
	if !strings.HasPrefix(r.Stdout, "drydock ") || !strings.Contains(r.Stdout, "go1.") || !strings.Contains(r.Stdout, "commit ") {
		t.Errorf("version output %q", r.Stdout)
	}
}

// TestRestartKeepsEverything pushes an image and an index, restarts the
// server on the same data directory and reads everything back.
func TestRestartKeepsEverything(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, data)
	img, _ := random.Image(2048, 3)
	idx, _ := random.Index(1024, 2, 2)
	if err := remote.Write(ref(t, s.Addr+"/quarantine/keep:img"), img); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, s.Addr+"/quarantine/keep:idx"), idx); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s = startServe(t, data)
	got, err := remote.Image(ref(t, s.Addr+"/quarantine/keep:img"))
	if err != nil {
		t.Fatal(err)
	}
	wantD, _ := img.Digest()
	if d, _ := got.Digest(); d != wantD {
		t.Errorf("image digest %s after restart, want %s", d, wantD)
	}
	gi, err := remote.Index(ref(t, s.Addr+"/quarantine/keep:idx"))
	if err != nil {
		t.Fatal(err)
	}
	wantI, _ := idx.Digest()
	if d, _ := gi.Digest(); d != wantI {
		t.Errorf("index digest %s after restart, want %s", d, wantI)
	}
	checkConsistent(t, s)
}

// TestKillDuringPushLeavesConsistentRegistry kills the server with SIGKILL
// while clients push, several times, and checks after each restart that
// every tag resolves to a manifest whose blobs are all present.
func TestKillDuringPushLeavesConsistentRegistry(t *testing.T) {
	data := t.TempDir()
	for round, delay := range []time.Duration{300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond, 2 * time.Second, 3 * time.Second} {
		s := startServe(t, data)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					size := int64(512)
					if i%5 == 0 {
						size = 4 << 20 // some large blobs, to be cut mid-upload
					}
					img, err := random.Image(size, 3)
					if err != nil {
						return
					}
					r, _ := name.ParseReference(fmt.Sprintf("%s/quarantine/crash%d:r%d-%d", s.Addr, w, round, i), name.Insecure)
					_ = remote.Write(r, img, remote.WithContext(ctx))
				}
			})
		}
		time.Sleep(delay)
		s.Kill()
		cancel()
		wg.Wait()
		s = startServe(t, data)
		n := checkConsistent(t, s)
		t.Logf("round %d: killed after %s, %d tags consistent", round, delay, n)
		s.Stop()
	}
}

// checkConsistent walks the catalog and returns the number of tags, failing
// the test for a tag whose manifest or blobs are missing.
func checkConsistent(t *testing.T, s *serveProc) int {
	t.Helper()
	reg, err := name.NewRegistry(s.Addr, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(context.Background(), reg)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	count := 0
	for _, repo := range repos {
		r, err := name.NewRepository(s.Addr+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(r)
		if err != nil {
			t.Fatalf("list %s: %v", repo, err)
		}
		for _, tag := range tags {
			count++
			img, err := remote.Image(r.Tag(tag))
			if err != nil {
				t.Errorf("%s:%s: tag points at an unreadable manifest: %v", repo, tag, err)
				continue
			}
			if _, err := img.RawConfigFile(); err != nil {
				t.Errorf("%s:%s: config: %v", repo, tag, err)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Errorf("%s:%s: layers: %v", repo, tag, err)
				continue
			}
			for _, l := range layers {
				d, _ := l.Digest()
				if err := blobExists(r, d); err != nil {
					t.Errorf("%s:%s: layer %s missing: %v", repo, tag, d, err)
				}
			}
		}
	}
	return count
}

func blobExists(r name.Repository, d v1.Hash) error {
	l, err := remote.Layer(r.Digest(d.String()))
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}
