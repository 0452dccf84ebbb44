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

	"github.com/drydock-project/drydock/internal/audit"
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
	t      *testing.T
	k      *Keeper
	reg    *registry.Registry
	store  *store.SQLite
	queue  *jobs.Queue
	audits *audit.Log
	events *recorder
	clock  *fakeClock
	policy *fileWriter // nil for the built-in policy
	vexDir string
}

type fixtureOptions struct {
	policy string // the policy file's text; "" = the built-in policy
	driver storagedriver.StorageDriver
	queue  []jobs.Option
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	drv := o.driver
	if drv == nil {
		drv = inmemory.New()
	}
	reg, err := registry.New(ctx, drv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "gate", "gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := jobs.Open(ctx, filepath.Join(dir, "jobs.db"), o.queue...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	al, closeAudit, err := audit.OpenFile(filepath.Join(dir, "audit", "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAudit() })
	f := &fixture{t: t, reg: reg, store: st, queue: q, audits: al, events: &recorder{},
		clock: &fakeClock{now: t0}, vexDir: filepath.Join(dir, "vex")}
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
		DBPath: filepath.Join(dir, "vulndb", "missing.db"),
		Now:    f.clock.Now,
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

// putScan records a finished scan of d at the current time with findings.
func (f *fixture) putScan(repo, d string, findings ...scan.Finding) {
	f.t.Helper()
	now := f.clock.Now()
	rep := &scan.Report{Status: scan.StatusOK, ScannedAt: now, Findings: findings}
	if err := f.k.store.PutScan(f.t.Context(), store.Scan{Digest: d, Repository: repo, ScannedAt: now,
		Reports: []store.PlatformReport{{Digest: d, Report: rep}}}); err != nil {
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

func TestIsArtifact(t *testing.T) {
	d := "sha256:" + strings.Repeat("1", 64)
	desc := func(mt string) string { return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":2}`, mt, d) }
	manifest := func(cfgType, extra string) string {
		return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(cfgType) +
			`,"layers":[` + desc(ocispec.MediaTypeImageLayerGzip) + `]` + extra + `}`
	}
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"OCI image", manifest(ocispec.MediaTypeImageConfig, ""), false},
		{"Docker image", `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":` +
			desc("application/vnd.docker.container.image.v1+json") + `,"layers":[]}`, false},
		{"OCI index", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
			desc(ocispec.MediaTypeImageManifest) + `]}`, false},
		{"Docker manifest list", `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`, false},
		{"image with subject", manifest(ocispec.MediaTypeImageConfig, `,"subject":`+desc(ocispec.MediaTypeImageManifest)), true},
		{"image config with artifactType", manifest(ocispec.MediaTypeImageConfig, `,"artifactType":"application/spdx+json"`), true},
		{"empty config with artifactType", manifest(ocispec.MediaTypeEmptyJSON, `,"artifactType":"application/vnd.drydock.scan.report.v1+json"`), true},
		{"empty config", manifest(ocispec.MediaTypeEmptyJSON, ""), true},
		{"Helm chart", manifest("application/vnd.cncf.helm.config.v1+json", ""), true},
		{"index with subject", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"subject":` +
			desc(ocispec.MediaTypeImageManifest) + `}`, true},
		{"index with artifactType", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"artifactType":"application/x"}`, true},
		// Not JSON: treated as an image, so the scan fails and the gate stays closed.
		{"not JSON", `{`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isArtifact([]byte(tt.body)); got != tt.want {
				t.Errorf("isArtifact(%s) = %v, want %v", tt.body, got, tt.want)
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
	tests := []struct {
		name     string
		repo     string
		tag      string
		desc     ocispec.Descriptor
		wantJobs int // scan jobs queued after the call
	}{
		{"arrival in quarantine", "quarantine/app", "1", img, 1},
		{"the same digest again", "quarantine/app", "1", img, 1},
		{"the same digest under another tag", "quarantine/app", "other", img, 1},
		{"live", "live/app", "1", other(1), 1},
		{"a namespace that only starts like quarantine", "quarantined/app", "1", other(2), 1},
		{"elsewhere", "library/app", "1", other(3), 1},
		{"another digest in quarantine, by digest", "quarantine/a/b", "", other(4), 2},
	}
	for _, tt := range tests {
		if err := f.k.ManifestPushed(ctx, tt.repo, tt.tag, tt.desc); err != nil {
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
	if want := (ScanArgs{Repository: "quarantine/a/b", Digest: other(4).Digest.String(), Reason: "arrival"}); args[1] != want {
		t.Errorf("second job args %+v, want %+v", args[1], want)
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

func TestPromotePass(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	sbom := f.pushReferrer("quarantine/app", img, "application/spdx+json")
	f.putScan("quarantine/app", d)

	st := f.verdict("quarantine/app:1")
	if st.Verdict.State != gate.StatePass || len(st.Verdict.Reasons) != 0 {
		t.Fatalf("verdict of a clean scan: %+v, want pass", st.Verdict)
	}
	if len(st.Scan.Platforms) != 1 || st.Scan.Platforms[0].Status != scan.StatusOK || !st.Scan.ScannedAt.Equal(t0) {
		t.Errorf("scan summary %+v", st.Scan)
	}

	f.clock.Advance(time.Minute)
	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != "quarantine/app:1" || p.Target != "live/app:1" || p.Digest != d || p.Verdict.State != gate.StatePass || p.Copy.Digest != img.Digest {
		t.Errorf("promotion %+v", p)
	}
	if len(p.Copy.Referrers) != 1 || p.Copy.Referrers[0].Digest != sbom.Digest || p.Copy.Referrers[0].ArtifactType != "application/spdx+json" {
		t.Errorf("copied referrers %+v, want the SBOM %s", p.Copy.Referrers, sbom.Digest)
	}
	_, srcBody, err := f.reg.Manifest(ctx, "quarantine/app", "1")
	if err != nil {
		t.Fatal(err)
	}
	desc, body, err := f.reg.Manifest(ctx, "live/app", "1")
	if err != nil || desc.Digest != img.Digest || string(body) != string(srcBody) {
		t.Errorf("live/app:1 = %v, %v; want %s with the same bytes", desc.Digest, err, d)
	}
	refs, err := f.reg.Referrers(ctx, "live/app", img.Digest, "")
	if err != nil || len(refs) != 1 || refs[0].Digest != sbom.Digest {
		t.Errorf("referrers in live/app: %+v, %v; want the SBOM", refs, err)
	}
	im := f.image(d)
	if !im.Promoted || im.Verdict.State != gate.StatePass || !im.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("stored image %+v, want promoted at %s", im, t0.Add(time.Minute))
	}
	es := f.auditEntries(audit.ActionPromotion, d)
	if len(es) != 1 || es[0].Outcome != audit.OutcomeOK || es[0].Actor != "bob" || es[0].Repository != "live/app" || es[0].Reference != "1" {
		t.Errorf("promotion audit entries %+v, want one ok", es)
	}
	ev := f.events.ofType(events.TypePromotion)
	if len(ev) != 1 || ev[0].Subject != "live/app@"+d || !ev[0].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("promotion events %+v", ev)
	}
	// Asking through live/ decides the same digest's verdict, for its
	// quarantine/ repository: nothing changes, nothing is announced.
	before := len(f.auditEntries(audit.ActionVerdict, d))
	if st := f.verdict("live/app:1"); st.Verdict.State != gate.StatePass || f.image(d).Repository != "quarantine/app" {
		t.Errorf("verdict through live/: %+v", st.Verdict)
	}
	if after := len(f.auditEntries(audit.ActionVerdict, d)); after != before {
		t.Errorf("a verdict read through live/ added %d verdict audit entries", after-before)
	}
	if st := f.verdict("quarantine/app:1"); !st.Promoted {
		t.Error("status does not show the promotion")
	}

	// More targets for the same passing digest.
	tests := []struct {
		req      PromoteRequest
		repo     string
		tag      string // "" = no tag in the target
		wantName string
	}{
		{PromoteRequest{Source: "quarantine/app@" + d, Target: "live/pinned"}, "live/pinned", "", "live/pinned"},
		{PromoteRequest{Source: "quarantine/app@" + d, Target: "live/team/app:stable"}, "live/team/app", "stable", "live/team/app:stable"},
		{PromoteRequest{Source: "quarantine/app:1", Target: "live/web"}, "live/web", "1", "live/web:1"},
	}
	for _, tt := range tests {
		p, err := f.k.Promote(ctx, tt.req)
		if err != nil {
			t.Errorf("Promote(%+v): %v", tt.req, err)
			continue
		}
		if p.Target != tt.wantName || p.Digest != d {
			t.Errorf("Promote(%+v) target %s digest %s, want %s", tt.req, p.Target, p.Digest, tt.wantName)
		}
		if _, _, err := f.reg.Manifest(ctx, tt.repo, d); err != nil {
			t.Errorf("%s@%s: %v", tt.repo, d, err)
		}
		for _, tag := range []string{"1", "stable"} {
			_, _, err := f.reg.Manifest(ctx, tt.repo, tag)
			if found := err == nil; found != (tag == tt.tag) {
				t.Errorf("%s:%s found %v (err %v), want %v", tt.repo, tag, found, err, tag == tt.tag)
			}
		}
		if refs, err := f.reg.Referrers(ctx, tt.repo, img.Digest, ""); err != nil || len(refs) != 1 {
			t.Errorf("referrers in %s: %+v, %v", tt.repo, refs, err)
		}
	}
	if n := len(f.events.ofType(events.TypePromotion)); n != 1+len(tests) {
		t.Errorf("%d promotion events, want %d", n, 1+len(tests))
	}
}

func TestGraceWindowThroughReevaluate(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.putScan("quarantine/app", d, highFinding)
	oldHash := sha256Hex(lenientPolicy)

	if st := f.verdict("quarantine/app:1"); st.Verdict.State != gate.StatePass || st.PolicyHash != oldHash || st.Policy != f.policy.path {
		t.Fatalf("HIGH finding under maxSeverity CRITICAL: %+v", st)
	}
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	newText := f.policy.write(stricterGrace)
	f.clock.Advance(time.Hour)
	changedAt := f.clock.Now()

	v, err := f.k.Reevaluate(ctx, "quarantine/app", d)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != gate.StatePass || v.PendingFlip == nil || v.PendingFlip.To != gate.StateFail ||
		!v.PendingFlip.FirstSeen.Equal(changedAt) || !v.PendingFlip.EffectiveAt.Equal(changedAt.Add(24*time.Hour)) ||
		!hasRule(v, gate.RuleGraceWindow) {
		t.Fatalf("inside the grace window: %+v, want pass with a pending flip at %s", v, changedAt.Add(24*time.Hour))
	}

	es := f.auditEntries(audit.ActionPolicyChange, "")
	if len(es) != 2 {
		t.Fatalf("policy_change entries %+v, want the first policy and the change", es)
	}
	var detail struct{ Path, Sha256, Previous string }
	if err := json.Unmarshal(es[1].Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if es[1].Outcome != audit.OutcomeOK || es[1].Actor != ActorGate || detail.Path != f.policy.path ||
		detail.Sha256 != sha256Hex(newText) || detail.Previous != oldHash {
		t.Errorf("policy change entry %+v detail %+v; want %s -> %s", es[1], detail, oldHash, sha256Hex(newText))
	}

	steps := []struct {
		advance  time.Duration // from changedAt
		want     gate.State
		wantFlip bool
	}{
		{12 * time.Hour, gate.StatePass, true},
		{24*time.Hour - time.Second, gate.StatePass, true},
		{24 * time.Hour, gate.StateFail, false},
		{48 * time.Hour, gate.StateFail, false},
	}
	for _, s := range steps {
		f.clock.Set(changedAt.Add(s.advance))
		v, err := f.k.Reevaluate(ctx, "quarantine/app", d)
		if err != nil {
			t.Fatal(err)
		}
		if v.State != s.want || (v.PendingFlip != nil) != s.wantFlip {
			t.Errorf("+%s: %s, pending flip %v; want %s, %v", s.advance, v.State, v.PendingFlip != nil, s.want, s.wantFlip)
		}
	}
	im := f.image(d)
	if im.Verdict.State != gate.StateFail || !im.Promoted || !hasRule(im.Verdict, gate.RuleMaxSeverity) ||
		!slices.Contains(im.Verdict.Reasons[0].Findings, "CVE-2024-1 libx@1") {
		t.Errorf("stored verdict after the window %+v", im)
	}
	if got := f.events.verdictEvents(d); !slices.Equal(got, []gate.State{gate.StatePass, gate.StatePass, gate.StateFail}) {
		t.Errorf("verdict events %v, want pass, pass (flip pending), fail", got)
	}
	if n := len(f.auditEntries(audit.ActionPolicyChange, "")); n != 2 {
		t.Errorf("%d policy_change entries for an unchanged policy, want 2", n)
	}
	_, err = f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Target: "live/app:again"})
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "CVE-2024-1 libx@1") {
		t.Errorf("promotion after the flip: %v, want a refusal naming the finding", err)
	}
}

func TestBrokenPolicyFailsClosed(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.putScan("quarantine/app", d)
	steps := []struct {
		name        string
		policy      string // "" = delete the file
		want        gate.State
		wantOutcome string // of the policy_change entry this step adds
	}{
		{"valid", lenientPolicy, gate.StatePass, audit.OutcomeOK},
		{"invalid", "version: v1\nmaxSeverity: SEVERE\n", gate.StateFail, audit.OutcomeError},
		{"fixed", "version: v1\nmaxSeverity: HIGH\n", gate.StatePass, audit.OutcomeOK},
		{"deleted", "", gate.StateFail, audit.OutcomeError},
		{"restored", lenientPolicy, gate.StatePass, audit.OutcomeOK},
	}
	for i, s := range steps {
		switch {
		case i == 0:
		case s.policy == "":
			if err := os.Remove(f.policy.path); err != nil {
				t.Fatal(err)
			}
		default:
			f.policy.write(s.policy)
		}
		st := f.verdict("quarantine/app:1")
		if st.Verdict.State != s.want {
			t.Errorf("%s: %+v, want %s", s.name, st.Verdict, s.want)
		}
		if s.want == gate.StateFail && !hasRule(st.Verdict, gate.RulePolicy) {
			t.Errorf("%s: fail without the policy rule: %+v", s.name, st.Verdict)
		}
		es := f.auditEntries(audit.ActionPolicyChange, "")
		if got := outcomes(es); len(got) != i+1 || got[i] != s.wantOutcome {
			t.Errorf("%s: policy_change outcomes %v, want %d ending in %s", s.name, got, i+1, s.wantOutcome)
		}
	}
}

func TestSweepRedecides(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	ctx := t.Context()
	high := f.push("quarantine/app", "1", "high").Digest.String()
	critical := f.push("quarantine/web", "1", "critical").Digest.String()
	clean := f.push("quarantine/clean", "1", "clean").Digest.String()
	failed := f.push("quarantine/broken", "1", "broken").Digest.String()
	pending := f.push("quarantine/new", "1", "new").Digest.String()
	f.putScan("quarantine/app", high, highFinding)
	crit := highFinding
	crit.VulnerabilityID, crit.Severity = "CVE-2024-2", vulndb.SeverityCritical
	f.putScan("quarantine/web", critical, crit)
	f.putScan("quarantine/clean", clean)
	if err := f.k.runScan(ctx, ScanArgs{Repository: "quarantine/broken", Tag: "1", Digest: failed}); err == nil {
		t.Fatal("runScan without a database succeeded")
	}
	initial := map[string]gate.State{high: gate.StatePass, critical: gate.StatePass, clean: gate.StatePass,
		failed: gate.StateFail, pending: gate.StatePending}
	for _, ref := range []string{"quarantine/app:1", "quarantine/web:1", "quarantine/clean:1", "quarantine/broken:1", "quarantine/new:1"} {
		st := f.verdict(ref)
		if st.Verdict.State != initial[st.Digest] {
			t.Fatalf("%s: %s, want %s", ref, st.Verdict.State, initial[st.Digest])
		}
	}
	if js, _ := f.scanJobs(); len(js) != 0 {
		t.Fatalf("scan jobs before the sweep: %+v", js)
	}
	// web is promoted (in use): its flip waits out the grace window; app
	// is not, and fails at once.
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/web:1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}

	f.policy.write("version: v1\nmaxSeverity: MEDIUM\ngraceWindow: 1h\n")
	f.clock.Advance(time.Minute)
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	// The first sweep retries the failed scan (the database may be there now).
	js, args := f.scanJobs()
	if len(js) != 1 || args[0].Digest != failed || args[0].Reason != "retry" || args[0].Repository != "quarantine/broken" {
		t.Errorf("scan jobs after the first sweep: %+v, want a retry of %s", args, failed)
	}
	type want struct {
		state  gate.State
		flip   bool
		events []gate.State
	}
	check := func(when string, wants map[string]want) {
		t.Helper()
		for d, w := range wants {
			im := f.image(d)
			if im.Verdict.State != w.state || (im.Verdict.PendingFlip != nil) != w.flip {
				t.Errorf("%s: %s is %s (pending flip %v), want %s (%v)", when, im.Repository, im.Verdict.State, im.Verdict.PendingFlip != nil, w.state, w.flip)
			}
			if got := f.events.verdictEvents(d); !slices.Equal(got, w.events) {
				t.Errorf("%s: %s verdict events %v, want %v", when, im.Repository, got, w.events)
			}
		}
	}
	pass, fail := gate.StatePass, gate.StateFail
	check("after the policy change", map[string]want{
		high:     {fail, false, []gate.State{pass, fail}},
		critical: {pass, true, []gate.State{pass, pass}},
		clean:    {pass, false, []gate.State{pass}},
		failed:   {fail, false, []gate.State{fail}},
		pending:  {gate.StatePending, false, []gate.State{gate.StatePending}},
	})

	f.clock.Advance(time.Hour)
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the grace window", map[string]want{
		high:     {fail, false, []gate.State{pass, fail}},
		critical: {fail, false, []gate.State{pass, pass, fail}},
		clean:    {pass, false, []gate.State{pass}},
		failed:   {fail, false, []gate.State{fail}},
		pending:  {gate.StatePending, false, []gate.State{gate.StatePending}},
	})
	for _, d := range []string{high, critical} {
		es := f.auditEntries(audit.ActionVerdict, d)
		n := 3 // pass, pass with the coming flip, fail
		if d == high {
			n = 2 // pass, fail
		}
		if len(es) != n || es[n-1].Actor != ActorGate || !strings.Contains(string(es[n-1].Detail), `"previous":"pass"`) ||
			!strings.Contains(string(es[n-1].Detail), `"state":"fail"`) {
			t.Errorf("verdict audit entries of %s: %+v", d, es)
		}
	}
	if js, _ := f.scanJobs(); len(js) != 1 {
		t.Errorf("%d scan jobs after the second sweep, want only the retry", len(js))
	}
}

