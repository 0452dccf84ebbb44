package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/registry"
)

// published keeps the events the guard sends.
type published struct {
	mu     sync.Mutex
	events []events.Event
}

func (p *published) Publish(e events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return nil
}

func (p *published) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.events) }

var guardDigest = "sha256:" + strings.Repeat("ab", 32)

// livePaths are the path forms of the live namespace a client can send:
// every endpoint, the repository "live" itself and below it, encodings,
// unclean paths and case tricks. Each must be refused for every write
// method.
var livePaths = []string{
	// The repository "live" itself (hole 1).
	"/v2/live/manifests/prod",
	"/v2/live/manifests/" + guardDigest,
	"/v2/live/blobs/" + guardDigest,
	"/v2/live/blobs/uploads/",
	"/v2/live/blobs/uploads",
	"/v2/live/blobs/uploads/?mount=" + guardDigest + "&from=quarantine/bad",
	"/v2/live/blobs/uploads/0123abcd-0123-4567-89ab-0123456789ab",
	"/v2/live/tags/list",
	"/v2/live/referrers/" + guardDigest,
	// Below it.
	"/v2/live/x/manifests/prod",
	"/v2/live/x/manifests/" + guardDigest + "?tag=prod",
	"/v2/live/x/blobs/" + guardDigest,
	"/v2/live/x/blobs/uploads/",
	"/v2/live/x/blobs/uploads/?mount=" + guardDigest + "&from=quarantine/bad",
	"/v2/live/x/blobs/uploads/0123abcd-0123-4567-89ab-0123456789ab",
	"/v2/live/a/b/c/manifests/1",
	"/v2/live/x/tags/list",
	"/v2/live/x/referrers/" + guardDigest,
	// Repository names that hold endpoint words.
	"/v2/live/manifests/x/manifests/1",
	"/v2/live/blobs/uploads/x/manifests/1",
	// Trailing slashes, double slashes, dot segments, case, no endpoint.
	"/v2/live/manifests/prod/",
	"/v2/live/x/manifests/prod/",
	"/v2//live/manifests/prod",
	"/v2/live//x/manifests/prod",
	"/v2/./live/manifests/prod",
	"/v2/quarantine/../live/manifests/prod",
	"/v2/quarantine/x/../../live/x/manifests/prod",
	"/v2/LIVE/manifests/prod",
	"/v2/Live/x/manifests/prod",
	"/v2/live",
	"/v2/live/",
	"/v2/live/x",
	"/v2/live/x/manifests",
}

// escapedLivePaths are sent with an encoded slash: the router and the
// guard see the decoded path.
var escapedLivePaths = []string{
	"/v2/live%2Fx/manifests/prod",
	"/v2/live%2fx/blobs/uploads/",
	"/v2/quarantine%2F..%2Flive/manifests/prod",
	"/v2/quarantine/%2e%2e/live/manifests/prod",
	"/v2/%6c%69%76%65/manifests/prod",
	"/v2/%6C%49%56%45/x/blobs/uploads/",
}

// otherPaths are writes the guard lets through to the roles and the
// registry: not the live namespace.
var otherPaths = []string{
	"/v2/quarantine/app/manifests/1",
	"/v2/quarantine/live/manifests/1",
	"/v2/quarantine/app/blobs/uploads/?mount=" + guardDigest + "&from=live/app",
	"/v2/lively/manifests/1",
	"/v2/livex/x/blobs/uploads/",
	"/v2/other/live/manifests/1",
	"/v2/_catalog",
	"/v2/",
}

var writeMethods = []string{http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete, "OPTIONS", "put", "PROPFIND"}

