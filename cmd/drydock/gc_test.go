package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/server"
)

// TestGCCLI: `drydock gc --dry-run` against a real server prints what a
// run would free and frees nothing; `drydock gc` frees it.
func TestGCCLI(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Auth.Anonymous = []string{"admin"}
	cfg.GC.Grace = 0
	cfg.GC.Schedule = 0
	srv, err := server.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
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
	base := "http://" + ln.Addr().String()

	// An image pushed by digest only: nothing reaches it.
	push := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		resp, err := http.Post(base+"/v2/quarantine/app/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob: %d", resp.StatusCode)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	layerBytes := make([]byte, 300_000)
	_, _ = rand.Read(layerBytes)
	layer := push(layerBytes)
	layer.MediaType = ocispec.MediaTypeImageLayer
	c := push([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	c.MediaType = ocispec.MediaTypeImageConfig
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: c, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest("PUT", base+"/v2/quarantine/app/manifests/"+digest.FromBytes(body).String(), bytes.NewReader(body))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest: %d", resp.StatusCode)
	}
	blobURL := base + "/v2/quarantine/app/blobs/" + layer.Digest.String()

	out, _, err := runCmd(t, "gc", "--dry-run", "--server", base)
	if err != nil {
		t.Fatalf("gc --dry-run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "would free") || !strings.Contains(out, layer.Digest.String()) {
		t.Errorf("gc --dry-run printed:\n%s", out)
	}
	if resp, err := http.Head(blobURL); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the dry run the layer is gone: %v %v", resp, err)
	}
	out, _, err = runCmd(t, "gc", "--server", base)
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if !strings.Contains(out, "freed") || !strings.Contains(out, "succeeded") {
		t.Errorf("gc printed:\n%s", out)
	}
	if resp, err := http.Head(blobURL); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("after the run the layer answers %v %v, want 404", resp.StatusCode, err)
	}
}
