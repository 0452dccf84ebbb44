package gatekeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// fakeClock is the Keeper's clock, moved by the tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// recorder is a Publisher that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) Publish(e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// ofType returns the events of type typ, oldest first.
func (r *recorder) ofType(typ string) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Event
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// verdictEvents returns the states announced for digest d, oldest first.
func (r *recorder) verdictEvents(d string) []gate.State {
	var out []gate.State
	for _, e := range r.ofType(events.TypeVerdict) {
		m, _ := e.Data.(map[string]any)
		if m["digest"] == d {
			s, _ := m["state"].(gate.State)
			out = append(out, s)
		}
	}
	return out
}

// fixture is a Keeper on real parts: an in-memory registry, SQLite store,
// job queue and audit log, and no vulnerability database.
type fixture struct {
	t      testing.TB
	k      *Keeper
	reg    *registry.Registry
	store  store.Store
	queue  *jobs.Queue
	audits *audit.Log
	events *recorder
	clock  *fakeClock
	policy *fileWriter // nil for the built-in policy
	vexDir string
	dbPath string // missing until installDB

	mu     sync.Mutex
	pushes []pushed // with fixtureOptions.listen
}

type fixtureOptions struct {
	policy string // the policy file's text; "" = the built-in policy
	driver storagedriver.StorageDriver
	queue  []jobs.Option
	// listen wires the keeper as the registry's manifest listener, as the
	// server does, and records every notification in fixture.pushes.
	listen bool
	// scanOpts are the keeper's Options.ScanOptions.
	scanOpts []scan.Option
	// key signs promotions (Options.Key).
	key *attest.Key
	// cache is the keeper's Options.InventoryCache.
	cache scan.InventoryCache
}

// pushed is one manifest notification of the registry.
type pushed struct {
	repo, tag, digest string
	gate              bool // IsGateWrite
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	drv := o.driver
	if drv == nil {
		drv = inmemory.New()
	}
	f := &fixture{t: t}
	var ropts []registry.Option
	if o.listen {
		ropts = append(ropts, registry.WithManifestListener(registry.ManifestListenerFunc(func(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
			f.mu.Lock()
			f.pushes = append(f.pushes, pushed{repo, tag, desc.Digest.String(), IsGateWrite(ctx)})
			f.mu.Unlock()
			return f.k.ManifestPushed(ctx, repo, tag, desc)
		})))
	}
	reg, err := registry.New(ctx, drv, ropts...)
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := database.NewOpener(database.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := jobs.Open(ctx, dbs, o.queue...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	al, closeAudit, err := audit.Open(ctx, dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAudit() })
	f.reg, f.store, f.queue, f.audits, f.events = reg, st, q, al, &recorder{}
	f.clock, f.vexDir, f.dbPath = &fakeClock{now: t0}, filepath.Join(dir, "vex"), filepath.Join(dir, "vulndb", "drydock-vuln.db")
	var ps *PolicySource
	if o.policy != "" {
		f.policy = &fileWriter{t: t, path: filepath.Join(dir, "policy.yaml")}
		f.policy.write(o.policy)
		if ps, err = NewPolicySource(f.policy.path); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(f.vexDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ex, err := NewExceptionSource(f.vexDir)
	if err != nil {
		t.Fatal(err)
	}
	f.k, err = New(Options{
		Registry: reg, Store: st, Queue: q, Audit: al, Events: f.events,
		Policy: ps, Exceptions: ex,
		DBPath:         f.dbPath,
		Now:            f.clock.Now,
		ScanOptions:    o.scanOpts,
		Key:            o.key,
		InventoryCache: o.cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// push stores a tiny image (a config and one layer, made distinct by seed)
// as repo:tag and returns its descriptor.
func (f *fixture) push(repo, tag, seed string) ocispec.Descriptor {
	f.t.Helper()
	ctx := f.t.Context()
	layer, err := f.reg.PutBlob(ctx, repo, []byte("layer of "+seed))
	if err != nil {
		f.t.Fatal(err)
	}
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	cfgJSON := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"seed":%q}},"rootfs":{"type":"layers","diff_ids":[%q]}}`,
		seed, layer.Digest)
	cfg, err := f.reg.PutBlob(ctx, repo, []byte(cfgJSON))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.MediaType = ocispec.MediaTypeImageConfig
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	return f.putManifest(repo, m, tag)
}

func (f *fixture) putManifest(repo string, m ocispec.Manifest, tags ...string) ocispec.Descriptor {
	f.t.Helper()
	body, err := json.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	desc, err := f.reg.PutManifest(f.t.Context(), repo, ocispec.MediaTypeImageManifest, body, tags...)
	if err != nil {
		f.t.Fatal(err)
	}
	return desc
}

// pushReferrer stores an artifact whose subject is subject in repo.
func (f *fixture) pushReferrer(repo string, subject ocispec.Descriptor, artifactType string) ocispec.Descriptor {
	f.t.Helper()
	ctx := f.t.Context()
	cfg, err := f.reg.PutBlob(ctx, repo, []byte("{}"))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.MediaType = ocispec.MediaTypeEmptyJSON
	layer, err := f.reg.PutBlob(ctx, repo, []byte(`{"sbom":"`+subject.Digest.String()+`"}`))
	if err != nil {
		f.t.Fatal(err)
	}
	layer.MediaType = "application/json"
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType,
		Config: cfg, Layers: []ocispec.Descriptor{layer}, Subject: &subj}
	m.SchemaVersion = 2
	return f.putManifest(repo, m)
}

// pushImageReferrer stores a runnable image (image config, gzip layer)
// whose subject is subject: what hole 3 smuggled into live/.
func (f *fixture) pushImageReferrer(repo string, subject ocispec.Descriptor, seed string) ocispec.Descriptor {
	f.t.Helper()
	ctx := f.t.Context()
	layer, err := f.reg.PutBlob(ctx, repo, []byte("layer of "+seed))
	if err != nil {
		f.t.Fatal(err)
	}
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	cfg, err := f.reg.PutBlob(ctx, repo, []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"seed":"`+seed+`"}}}`))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.MediaType = ocispec.MediaTypeImageConfig
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.innocent",
		Config: cfg, Layers: []ocispec.Descriptor{layer}, Subject: &subj}
	m.SchemaVersion = 2
	return f.putManifest(repo, m)
}