// TestGuardLive: every write method to every path form of the live
// namespace is refused before the next handler, with the client-facing
// reason, an audit entry under the caller's name, and an event; reads
// and writes elsewhere pass.
func TestGuardLive(t *testing.T) {
	al, closeAudit, err := audit.OpenFile(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAudit()
	pub := &published{}
	reached := 0
	h := guardLive(slog.New(slog.DiscardHandler), al, pub, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusTeapot)
	}))
	send := func(method, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(auth.WithPrincipal(t.Context(), auth.Principal{Name: "mallory"}), method, "http://drydock"+target, bytes.NewReader([]byte("{}")))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	refused := 0
	for _, p := range append(append([]string{}, livePaths...), escapedLivePaths...) {
		for _, m := range writeMethods {
			before := reached
			rec := send(m, p)
			if reached != before || rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"DENIED"`) ||
				!strings.Contains(rec.Body.String(), "live/ is write-protected") {
				t.Errorf("%s %s: reached the registry: %v, answer %d %s", m, p, reached != before, rec.Code, rec.Body)
				continue
			}
			refused++
		}
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			before := reached
			if rec := send(m, p); reached != before+1 || rec.Code != http.StatusTeapot {
				t.Errorf("%s %s: a read was refused: %d", m, p, rec.Code)
			}
		}
	}
	for _, p := range otherPaths {
		for _, m := range append([]string{http.MethodGet}, writeMethods...) {
			before := reached
			if rec := send(m, p); reached != before+1 {
				t.Errorf("%s %s: refused outside live: %d %s", m, p, rec.Code, rec.Body)
			}
		}
	}

	var entries []audit.Entry
	if err := al.Scan(t.Context(), 1, func(e *audit.Entry) error { entries = append(entries, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(entries) != refused || pub.count() != refused {
		t.Fatalf("%d refusals, %d audit entries, %d events", refused, len(entries), pub.count())
	}
	for _, e := range entries {
		if e.Actor != "mallory" || e.Action != audit.ActionBypassRefused || e.Outcome != audit.OutcomeRefused ||
			!strings.EqualFold(strings.SplitN(e.Repository, "/", 2)[0], "live") {
			t.Errorf("audit entry %+v", e)
		}
	}
	// The manifest reference is recorded for manifest writes.
	if e := entries[0]; e.Repository != "live" || e.Reference != "prod" {
		t.Errorf("first refusal recorded as %s:%s, want live:prod", e.Repository, e.Reference)
	}
}

// TestGuardThroughServer drives a real server handler (router, auth,
// guard, registry) as a user holding pull, push and promote on every
// namespace: the push of hole 1 (a blob mounted from quarantine/ and a
// manifest PUT to the repository "live"), and every write path form, are
// refused, and the registry holds nothing in the live namespace.
func TestGuardThroughServer(t *testing.T) {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.Auth.Anonymous = []string{"pull:*", "push:*", "promote:*"}
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
	// Redirects are answers too: the client sees them, nothing follows.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var location string
	do := func(method, target string, body []byte, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, hs.URL+target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		location = resp.Header.Get("Location")
		if testing.Verbose() {
			t.Logf("%s %s: %d %.80s", method, target, resp.StatusCode, b)
		}
		return resp.StatusCode, string(b)
	}

	// An image in quarantine/, pushed through the API.
	ctx := t.Context()
	reg := srv.Registry()
	layer, err := reg.PutBlob(ctx, "quarantine/bad", []byte("a layer"))
	if err != nil {
		t.Fatal(err)
	}
	cfgBlob, err := reg.PutBlob(ctx, "quarantine/bad", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgBlob.Digest, Size: cfgBlob.Size},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: layer.Digest, Size: layer.Size}}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	if code, b := do("PUT", "/v2/quarantine/bad/manifests/1", body, "Content-Type", ocispec.MediaTypeImageManifest); code != http.StatusCreated {
		t.Fatalf("push to quarantine/: %d %s", code, b)
	}

	// Hole 1, as the adversarial pass did it.
	for _, d := range []digest.Digest{layer.Digest, cfgBlob.Digest} {
		if code, b := do("POST", "/v2/live/blobs/uploads/?mount="+d.String()+"&from=quarantine/bad", nil); code != http.StatusForbidden || !strings.Contains(b, "write-protected") {
			t.Errorf("mount into live: %d %s", code, b)
		}
	}
	if code, b := do("PUT", "/v2/live/manifests/prod", body, "Content-Type", ocispec.MediaTypeImageManifest); code != http.StatusForbidden || !strings.Contains(b, "write-protected") {
		t.Errorf("manifest PUT to live: %d %s", code, b)
	}
	// Every path form and method, through the router.
	for _, p := range append(append([]string{}, livePaths...), escapedLivePaths...) {
		for _, method := range writeMethods {
			code, b := do(method, p, body, "Content-Type", ocispec.MediaTypeImageManifest)
			if code == http.StatusTemporaryRedirect || code == http.StatusPermanentRedirect {
				// The router sends unclean paths to their clean form,
				// keeping the method: a client that follows is refused.
				target := location
				if code, b = do(method, target, body, "Content-Type", ocispec.MediaTypeImageManifest); code >= 300 && code < 400 {
					t.Errorf("%s %s: redirected twice, to %s and %s", method, p, target, location)
				}
			}
			if code != http.StatusForbidden || !strings.Contains(b, "write-protected") {
				t.Errorf("%s %s: %d %s", method, p, code, b)
			}
		}
	}

	for _, repo := range []string{"live", "live/x"} {
		for _, ref := range []string{"prod", m.Config.Digest.String()} {
			if _, _, err := reg.Manifest(ctx, repo, ref); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("%s:%s exists after refused writes: %v", repo, ref, err)
			}
		}
	}
	code, b := do("GET", "/v2/_catalog", nil)
	if code != http.StatusOK || strings.Contains(b, `"live`) {
		t.Errorf("catalog after refused writes: %d %s", code, b)
	}
}