// gatedDriver blocks the first GetContent after arm until release is
// closed, so that a scan job stays running as long as the test wants.
type gatedDriver struct {
	storagedriver.StorageDriver
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (d *gatedDriver) arm() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = true
}

func (d *gatedDriver) GetContent(ctx context.Context, path string) ([]byte, error) {
	d.mu.Lock()
	armed := d.armed
	d.armed = false
	d.mu.Unlock()
	if armed {
		close(d.entered)
		select {
		case <-d.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return d.StorageDriver.GetContent(ctx, path)
}

func TestSweepStuckScan(t *testing.T) {
	drv := &gatedDriver{StorageDriver: inmemory.New(), entered: make(chan struct{}), release: make(chan struct{})}
	f := newFixture(t, fixtureOptions{driver: drv, queue: []jobs.Option{jobs.WithPollInterval(10 * time.Millisecond)}})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()

	drv.arm()
	id, err := f.k.Enqueue(ctx, "quarantine/app", "1", d, "arrival")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.queue.Start(ctx); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			close(drv.release)
		}
	}
	t.Cleanup(release)
	select {
	case <-drv.entered:
	case <-time.After(time.Minute): // a guard against a hang, not a time decision
		t.Fatal("the scan job did not start")
	}
	js, _ := f.scanJobs()
	if len(js) != 1 || js[0].ID != id || js[0].State != jobs.StateRunning || js[0].AttemptedAt.IsZero() {
		t.Fatalf("jobs while the scan hangs: %+v", js)
	}
	started := js[0].AttemptedAt

	steps := []struct {
		name       string
		at         time.Time
		wantEvents int
		wantFail   bool
	}{
		{"inside the time-out", started.Add(14 * time.Minute), 0, false},
		{"past the time-out", started.Add(16 * time.Minute), 1, true},
		{"reported once", started.Add(30 * time.Minute), 1, true},
	}
	for _, s := range steps {
		f.clock.Set(s.at)
		if err := f.k.Sweep(ctx); err != nil {
			t.Fatalf("%s: Sweep: %v", s.name, err)
		}
		ev := f.events.ofType(events.TypeScanStuck)
		if len(ev) != s.wantEvents {
			t.Fatalf("%s: %d stuck-scan events, want %d", s.name, len(ev), s.wantEvents)
		}
		sc, err := f.store.Scan(ctx, d)
		if !s.wantFail {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: scan stored (%+v, %v) for a running job", s.name, sc, err)
			}
			continue
		}
		if err != nil || !strings.Contains(sc.Error, "scan stuck") || !strings.Contains(sc.Error, fmt.Sprintf("job %d", id)) {
			t.Errorf("%s: stored scan %+v, %v; want a stuck error", s.name, sc, err)
		}
		m, _ := ev[0].Data.(map[string]any)
		if ev[0].Subject != "quarantine/app@"+d || m["job"] != id || m["running"] != "16m0s" {
			t.Errorf("%s: stuck event %+v", s.name, ev[0])
		}
		im := f.image(d)
		if im.Verdict.State != gate.StateFail || !hasRule(im.Verdict, gate.RuleScan) {
			t.Errorf("%s: verdict %+v, want fail on rule scan", s.name, im.Verdict)
		}
	}
	if es := f.auditEntries(audit.ActionScan, d); len(es) != 1 || es[0].Outcome != audit.OutcomeError {
		t.Errorf("scan audit entries %+v, want one error for the stuck scan", es)
	}

	// Let the job go on: without a database it ends for good.
	release()
	if err := f.queue.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	js, _ = f.scanJobs()
	if len(js) != 1 || js[0].State != jobs.StateCancelled || len(js[0].Errors) != 1 ||
		!strings.Contains(js[0].Errors[0].Error, "no vulnerability database") {
		t.Errorf("job after the scan: %+v, want cancelled (permanent error)", js)
	}
	if sc, err := f.store.Scan(ctx, d); err != nil || !strings.Contains(sc.Error, "no vulnerability database") {
		t.Errorf("stored scan after the job: %+v, %v", sc, err)
	}
}