// putScan records a finished scan of d at the current time with findings.
func (f *fixture) putScan(repo, d string, findings ...scan.Finding) {
	f.t.Helper()
	now := f.clock.Now()
	rep := &scan.Report{Status: scan.StatusOK, ScannedAt: now, Findings: findings, DB: scan.DBInfo{BuiltAt: dbBuilt}}
	if err := f.k.store.PutScan(f.t.Context(), store.Scan{Digest: d, Repository: repo, ScannedAt: now,
		Reports: []store.PlatformReport{{Digest: d, Report: rep}}}); err != nil {
		f.t.Fatal(err)
	}
}

// dbBuilt is the database build the reports of putScan name.
var dbBuilt = t0.Add(-24 * time.Hour)

// releaseSource emits one release record: enough for a database whose
// build time the sweeper reads, and for scans of small Debian 12 images
// that find nothing (holes_test.go).
type releaseSource struct{ path string }

func (s releaseSource) Name() string          { return "test-releases" }
func (s releaseSource) DefaultURLs() []string { return []string{s.path} }
func (s releaseSource) Import(_ context.Context, _, _ string, sink vulndb.Sink) error {
	return sink.Release(vulndb.Release{Distro: "debian", Version: "12", Codename: "bookworm", Source: "test",
		Released: time.Date(2023, 6, 10, 0, 0, 0, 0, time.UTC)})
}

// installDB writes a vulnerability database built at built where the
// keeper looks for one, replacing any (by rename, as db update does).
func (f *fixture) installDB(built time.Time) {
	f.t.Helper()
	src := filepath.Join(f.t.TempDir(), "releases.txt")
	if err := os.WriteFile(src, []byte("releases"), 0o644); err != nil {
		f.t.Fatal(err)
	}
	tmp := filepath.Join(f.t.TempDir(), "drydock-vuln.db")
	if _, err := vulndb.Update(f.t.Context(), tmp, []vulndb.Source{releaseSource{path: src}},
		vulndb.WithClock(func() time.Time { return built })); err != nil {
		f.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(f.dbPath), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.dbPath); err != nil {
		f.t.Fatal(err)
	}
}

