package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/server"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// fakeClock is the gate's injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// gateServer is a drydock server over real HTTP on loopback, with the real
// vulnerability data and the gate's clock under the test's control.
type gateServer struct {
	t      testing.TB
	url    string
	host   string
	data   string
	policy string
	vexDir string
	clock  *fakeClock
	// srv is the server, for in-process access to its registry.
	srv *server.Server
}

// gateSetup is what a gateOption may change before the server starts.
type gateSetup struct {
	cfg  *config.Config
	noDB bool
}

type gateOption func(*gateSetup)

// withoutDB starts the server without a vulnerability database.
func withoutDB(s *gateSetup) { s.noDB = true }

// withConfig changes the server's configuration.
func withConfig(f func(*config.Config)) gateOption { return func(s *gateSetup) { f(s.cfg) } }

func startGateServer(t testing.TB, policy string, opts ...gateOption) *gateServer {
	t.Helper()
	g := &gateServer{t: t, data: t.TempDir(), clock: &fakeClock{now: realdb.DataDate}}
	realdb.Path(t) // skips without the real data
	g.policy = filepath.Join(t.TempDir(), "policy.yaml")
	g.writePolicy(policy)
	g.vexDir = t.TempDir()
	cfg := config.Default()
	cfg.Data = g.data
	cfg.Addr = "127.0.0.1:0"
	cfg.Gate.Policy = g.policy
	cfg.Gate.Exceptions = g.vexDir
	cfg.Gate.SweepInterval = config.Duration(time.Hour) // the test drives re-evaluation
	cfg.Auth.Anonymous = []string{"pull:*", "push:*", "promote:*", "metrics"}
	setup := gateSetup{cfg: &cfg}
	for _, o := range opts {
		o(&setup)
	}
	if !setup.noDB {
		realdb.Copy(t, vulndb.DefaultPath(g.data))
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log, server.WithClock(g.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.srv = srv
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	g.host = ln.Addr().String()
	g.url = "http://" + g.host
	return g
}

func (g *gateServer) writePolicy(p string) {
	g.t.Helper()
	// A new mtime is not guaranteed within one clock tick: change the size
	// too (a comment) so the server sees the new version.
	p += fmt.Sprintf("# rev %d\n", time.Now().UnixNano())
	if err := os.WriteFile(g.policy, []byte(p), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// push writes a test image to the server as ref (quarantine/NAME:TAG).
func (g *gateServer) push(ti *testimage.Image, ref string) string {
	g.t.Helper()
	img, err := ti.Open()
	if err != nil {
		g.t.Fatal(err)
	}
	r, err := name.ParseReference(g.host+"/"+ref, name.Insecure)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithContext(g.t.Context())); err != nil {
		g.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		g.t.Fatal(err)
	}
	return d.String()
}

// api sends a request to the JSON API and decodes the answer into out.
func (g *gateServer) api(method, path string, body any, out any) int {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(g.t.Context(), method, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			g.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

func (g *gateServer) verdict(ref string) *gatekeeper.Status {
	g.t.Helper()
	var st gatekeeper.Status
	if code := g.api("GET", "/api/v1/verdict?ref="+url.QueryEscape(ref), nil, &st); code != http.StatusOK {
		g.t.Fatalf("verdict %s: status %d", ref, code)
	}
	return &st
}

// waitScanned polls the verdict until the scan is done.
func (g *gateServer) waitScanned(ref string) *gatekeeper.Status {
	g.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := g.verdict(ref)
		if !st.Scan.ScannedAt.IsZero() || st.Scan.Error != "" {
			return st
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s not scanned after 3 minutes: %+v", ref, st)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// vex writes an OpenVEX document exempting cves in repo until expires.
func (g *gateServer) vex(file, repo string, cves []string, expires time.Time) {
	g.t.Helper()
	doc := gatetest.OpenVEX(file, repo, cves, realdb.DataDate.Add(-time.Hour), expires)
	if err := os.WriteFile(filepath.Join(g.vexDir, file), doc, 0o644); err != nil {
		g.t.Fatal(err)
	}
}

const strictPolicy = `version: v1
maxSeverity: LOW
fixableOnly: false
blockEndOfLife: true
graceWindow: 72h
`

// TestGateFailExemptExpire is the gate's main path with the real scanner
// and data: a vulnerable bookworm image fails a strict policy, passes as
// exempt with an OpenVEX exception for each finding, is promoted by
// digest with its scan report, and fails again when the exceptions expire.
func TestGateFailExemptExpire(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	g := startGateServer(t, strictPolicy)
	digest := g.push(ti, "quarantine/bookworm:12")

	st := g.waitScanned("quarantine/bookworm:12")
	if st.Digest != digest || st.Verdict.State != gate.StateFail {
		t.Fatalf("verdict %+v, want fail for %s", st, digest)
	}
	ids := gatetest.FailingCVEs(st.Verdict)
	if len(ids) == 0 {
		t.Fatalf("a fail without findings: %+v", st.Verdict)
	}
	t.Logf("strict policy: %s with %d CVEs above LOW", st.Verdict.State, len(ids))

	// Promotion of the failing digest is refused with the reasons.
	var refused struct {
		Error   struct{ Code, Message string }
		Verdict *gate.Verdict
	}
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/bookworm:12"}, &refused); code != http.StatusForbidden ||
		refused.Error.Code != "PROMOTION_REFUSED" || refused.Verdict == nil || !strings.Contains(refused.Error.Message, ids[0]) {
		t.Fatalf("promotion of a failing digest: %d %+v", code, refused)
	}

	// One exception per finding: exempt, promotable.
	expires := realdb.DataDate.Add(30 * 24 * time.Hour)
	g.vex("bookworm.json", "quarantine/bookworm", ids, expires)
	st = g.verdict("quarantine/bookworm:12")
	if st.Verdict.State != gate.StateExempt || len(st.Verdict.Applied) != len(ids) {
		t.Fatalf("with exceptions: %s, %d applied, want exempt with %d", st.Verdict.State, len(st.Verdict.Applied), len(ids))
	}
	var p gatekeeper.Promotion
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/bookworm:12"}, &p); code != http.StatusOK {
		t.Fatalf("promote: %d", code)
	}
	if p.Digest != digest || p.Target != "live/bookworm:12" || len(p.Copy.Referrers) == 0 {
		t.Fatalf("promotion %+v", p)
	}
	live, err := remote.Get(mustRef(t, g.host+"/live/bookworm:12"))
	if err != nil || live.Digest.String() != digest {
		t.Fatalf("live/bookworm:12: %v %v", live, err)
	}
	if rep := live.Digest; rep.String() == "" {
		t.Fatal("no digest")
	}
	idx, err := remote.Referrers(mustRef(t, g.host+"/live/bookworm@"+digest).Context().Digest(digest))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if !slices.ContainsFunc(im.Manifests, func(d v1.Descriptor) bool { return d.ArtifactType == gatekeeper.ReportArtifactType }) {
		t.Fatalf("no scan report among the referrers in live/: %+v", im)
	}

	// The verdict asked for through live/ is the digest's, with the
	// exceptions written for its quarantine/ repository.
	if st := g.verdict("live/bookworm:12"); st.Verdict.State != gate.StateExempt || st.Digest != digest {
		t.Fatalf("verdict through live/: %s", st.Verdict.State)
	}

	// A day after the expiry: fail again, the expired exceptions named.
	g.clock.Set(expires.Add(24 * time.Hour))
	st = g.verdict("quarantine/bookworm:12")
	if st.Verdict.State != gate.StateFail || len(st.Verdict.ExpiredExceptions) != len(ids) || !st.Promoted {
		t.Fatalf("after expiry: %s, %d expired, promoted %v", st.Verdict.State, len(st.Verdict.ExpiredExceptions), st.Promoted)
	}
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/bookworm:12", "target": "live/bookworm:again"}, &refused); code != http.StatusForbidden {
		t.Fatalf("promotion after expiry: %d", code)
	}

	// The gate's metrics say the same.
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`drydock_gate_scans_total{outcome="ok"} 1`,
		`drydock_gate_promotions_total{outcome="ok"} 1`,
		`drydock_gate_promotions_total{outcome="refused"} 2`,
		`drydock_gate_images{state="fail"} 1`,
		`drydock_gate_verdict_changes_total{state="exempt"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGateGraceWindow: a promoted image whose verdict turns from pass to
// fail because of its findings (here a stricter policy) keeps pass, with
// the coming flip visible, until the grace window has passed.
func TestGateGraceWindow(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	lenient := "version: v1\nmaxSeverity: CRITICAL\ngraceWindow: 48h\n"
	g := startGateServer(t, lenient)
	g.push(ti, "quarantine/app:1")
	st := g.waitScanned("quarantine/app:1")
	if st.Verdict.State != gate.StatePass {
		t.Fatalf("lenient policy: %+v", st.Verdict)
	}
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/app:1"}, nil); code != http.StatusOK {
		t.Fatalf("promote: %d", code)
	}
	// A rescan of the promoted image: the verdict never shows pending.
	if code := g.api("POST", "/api/v1/rescan", map[string]string{"reference": "quarantine/app:1"}, nil); code != http.StatusAccepted {
		t.Fatalf("rescan: %d", code)
	}
	for range 20 {
		if st := g.verdict("quarantine/app:1"); st.Verdict.State != gate.StatePass {
			t.Fatalf("during a rescan of a promoted image: %s", st.Verdict.State)
		}
	}
	g.writePolicy(strings.Replace(strictPolicy, "72h", "48h", 1))
	t0 := g.clock.Now()
	st = g.verdict("quarantine/app:1")
	if st.Verdict.State != gate.StatePass || st.Verdict.PendingFlip == nil || !st.Verdict.PendingFlip.EffectiveAt.Equal(t0.Add(48*time.Hour)) {
		t.Fatalf("inside the grace window: %+v", st.Verdict)
	}
	g.clock.Set(t0.Add(47 * time.Hour))
	if st = g.verdict("quarantine/app:1"); st.Verdict.State != gate.StatePass {
		t.Fatalf("47h in: %s", st.Verdict.State)
	}
	g.clock.Set(t0.Add(48 * time.Hour))
	if st = g.verdict("quarantine/app:1"); st.Verdict.State != gate.StateFail || st.Verdict.PendingFlip != nil {
		t.Fatalf("48h in: %+v", st.Verdict)
	}
}

// TestGateWebhooks: verdict changes, refused promotions and refused writes
// to live/ reach a webhook receiver as signed CloudEvents.
func TestGateWebhooks(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	secret := []byte("hook-secret")
	var mu sync.Mutex
	got := map[string][]string{} // type -> subjects
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := events.Verify(secret, r.Header.Get(events.HeaderTimestamp), r.Header.Get(events.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("bad signature: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var e struct{ Type, Subject string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("event body %s: %v", body, err)
		}
		mu.Lock()
		got[e.Type] = append(got[e.Type], e.Subject)
		mu.Unlock()
	}))
	defer recv.Close()
	g := startGateServer(t, strictPolicy, withConfig(func(c *config.Config) {
		c.Events.Webhooks = []config.Webhook{{Name: "test", URL: recv.URL, Secret: string(secret)}}
	}))
	digest := g.push(ti, "quarantine/hooked:1")
	if st := g.waitScanned("quarantine/hooked:1"); st.Verdict.State != gate.StateFail {
		t.Fatalf("verdict %s", st.Verdict.State)
	}
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/hooked:1"}, nil); code != http.StatusForbidden {
		t.Fatalf("promote of a failing image: %d", code)
	}
	req, _ := http.NewRequest("DELETE", g.url+"/v2/live/hooked/manifests/1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	want := map[string]string{
		events.TypeVerdict:       "quarantine/hooked@" + digest,
		events.TypeBypassRefused: "live/hooked",
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		missing := []string{}
		for typ, subj := range want {
			found := false
			for _, s := range got[typ] {
				found = found || strings.HasPrefix(s, subj)
			}
			if !found {
				missing = append(missing, typ+" "+subj)
			}
		}
		refusals := len(got[events.TypeBypassRefused])
		mu.Unlock()
		if len(missing) == 0 && refusals >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events missing after 30s: %v (refusals %d)", missing, refusals)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "drydock_gate_live_writes_refused_total 1\n") {
		t.Error("/metrics does not count the refused write to live/")
	}
}

// TestGateScansWhenDatabaseArrives: a server started without a
// vulnerability database fails the scan (fail closed, with the reason);
// when the database appears, the sweeper rescans and the real verdict
// replaces the failure.
func TestGateScansWhenDatabaseArrives(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	g := startGateServer(t, strictPolicy, withoutDB, withConfig(func(c *config.Config) { c.Gate.SweepInterval = config.Duration(200 * time.Millisecond) }))
	g.push(ti, "quarantine/early:1")
	st := g.waitScanned("quarantine/early:1")
	if st.Verdict.State != gate.StateFail || !strings.Contains(st.Scan.Error, "no vulnerability database") || !hasRule(st.Verdict, gate.RuleScan) {
		t.Fatalf("without a database: %+v", st)
	}
	realdb.Copy(t, vulndb.DefaultPath(g.data))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st = g.verdict("quarantine/early:1")
		if st.Scan.Error == "" && !st.Scan.ScannedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rescan 2 minutes after the database arrived: %+v", st.Scan)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Verdict.State != gate.StateFail || len(gatetest.FailingCVEs(st.Verdict)) == 0 {
		t.Fatalf("after the rescan: %+v", st.Verdict)
	}
}

func hasRule(v gate.Verdict, rule string) bool {
	for _, r := range v.Reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

// TestGateScansAnIndex: a two-platform index is scanned platform by
// platform (the arm64 image on this amd64 host too), its verdict is the
// worst of its platforms, and its promotion copies the index and both
// images into live/ under the same digests.
func TestGateScansAnIndex(t *testing.T) {
	idx := testimage.RequireIndex(t, testimage.MultiArchDistroless, testimage.MultiArchDistrolessSpecs)
	g := startGateServer(t, "version: v1\nmaxSeverity: CRITICAL\nblockEndOfLife: true\n")
	ii, err := idx.Open()
	if err != nil {
		t.Fatal(err)
	}
	r := mustRef(t, g.host+"/quarantine/distroless:12")
	if err := remote.WriteIndex(r, ii, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	st := g.waitScanned("quarantine/distroless:12")
	if st.Digest != idx.Digest.String() || len(st.Scan.Platforms) != 2 {
		t.Fatalf("index scan: digest %s, platforms %+v", st.Digest, st.Scan.Platforms)
	}
	plats := map[string]string{}
	for _, p := range st.Scan.Platforms {
		plats[p.Platform] = p.Digest
		if p.Status != "ok" || !strings.HasPrefix(p.OS, "debian 12") {
			t.Errorf("platform %s: %+v", p.Platform, p)
		}
	}
	for _, im := range idx.Images {
		if plats[im.Platform.String()] != im.Digest.String() {
			t.Errorf("platform %s scanned as %q, want %s", im.Platform.String(), plats[im.Platform.String()], im.Digest)
		}
	}
	if st.Verdict.State != gate.StatePass {
		t.Fatalf("index verdict under maxSeverity CRITICAL: %+v", st.Verdict)
	}
	var p gatekeeper.Promotion
	if code := g.api("POST", "/api/v1/promote", map[string]string{"source": "quarantine/distroless:12"}, &p); code != http.StatusOK {
		t.Fatalf("promote: %d", code)
	}
	if p.Copy.Manifests < 3 {
		t.Errorf("promotion copied %d manifests, want the index and its 2 images", p.Copy.Manifests)
	}
	for _, im := range idx.Images {
		if _, err := remote.Get(mustRef(t, g.host+"/live/distroless@"+im.Digest.String())); err != nil {
			t.Errorf("live/ lacks the %s image: %v", im.Platform.String(), err)
		}
	}

	// A stricter policy (its LOW findings count): the promoted index's
	// coming fail (grace window) names the platform of each finding.
	g.writePolicy("version: v1\nmaxSeverity: UNKNOWN\ngraceWindow: 72h\n")
	st = g.verdict("quarantine/distroless:12")
	flip := st.Verdict.PendingFlip
	if st.Verdict.State != gate.StatePass || flip == nil {
		t.Fatalf("strict policy on the promoted index: %+v", st.Verdict)
	}
	named := 0
	for _, rs := range flip.Reasons {
		if rs.Rule == gate.RuleMaxSeverity {
			named++
			if !strings.HasPrefix(rs.Message, "linux/") {
				t.Errorf("reason without its platform: %q", rs.Message)
			}
		}
	}
	if named != 2 {
		t.Errorf("%d finding reasons in the coming fail, want one per platform: %+v", named, flip.Reasons)
	}
}