func TestAutoPromote(t *testing.T) {
	const auto = "version: v1\nmaxSeverity: HIGH\nautoPromote: true\n"
	tests := []struct {
		name     string
		policy   string
		finding  *scan.Finding
		moveTag  bool   // the tag points at another digest by the time of the scan
		wantRef  string // what live/app must hold after; "" = nothing
		wantTag1 bool   // live/app:1 exists
	}{
		{name: "pass, tag still there", policy: auto, wantRef: "1", wantTag1: true},
		{name: "pass, tag moved", policy: auto, moveTag: true, wantRef: "digest"},
		{name: "fail", policy: auto, finding: &scan.Finding{VulnerabilityID: "CVE-2024-9", PkgName: "libz", InstalledVersion: "1",
			FixedVersion: "2", Severity: vulndb.SeverityCritical, Status: vulndb.StatusFixed}},
		{name: "manual promotion", policy: "version: v1\nmaxSeverity: HIGH\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{policy: tt.policy})
			ctx := t.Context()
			d := f.push("quarantine/app", "1", "app").Digest.String()
			if tt.moveTag {
				f.push("quarantine/app", "1", "newer")
			}
			if tt.finding != nil {
				f.putScan("quarantine/app", d, *tt.finding)
			} else {
				f.putScan("quarantine/app", d)
			}
			a := ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "arrival"}
			v, err := f.k.Reevaluate(ctx, a.Repository, d)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.k.autoPromote(ctx, a, v); err != nil {
				t.Fatalf("autoPromote: %v", err)
			}
			_, _, byDigest := f.reg.Manifest(ctx, "live/app", d)
			desc, _, byTag := f.reg.Manifest(ctx, "live/app", "1")
			if (byDigest == nil) != (tt.wantRef != "") {
				t.Errorf("live/app@%s: %v, want present %v", d, byDigest, tt.wantRef != "")
			}
			if (byTag == nil) != tt.wantTag1 || (byTag == nil && desc.Digest.String() != d) {
				t.Errorf("live/app:1 = %s, %v; want present %v", desc.Digest, byTag, tt.wantTag1)
			}
			es := f.auditEntries(audit.ActionPromotion, d)
			if tt.wantRef == "" {
				if len(es) != 0 || f.image(d).Promoted {
					t.Errorf("promotion audit entries %+v for a digest that must stay in quarantine/", es)
				}
				return
			}
			if len(es) != 1 || es[0].Actor != ActorGate+" (autoPromote)" || es[0].Outcome != audit.OutcomeOK || !f.image(d).Promoted {
				t.Errorf("promotion audit entries %+v, want one ok by the gate", es)
			}
		})
	}
}

