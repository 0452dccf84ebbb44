package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

// TestPendingFromArrival: a pushed image whose scan has not run (the job
// queue is not started here) is pending in the API and in the
// drydock_gate_images gauge alike, from the moment it arrives; the push
// is audited under the pusher's name, and the gate's own writes under the
// gate's.
func TestPendingFromArrival(t *testing.T) {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.Auth.Anonymous = []string{"pull:*", "push:*", "promote:*", "metrics"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeUnserved(srv) })
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	ctx := t.Context()
	reg := srv.Registry()
	layer, err := reg.PutBlob(ctx, "quarantine/app", []byte("a layer"))
	if err != nil {
		t.Fatal(err)
	}
	cfgBlob, err := reg.PutBlob(ctx, "quarantine/app", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgBlob.Digest, Size: cfgBlob.Size},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: layer.Digest, Size: layer.Size}}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	req, _ := http.NewRequestWithContext(ctx, "PUT", hs.URL+"/v2/quarantine/app/manifests/1", bytes.NewReader(body))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d", resp.StatusCode)
	}

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// The gauge first: nobody has asked for the verdict yet.
	if metrics := get("/metrics"); !strings.Contains(metrics, `drydock_gate_images{state="pending"} 1`) {
		t.Errorf("the gauge does not count the pending image:\n%s", grepLines(metrics, "drydock_gate_images"))
	}
	var st gatekeeper.Status
	if err := json.Unmarshal([]byte(get("/api/v1/verdict?ref=quarantine/app:1")), &st); err != nil || st.Verdict.State != "pending" {
		t.Errorf("API verdict %+v, %v", st.Verdict, err)
	}
	if metrics := get("/metrics"); !strings.Contains(metrics, `drydock_gate_images{state="pending"} 1`) {
		t.Errorf("after the API call the gauge says:\n%s", grepLines(metrics, "drydock_gate_images"))
	}

	// A report the gate attaches (its own write) is audited as the gate's.
	if _, err := reg.PutManifest(gatekeeper.WithGateWrite(ctx), "quarantine/app", ocispec.MediaTypeImageManifest, body); err != nil {
		t.Fatal(err)
	}
	var actors []string
	if err := srv.audits.Scan(ctx, 1, func(e *audit.Entry) error {
		if e.Action == audit.ActionPush {
			actors = append(actors, e.Actor)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(actors, ",") != "anonymous,"+gatekeeper.ActorGate {
		t.Errorf("push audit actors %v, want anonymous then %s", actors, gatekeeper.ActorGate)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
