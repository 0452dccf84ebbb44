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
// every tag resolves to a manifest whose blobs are all present, and that
// every push the server acknowledged before the kill is still there. Each
// round kills only once pushes have been acknowledged and more are in
// flight, so that no round can pass without checking anything.
func TestKillDuringPushLeavesConsistentRegistry(t *testing.T) {
	data := t.TempDir()
	const minPerRound = 3
	var acked []string // tags whose manifest PUT the server acknowledged
	for round, delay := range []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond} {
		s := startServe(t, data)
		ctx, cancel := context.WithCancel(context.Background())
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			pushed []string // this round's acknowledged tags
		)
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					size := int64(512)
					if i%5 == 4 {
						size = 4 << 20 // some large blobs, to be cut mid-upload
					}
					img, err := random.Image(size, 3)
					if err != nil {
						return
					}
					tag := fmt.Sprintf("crash%d:r%d-%d", w, round, i)
					r, _ := name.ParseReference(s.Addr+"/quarantine/"+tag, name.Insecure)
					if remote.Write(r, img, remote.WithContext(ctx)) == nil {
						mu.Lock()
						pushed = append(pushed, "quarantine/"+tag)
						mu.Unlock()
					}
				}
			})
		}
		// Kill once enough pushes were acknowledged (others are then in
		// flight), a little later each round.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			mu.Lock()
			n := len(pushed)
			mu.Unlock()
			if n >= minPerRound {
				break
			}
			if time.Now().After(deadline) {
				cancel()
				wg.Wait()
				t.Fatalf("round %d: only %d pushes acknowledged in 2 minutes, want %d before the kill:\n%s", round, n, minPerRound, s.Logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(delay)
		s.Kill()
		cancel()
		wg.Wait()
		mu.Lock()
		acked = append(acked, pushed...)
		mu.Unlock()

		s = startServe(t, data)
		n := checkConsistent(t, s)
		for _, tag := range acked {
			r, _ := name.ParseReference(s.Addr+"/"+tag, name.Insecure)
			if _, err := remote.Head(r); err != nil {
				t.Errorf("round %d: %s was acknowledged before the kill and is gone: %v", round, tag, err)
			}
		}
		if n < len(acked) {
			t.Errorf("round %d: %d tags after the restart, fewer than the %d acknowledged pushes", round, n, len(acked))
		}
		t.Logf("round %d: killed %s after %d acknowledged pushes, %d tags consistent", round, delay, minPerRound, n)
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