func TestRecordImport(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: CRITICAL\nallowedSources: ['^docker\\.io/library/']\n"})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.push("live/app", "1", "live")
	f.putScan("quarantine/app", d)
	steps := []struct {
		name, ref, source string
		wantErr           error  // errors.Is target
		wantErrText       string // or a substring of the error
		wantState         gate.State
		wantSource        string
	}{
		{name: "empty source", ref: "quarantine/app:1", source: "  ", wantErrText: "import source"},
		{name: "two lines", ref: "quarantine/app:1", source: "docker.io/library/app:1\nx", wantErrText: "import source"},
		{name: "too long", ref: "quarantine/app:1", source: strings.Repeat("a", maxSourceLen+1), wantErrText: "import source"},
		{name: "unknown image", ref: "quarantine/app:2", source: "docker.io/library/app:2", wantErr: ErrUnknownImage},
		{name: "into live", ref: "live/app:1", source: "docker.io/library/app:1", wantErr: ErrInvalidRequest},
		{name: "allowed source", ref: "quarantine/app:1", source: " docker.io/library/app:1 ", wantState: gate.StatePass, wantSource: "docker.io/library/app:1"},
		{name: "disallowed source", ref: "quarantine/app@" + d, source: "evil.example/app:1", wantState: gate.StateFail, wantSource: "evil.example/app:1"},
	}
	imports := 0
	for _, s := range steps {
		st, err := f.k.RecordImport(ctx, "carol", s.ref, s.source)
		switch {
		case s.wantErr != nil || s.wantErrText != "":
			if err == nil || st != nil || (s.wantErr != nil && !errors.Is(err, s.wantErr)) || !strings.Contains(err.Error(), s.wantErrText) {
				t.Errorf("%s: RecordImport = %v, %v; want error %v %q", s.name, st, err, s.wantErr, s.wantErrText)
			}
		case err != nil:
			t.Errorf("%s: RecordImport: %v", s.name, err)
		default:
			imports++
			if st.Verdict.State != s.wantState || st.Scan.Source != s.wantSource || st.Digest != d {
				t.Errorf("%s: status %+v, want %s from %s", s.name, st, s.wantState, s.wantSource)
			}
			if s.wantState == gate.StateFail && !hasRule(st.Verdict, gate.RuleAllowedSources) {
				t.Errorf("%s: fail without the allowedSources rule: %+v", s.name, st.Verdict)
			}
		}
		if n := len(f.auditEntries(audit.ActionImport, "")); n != imports {
			t.Errorf("%s: %d import audit entries, want %d", s.name, n, imports)
		}
	}
	// A rescan keeps the recorded source.
	f.putScan("quarantine/app", d)
	if sc, err := f.store.Scan(ctx, d); err != nil || sc.Source != "evil.example/app:1" {
		t.Errorf("source after a rescan: %+v, %v", sc, err)
	}
}

