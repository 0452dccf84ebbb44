package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gc"
)

// dirSize is the bytes of the regular files under dir, but for SQLite's
// write-ahead logs: journals of the databases (jobs, audit), bounded by
// SQLite's checkpoints, not stored content.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasSuffix(d.Name(), "-wal") && !strings.HasSuffix(d.Name(), "-shm") {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// gcRun asks the server for a collection through the API and waits for it.
func gcRun(t *testing.T, base string, dryRun bool) *gc.Run {
	t.Helper()
	body, _ := json.Marshal(api.GCRequest{DryRun: dryRun})
	resp, err := http.Post(base+"/api/v1/gc", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var run gc.Run
	err = json.NewDecoder(resp.Body).Decode(&run)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/gc: %d %v", resp.StatusCode, err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !run.Finished() {
		if time.Now().After(deadline) {
			t.Fatalf("run %d: still %s", run.ID, run.State)
		}
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Get(base + "/api/v1/gc/runs/" + strconv.FormatInt(run.ID, 10))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&run)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if run.State != gc.StateSucceeded {
		t.Fatalf("run %d: %s: %s", run.ID, run.State, run.Error)
	}
	return &run
}

// pushLarge pushes a config and one layer of size random bytes as
// quarantine/big:TAG and returns the manifest's digest.
func pushLarge(t *testing.T, base string, size int) digest.Digest {
	t.Helper()
	put := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		resp, err := http.Post(base+"/v2/quarantine/big/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob: %d", resp.StatusCode)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	layer := make([]byte, size)
	_, _ = rand.Read(layer)
	l := put(layer)
	l.MediaType = ocispec.MediaTypeImageLayer
	c := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + l.Digest.String() + `"]}}`))
	c.MediaType = ocispec.MediaTypeImageConfig
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: c, Layers: []ocispec.Descriptor{l}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest("PUT", base+"/v2/quarantine/big/manifests/latest", bytes.NewReader(body))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest: %d", resp.StatusCode)
	}
	return digest.FromBytes(body)
}

// startGCServer starts a server with cfg on loopback until the test ends
// and returns it with its base URL.
func startGCServer(t *testing.T, cfg config.Config) (*Server, string) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

// TestGCProtectMetric: a push during a collection cycle is counted in
// the barrier's histogram on /metrics, and a push outside one is not.
func TestGCProtectMetric(t *testing.T) {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Auth.Anonymous = []string{"admin"}
	cfg.GC.Schedule = 0
	srv, base := startGCServer(t, cfg)
	count := func() string {
		t.Helper()
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for line := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(line, "drydock_gc_protect_seconds_count "); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("/metrics lacks drydock_gc_protect_seconds_count")
		return ""
	}
	push := func() {
		t.Helper()
		b := make([]byte, 100)
		_, _ = rand.Read(b)
		resp, err := http.Post(base+"/v2/quarantine/m/blobs/uploads/?digest="+digest.FromBytes(b).String(), "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob: %d", resp.StatusCode)
		}
	}
	push()
	if n := count(); n != "0" {
		t.Fatalf("a push outside a collection counted: %s", n)
	}
	ctx := t.Context()
	c, err := srv.gc.member.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Arm(ctx); err != nil {
		t.Fatal(err)
	}
	push()
	if err := c.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n == "0" {
		t.Fatal("a push during a collection cycle was not counted")
	}
}

// TestGCReturnsTheDisk: a 50 MB image pushed and deleted 10 times, then a
// collection through the API (dry, then real): the dry run announces the
// bytes the real run frees, and the data directory is back within 1 MB of
// its size before the pushes.
func TestGCReturnsTheDisk(t *testing.T) {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Auth.Anonymous = []string{"admin"}
	cfg.GC.Grace = 0
	cfg.GC.Schedule = 0
	_, base := startGCServer(t, cfg)
	gcRun(t, base, false) // the databases and their first rows exist before the baseline
	before := dirSize(t, cfg.Data)

	const size, times = 50 << 20, 10
	for range times {
		d := pushLarge(t, base, size)
		req, _ := http.NewRequest("DELETE", base+"/v2/quarantine/big/manifests/"+d.String(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delete %s: %d", d, resp.StatusCode)
		}
	}
	if grown := dirSize(t, cfg.Data) - before; grown < times*size {
		t.Fatalf("the data directory grew by %d bytes only", grown)
	}
	dry := gcRun(t, base, true)
	real := gcRun(t, base, false)
	if real.Report.Collection.FreedBytes < times*size || dry.Report.Collection.FreedBytes != real.Report.Collection.FreedBytes {
		t.Errorf("dry run would free %d bytes, the run freed %d, want at least %d", dry.Report.Collection.FreedBytes,
			real.Report.Collection.FreedBytes, times*size)
	}
	after := dirSize(t, cfg.Data)
	t.Logf("data directory: %d bytes before, %d after; run %d freed %d bytes in %s", before, after, real.ID,
		real.Report.Collection.FreedBytes, real.Report.Collection.Duration)
	if after-before > 1<<20 {
		_ = filepath.WalkDir(cfg.Data, func(p string, d fs.DirEntry, _ error) error {
			if fi, err := d.Info(); err == nil && d.Type().IsRegular() && fi.Size() > 32<<10 {
				t.Logf("%s %d", p, fi.Size())
			}
			return nil
		})
		t.Errorf("the data directory is %d bytes larger than before the pushes, want at most 1 MB", after-before)
	}
}

// TestServerWritesBack: a server on the filesystem driver syncs its
// storage after a push (storage.writeback), and with storage.writeback 0s
// never does.
func TestServerWritesBack(t *testing.T) {
	for _, every := range []time.Duration{10 * time.Millisecond, 0} {
		cfg := config.Default()
		cfg.Data = t.TempDir()
		cfg.Auth.Anonymous = []string{"admin"}
		cfg.GC.Schedule = 0
		cfg.Storage.Writeback = config.Duration(every)
		srv, base := startGCServer(t, cfg)
		pushLarge(t, base, 1000)
		deadline := time.Now().Add(20 * time.Second)
		for srv.Registry().Writebacks() == 0 && time.Now().Before(deadline) && every > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		if every == 0 {
			time.Sleep(600 * time.Millisecond) // past the default interval
		}
		n := srv.Registry().Writebacks()
		if (n > 0) != (every > 0) {
			t.Errorf("storage.writeback %s: %d syncs after a push", every, n)
		}
		// Each sync is timed on /metrics (at least those made so far).
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		timed := int64(-1)
		for line := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(line, "drydock_storage_writeback_seconds_count "); ok {
				timed, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if timed < n || (every == 0 && timed != 0) {
			t.Errorf("storage.writeback %s: %d syncs, drydock_storage_writeback_seconds_count %d", every, n, timed)
		}
	}
}