// auditEntries returns the audit entries with action (and digest, when
// not empty), oldest first.
func (f *fixture) auditEntries(action audit.Action, d string) []audit.Entry {
	f.t.Helper()
	var out []audit.Entry
	err := f.audits.Scan(f.t.Context(), 1, func(e *audit.Entry) error {
		if e.Action == action && (d == "" || e.Digest == d) {
			out = append(out, *e)
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// outcomes lists the outcomes of entries.
func outcomes(es []audit.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Outcome)
	}
	return out
}

func (f *fixture) verdict(ref string) *Status {
	f.t.Helper()
	st, err := f.k.Verdict(f.t.Context(), ref)
	if err != nil {
		f.t.Fatalf("Verdict(%s): %v", ref, err)
	}
	return st
}

func (f *fixture) image(d string) *store.Image {
	f.t.Helper()
	im, err := f.store.Image(f.t.Context(), d)
	if err != nil {
		f.t.Fatal(err)
	}
	return im
}

func hasRule(v gate.Verdict, rule string) bool {
	return slices.ContainsFunc(v.Reasons, func(r gate.Reason) bool { return r.Rule == rule })
}

// scanJobs returns the queued scan jobs and their decoded arguments.
func (f *fixture) scanJobs() ([]jobs.Job, []ScanArgs) {
	f.t.Helper()
	js, err := f.queue.Jobs(f.t.Context(), jobs.Filter{Kinds: []string{ScanArgs{}.Kind()}})
	if err != nil {
		f.t.Fatal(err)
	}
	args := make([]ScanArgs, len(js))
	for i, j := range js {
		if err := json.Unmarshal(j.Args, &args[i]); err != nil {
			f.t.Fatal(err)
		}
	}
	return js, args
}

// highFinding is a fixable HIGH finding: it fails maxSeverity MEDIUM and
// passes maxSeverity HIGH or CRITICAL.
var highFinding = scan.Finding{VulnerabilityID: "CVE-2024-1", PkgName: "libx", InstalledVersion: "1",
	FixedVersion: "2", Severity: vulndb.SeverityHigh, Status: vulndb.StatusFixed}

const (
	lenientPolicy = "version: v1\nmaxSeverity: CRITICAL\n"
	stricterGrace = "version: v1\nmaxSeverity: MEDIUM\ngraceWindow: 24h\n"
)

func TestCombine(t *testing.T) {
	now := t0.Add(time.Hour)
	at := t0
	v := func(s gate.State, reasons ...gate.Reason) gate.Verdict {
		return gate.Verdict{State: s, At: at, Reasons: reasons}
	}
	r := func(rule, msg string) gate.Reason { return gate.Reason{Rule: rule, Message: msg} }
	tests := []struct {
		name  string
		parts []gate.Verdict
		want  gate.Verdict
	}{
		{
			name:  "one part is returned as it is",
			parts: []gate.Verdict{{State: gate.StateExempt, At: at, Applied: []string{"b", "a"}, Reasons: []gate.Reason{r("z", "z"), r("a", "a")}}},
			want:  gate.Verdict{State: gate.StateExempt, At: at, Applied: []string{"b", "a"}, Reasons: []gate.Reason{r("z", "z"), r("a", "a")}},
		},
		{name: "pass and pass", parts: []gate.Verdict{v(gate.StatePass), v(gate.StatePass)}, want: gate.Verdict{State: gate.StatePass, At: now}},
		{name: "pass and exempt", parts: []gate.Verdict{v(gate.StatePass), v(gate.StateExempt)}, want: gate.Verdict{State: gate.StateExempt, At: now}},
		{name: "exempt and pass", parts: []gate.Verdict{v(gate.StateExempt), v(gate.StatePass)}, want: gate.Verdict{State: gate.StateExempt, At: now}},
		{name: "exempt and pending", parts: []gate.Verdict{v(gate.StateExempt), v(gate.StatePending)}, want: gate.Verdict{State: gate.StatePending, At: now}},
		{name: "pending and exempt", parts: []gate.Verdict{v(gate.StatePending), v(gate.StateExempt)}, want: gate.Verdict{State: gate.StatePending, At: now}},
		{name: "pending and fail", parts: []gate.Verdict{v(gate.StatePending), v(gate.StateFail)}, want: gate.Verdict{State: gate.StateFail, At: now}},
		{name: "fail first", parts: []gate.Verdict{v(gate.StateFail), v(gate.StatePass), v(gate.StatePending), v(gate.StateExempt)}, want: gate.Verdict{State: gate.StateFail, At: now}},
		{
			name: "reasons merged and sorted",
			parts: []gate.Verdict{
				v(gate.StateFail, r(gate.RuleMaxSeverity, "linux/arm64: 2 finding(s)"), r(gate.RuleException, "linux/arm64: 1 covered")),
				v(gate.StateExempt, r(gate.RuleException, "linux/amd64: 1 covered")),
				v(gate.StateFail, r(gate.RuleMaxSeverity, "linux/386: 1 finding(s)")),
			},
			want: gate.Verdict{State: gate.StateFail, At: now, Reasons: []gate.Reason{
				r(gate.RuleException, "linux/amd64: 1 covered"),
				r(gate.RuleException, "linux/arm64: 1 covered"),
				r(gate.RuleMaxSeverity, "linux/386: 1 finding(s)"),
				r(gate.RuleMaxSeverity, "linux/arm64: 2 finding(s)"),
			}},
		},
		{
			name: "exceptions unioned without duplicates",
			parts: []gate.Verdict{
				{State: gate.StateExempt, At: at, Applied: []string{"vex/b#0", "vex/a#1"}, ExpiredExceptions: []string{"vex/old#0"}},
				{State: gate.StateExempt, At: at, Applied: []string{"vex/a#1", "vex/a#0"}, ExpiredExceptions: []string{"vex/old#0", "vex/older#3"}},
				{State: gate.StatePass, At: at},
			},
			want: gate.Verdict{State: gate.StateExempt, At: now, Applied: []string{"vex/a#0", "vex/a#1", "vex/b#0"},
				ExpiredExceptions: []string{"vex/old#0", "vex/older#3"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := combine(tt.parts, now)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("combine =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestNewRequiresParts(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	full := Options{Registry: f.reg, Store: f.store, Queue: f.queue, Audit: f.audits, DBPath: "db"}
	tests := []struct {
		name    string
		edit    func(*Options)
		wantErr string
	}{
		{"no registry", func(o *Options) { o.Registry = nil }, "no registry"},
		{"no store", func(o *Options) { o.Store = nil }, "no verdict store"},
		{"no queue", func(o *Options) { o.Queue = nil }, "no job queue"},
		{"no audit log", func(o *Options) { o.Audit = nil }, "no audit log"},
		{"no database path", func(o *Options) { o.DBPath = "" }, "no vulnerability database path"},
		// The fixture's Keeper already handles gate.scan on this queue.
		{"second keeper on the queue", func(*Options) {}, "already registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := full
			tt.edit(&o)
			k, err := New(o)
			if err == nil || k != nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, %v; want an error mentioning %q", k, err, tt.wantErr)
			}
		})
	}
}

func TestManifestPushedEnqueues(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	other := func(n int) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(fmt.Sprintf("sha256:%064x", n)), Size: 10}
	}
	ab := f.push("quarantine/a/b", "x", "ab")
	sbom := f.pushReferrer("quarantine/app", img, "application/spdx+json")
	// An image that names a subject is still an image (hole 3).
	imgRef := f.pushImageReferrer("quarantine/app", img, "carried")
	gone := f.push("quarantine/gone", "1", "gone")
	if err := f.store.PutScan(ctx, store.Scan{Digest: gone.Digest.String(), Repository: "quarantine/gone", Error: "over the package limit", Permanent: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		ctx      context.Context
		repo     string
		tag      string
		desc     ocispec.Descriptor
		wantJobs int // scan jobs queued after the call
	}{
		{"arrival in quarantine", ctx, "quarantine/app", "1", img, 1},
		{"the same digest again", ctx, "quarantine/app", "1", img, 1},
		{"the same digest under another tag", ctx, "quarantine/app", "other", img, 1},
		{"live", ctx, "live/app", "1", other(1), 1},
		{"a namespace that only starts like quarantine", ctx, "quarantined/app", "1", other(2), 1},
		{"elsewhere", ctx, "library/app", "1", other(3), 1},
		{"a non-runnable artifact", ctx, "quarantine/app", "", sbom, 1},
		{"the gate's own write", WithGateWrite(ctx), "quarantine/a/b", "", ab, 1},
		{"a digest whose scan failed for good", ctx, "quarantine/gone", "1", gone, 1},
		{"another digest in quarantine, by digest", ctx, "quarantine/a/b", "", ab, 2},
		{"an image carried as a referrer", ctx, "quarantine/app", "", imgRef, 3},
	}
	for _, tt := range tests {
		if err := f.k.ManifestPushed(tt.ctx, tt.repo, tt.tag, tt.desc); err != nil {
			t.Fatalf("%s: ManifestPushed: %v", tt.name, err)
		}
		if js, _ := f.scanJobs(); len(js) != tt.wantJobs {
			t.Fatalf("%s: %d scan jobs, want %d: %+v", tt.name, len(js), tt.wantJobs, js)
		}
	}
	js, args := f.scanJobs()
	want := ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "arrival"}
	if args[0] != want || js[0].UniqueKey != d || js[0].State != jobs.StateAvailable {
		t.Errorf("first job %+v args %+v; want args %+v, unique key %s, available", js[0], args[0], want, d)
	}
	if want := (ScanArgs{Repository: "quarantine/a/b", Digest: ab.Digest.String(), Reason: "arrival"}); args[1] != want {
		t.Errorf("second job args %+v, want %+v", args[1], want)
	}
	// Each digest queued is pending from its arrival (the gauge counts it);
	// the artifact has no verdict at all.
	counts, err := f.store.CountByState(ctx)
	if err != nil || counts[string(gate.StatePending)] != 3 {
		t.Errorf("verdicts by state after the arrivals: %v, %v; want 3 pending", counts, err)
	}
	if _, err := f.store.Image(ctx, sbom.Digest.String()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the SBOM has a verdict: %v", err)
	}
	// Enqueue of a digest with an unfinished job returns that job.
	id, err := f.k.Enqueue(ctx, "quarantine/app", "", d, "rescan")
	if err != nil || id != js[0].ID {
		t.Errorf("Enqueue of a queued digest = %d, %v; want job %d", id, err, js[0].ID)
	}
}

func TestVerdictPendingRefusesPromotion(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()

	st := f.verdict("quarantine/app:1")
	if st.Verdict.State != gate.StatePending || st.Verdict.Promotable() || !hasRule(st.Verdict, gate.RuleScan) {
		t.Errorf("verdict before a scan: %+v, want pending on rule scan", st.Verdict)
	}
	if st.Repository != "quarantine/app" || st.Reference != "1" || st.Digest != d || st.Promoted ||
		st.Policy != "" || st.PolicyHash != sha256Hex(DefaultPolicy) || !st.Scan.ScannedAt.IsZero() || st.Scan.Error != "" {
		t.Errorf("status %+v", st)
	}
	if got := f.events.verdictEvents(d); !slices.Equal(got, []gate.State{gate.StatePending}) {
		t.Errorf("verdict events %v, want one pending", got)
	}

	_, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "alice"})
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("Promote of a pending digest: %v, want a *RefusedError", err)
	}
	if refused.Digest != d || refused.Source != "quarantine/app:1" || refused.Verdict.State != gate.StatePending ||
		!strings.Contains(err.Error(), "verdict is pending") || !strings.Contains(err.Error(), "scan not done yet") {
		t.Errorf("refusal %+v: %v", refused, err)
	}
	es := f.auditEntries(audit.ActionPromotion, d)
	if len(es) != 1 || es[0].Outcome != audit.OutcomeRefused || es[0].Actor != "alice" ||
		es[0].Repository != "live/app" || es[0].Reference != "1" {
		t.Errorf("promotion audit entries %+v, want one refused by alice for live/app:1", es)
	}
	ev := f.events.ofType(events.TypeBypassRefused)
	if len(ev) != 1 || ev[0].Subject != "live/app@"+d || ev[0].Time.IsZero() {
		t.Errorf("refusal events %+v", ev)
	}
	if len(f.events.ofType(events.TypePromotion)) != 0 {
		t.Error("a promotion event for a refused promotion")
	}
	for _, ref := range []string{"1", d} {
		if _, _, err := f.reg.Manifest(ctx, "live/app", ref); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("live/app %s after a refusal: %v, want not found", ref, err)
		}
	}
	if f.image(d).Promoted {
		t.Error("a refused digest is marked promoted")
	}

	// Requests that never reach the verdict.
	tests := []struct {
		name    string
		req     PromoteRequest
		wantErr error
	}{
		{"unknown tag", PromoteRequest{Source: "quarantine/app:2"}, ErrUnknownImage},
		{"unknown repository", PromoteRequest{Source: "quarantine/nope:1"}, ErrUnknownImage},
		{"source in live", PromoteRequest{Source: "live/app:1"}, ErrInvalidRequest},
		{"target with digest", PromoteRequest{Source: "quarantine/app:1", Target: "live/app@" + d}, ErrInvalidRequest},
	}
	for _, tt := range tests {
		if p, err := f.k.Promote(ctx, tt.req); !errors.Is(err, tt.wantErr) || p != nil {
			t.Errorf("%s: Promote = %v, %v; want %v", tt.name, p, err, tt.wantErr)
		}
	}
	if n := len(f.auditEntries(audit.ActionPromotion, "")); n != 1 {
		t.Errorf("%d promotion audit entries, want only the refusal", n)
	}
	for _, tt := range []struct {
		ref     string
		wantErr error
	}{
		{"quarantine/app:2", ErrUnknownImage},
		{"app:1", ErrInvalidRequest},
	} {
		if st, err := f.k.Verdict(ctx, tt.ref); !errors.Is(err, tt.wantErr) || st != nil {
			t.Errorf("Verdict(%s) = %v, %v; want %v", tt.ref, st, err, tt.wantErr)
		}
	}
}