func TestRescan(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()
	live := f.push("live/app", "1", "live").Digest.String()
	f.push("other/app", "1", "other")
	steps := []struct {
		ref      string
		wantErr  string
		wantArgs ScanArgs
	}{
		{ref: "quarantine/app:1", wantArgs: ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "rescan"}},
		{ref: "quarantine/app@" + d, wantArgs: ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "rescan"}}, // the queued job
		{ref: "live/app@" + live, wantArgs: ScanArgs{Repository: "live/app", Digest: live, Reason: "rescan"}},
		{ref: "other/app:1", wantErr: "only quarantine/ and live/"},
		{ref: "quarantine/app:2", wantErr: ErrUnknownImage.Error()},
	}
	for _, s := range steps {
		id, err := f.k.Rescan(ctx, s.ref)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Errorf("Rescan(%s) = %d, %v; want an error mentioning %q", s.ref, id, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Rescan(%s): %v", s.ref, err)
		}
		js, args := f.scanJobs()
		i := slices.IndexFunc(js, func(j jobs.Job) bool { return j.ID == id })
		if i < 0 || args[i] != s.wantArgs {
			t.Errorf("Rescan(%s) queued job %d; jobs %+v, want args %+v", s.ref, id, args, s.wantArgs)
		}
	}
	if js, _ := f.scanJobs(); len(js) != 2 {
		t.Errorf("%d scan jobs, want 2", len(js))
	}
}

