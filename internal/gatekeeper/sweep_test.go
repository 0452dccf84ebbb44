package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

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
	f.installDB(dbBuilt)
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	// The database is there now: the scan that failed for want of one runs
	// again, and the first sweep queues the digest never scanned.
	_, args := f.scanJobs()
	got := map[string]string{}
	for _, a := range args {
		got[a.Digest] = a.Reason
	}
	if len(args) != 2 || got[failed] != "db-available" || got[pending] != "retry" {
		t.Errorf("scan jobs after the first sweep: %+v, want db-available for %s and retry for %s", args, failed, pending)
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
	if js, _ := f.scanJobs(); len(js) != 2 {
		t.Errorf("%d scan jobs after the second sweep, want the same 2", len(js))
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

// TestSweepRescansBeforeMaxScanAge: a scan older than half the policy's
// maxScanAge is queued again, so that the verdict never fails for age
// while the gate is running; a fresh one is not.
func TestSweepRescansBeforeMaxScanAge(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: CRITICAL\nmaxScanAge: 24h\n"})
	ctx := t.Context()
	f.installDB(dbBuilt)
	old := f.push("quarantine/old", "1", "old").Digest.String()
	f.putScan("quarantine/old", old)
	f.clock.Advance(11 * time.Hour)
	fresh := f.push("quarantine/fresh", "1", "fresh").Digest.String()
	f.putScan("quarantine/fresh", fresh)
	for _, ref := range []string{"quarantine/old:1", "quarantine/fresh:1"} {
		if st := f.verdict(ref); st.Verdict.State != gate.StatePass {
			t.Fatalf("%s: %s", ref, st.Verdict.State)
		}
	}
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if js, _ := f.scanJobs(); len(js) != 0 {
		t.Fatalf("rescans at 11h of 24h: %+v", js)
	}
	f.clock.Advance(2 * time.Hour) // old: 13h, fresh: 2h
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	_, args := f.scanJobs()
	if len(args) != 1 || args[0].Digest != old || args[0].Reason != "max-scan-age" {
		t.Fatalf("rescans at 13h: %+v, want one of %s", args, old)
	}
}

// TestSweepAutoPromotesAfterAnException: under autoPromote, a digest that
// fails at its scan and becomes exempt when an exception is written is
// promoted by the next sweep, under its quarantine/ tag.
func TestSweepAutoPromotesAfterAnException(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: HIGH\nautoPromote: true\n"})
	ctx := t.Context()
	d := f.push("quarantine/app", "2", "app").Digest.String()
	crit := highFinding
	crit.VulnerabilityID, crit.Severity = "CVE-2024-7", vulndb.SeverityCritical
	f.putScan("quarantine/app", d, crit)
	if st := f.verdict("quarantine/app:2"); st.Verdict.State != gate.StateFail {
		t.Fatalf("before the exception: %s", st.Verdict.State)
	}
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.reg.Manifest(ctx, "live/app", "2"); err == nil {
		t.Fatal("a failing digest was auto-promoted")
	}
	doc := vexDocument("app", vexStatement("CVE-2024-7", "quarantine/app", t0.Add(30*24*time.Hour)))
	if err := os.WriteFile(filepath.Join(f.vexDir, "app.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	desc, _, err := f.reg.Manifest(ctx, "live/app", "2")
	if err != nil || desc.Digest.String() != d || !f.image(d).Promoted {
		t.Fatalf("live/app:2 after the sweep: %v %v", desc.Digest, err)
	}
}

// TestSweepRescansAfterADatabaseUpdate: scans made with an older build of
// the database are queued again, at every sweep until they have run; none
// are queued without a database.
func TestSweepRescansAfterADatabaseUpdate(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	ctx := t.Context()
	a := f.push("quarantine/a", "1", "a").Digest.String()
	b := f.push("quarantine/b", "1", "b").Digest.String()
	f.putScan("quarantine/a", a)
	f.putScan("quarantine/b", b)
	f.verdict("quarantine/a:1")
	f.verdict("quarantine/b:1")
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if js, _ := f.scanJobs(); len(js) != 0 {
		t.Fatalf("rescans without a database: %+v", js)
	}
	f.installDB(dbBuilt)
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if js, _ := f.scanJobs(); len(js) != 0 {
		t.Fatalf("rescans with the database the scans used: %+v", js)
	}
	f.installDB(dbBuilt.Add(24 * time.Hour))
	for range 2 { // queued once: the second sweep finds the jobs waiting
		if err := f.k.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_, args := f.scanJobs()
	if len(args) != 2 || args[0].Reason != "db-update" || args[1].Reason != "db-update" {
		t.Fatalf("rescans after a database update: %+v, want db-update for both", args)
	}
}