func TestScanWithoutDatabase(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	ref := f.pushReferrer("quarantine/app", img, "application/spdx+json")

	// Nothing to scan: no error, nothing stored.
	for _, a := range []ScanArgs{
		{Repository: "quarantine/app", Digest: "sha256:" + strings.Repeat("0", 64), Reason: "arrival"},
		{Repository: "quarantine/app", Digest: ref.Digest.String(), Reason: "arrival"},
	} {
		if err := f.k.runScan(ctx, a); err != nil {
			t.Errorf("runScan(%s): %v, want nil (nothing to scan)", a.Digest, err)
		}
		if _, err := f.store.Scan(ctx, a.Digest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("scan of %s stored: %v", a.Digest, err)
		}
	}

	err := f.k.runScan(ctx, ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "arrival"})
	if err == nil {
		t.Fatal("runScan without a database succeeded")
	}
	if !errors.Is(err, jobs.Permanent(errors.New("any"))) {
		t.Errorf("runScan error %v is not permanent: the job would retry", err)
	}
	if !errors.Is(err, errNoDB) {
		t.Errorf("runScan error %v does not wrap errNoDB", err)
	}
	sc, err := f.store.Scan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sc.Error, "no vulnerability database") || len(sc.Reports) != 0 || sc.Repository != "quarantine/app" {
		t.Errorf("stored scan %+v", sc)
	}
	st := f.verdict("quarantine/app:1")
	if st.Verdict.State != gate.StateFail || !hasRule(st.Verdict, gate.RuleScan) ||
		!strings.Contains(st.Verdict.Reasons[0].Message, "no vulnerability database") {
		t.Errorf("verdict after a failed scan: %+v, want fail on rule scan", st.Verdict)
	}
	if !strings.Contains(st.Scan.Error, "no vulnerability database") {
		t.Errorf("status scan summary %+v", st.Scan)
	}
	es := f.auditEntries(audit.ActionScan, d)
	if len(es) != 1 || es[0].Outcome != audit.OutcomeError || es[0].Actor != ActorGate || es[0].Reference != "1" ||
		!strings.Contains(string(es[0].Detail), "no vulnerability database") {
		t.Errorf("scan audit entries %+v, want one error", es)
	}
	if got := f.events.verdictEvents(d); !slices.Equal(got, []gate.State{gate.StateFail}) {
		t.Errorf("verdict events %v, want one fail", got)
	}
}