func TestAttachReport(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	rep := &scan.Report{Status: scan.StatusOK, ScannedAt: t0, Artifact: scan.Artifact{Digest: img.Digest.String()},
		Findings: []scan.Finding{highFinding}}
	if err := f.k.attachReport(ctx, "quarantine/app", img, rep); err != nil {
		t.Fatal(err)
	}
	refs, err := f.reg.Referrers(ctx, "quarantine/app", img.Digest, ReportArtifactType)
	if err != nil || len(refs) != 1 {
		t.Fatalf("report referrers %+v, %v; want one", refs, err)
	}
	a := refs[0].Annotations
	if a["dev.drydock.scan.status"] != "ok" || a["dev.drydock.scan.findings"] != "1" ||
		a["dev.drydock.scan.artifactDigest"] != img.Digest.String() || a[ocispec.AnnotationCreated] != "2026-11-24T12:00:00Z" {
		t.Errorf("report annotations %v", a)
	}
	_, body, err := f.reg.Manifest(ctx, "quarantine/app", refs[0].Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil || len(m.Layers) != 1 || m.Subject == nil || m.Subject.Digest != img.Digest {
		t.Fatalf("report manifest %s: %v", body, err)
	}
	rc, _, err := f.reg.OpenBlob(ctx, "quarantine/app", m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got scan.Report
	if err := json.NewDecoder(rc).Decode(&got); err != nil || got.Status != scan.StatusOK || len(got.Findings) != 1 ||
		got.Findings[0].VulnerabilityID != "CVE-2024-1" {
		t.Errorf("stored report %+v, %v", got, err)
	}
	// The report is an artifact: its scan job does nothing.
	if err := f.k.runScan(ctx, ScanArgs{Repository: "quarantine/app", Digest: refs[0].Digest.String()}); err != nil {
		t.Errorf("runScan of the report: %v", err)
	}
	if _, err := f.store.Scan(ctx, refs[0].Digest.String()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the report was scanned: %v", err)
	}
}

// TestPolicyUnchangedAcrossRestart: a new process (a new Keeper on the same
// store) with the same policy records no policy change; a changed policy
// does, with the previous hash.
func TestPolicyUnchangedAcrossRestart(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.verdict("quarantine/app:1")
	if n := len(f.auditEntries(audit.ActionPolicyChange, "")); n != 1 {
		t.Fatalf("%d policy_change entries after the first start, want 1", n)
	}
	restart := func() *Keeper {
		t.Helper()
		ps, err := NewPolicySource(f.policy.path)
		if err != nil {
			t.Fatal(err)
		}
		q, err := jobs.Open(t.Context(), filepath.Join(t.TempDir(), "jobs.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		k, err := New(Options{Registry: f.reg, Store: f.store, Queue: q, Audit: f.audits, Policy: ps,
			DBPath: filepath.Join(t.TempDir(), "missing.db"), Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if _, err := restart().Reevaluate(t.Context(), "quarantine/app", d); err != nil {
		t.Fatal(err)
	}
	if n := len(f.auditEntries(audit.ActionPolicyChange, "")); n != 1 {
		t.Fatalf("%d policy_change entries after a restart with the same policy, want 1", n)
	}
	f.policy.write("version: v1\nmaxSeverity: MEDIUM\n")
	if _, err := restart().Reevaluate(t.Context(), "quarantine/app", d); err != nil {
		t.Fatal(err)
	}
	es := f.auditEntries(audit.ActionPolicyChange, "")
	if len(es) != 2 || !strings.Contains(string(es[1].Detail), `"previous":"`) || strings.Contains(string(es[1].Detail), `"previous":""`) {
		t.Fatalf("policy_change entries after a restart with a new policy: %+v", es)
	}
}
