package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func open(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pass(at time.Time) gate.Verdict { return gate.Verdict{State: gate.StatePass, At: at} }

func failFindings(at time.Time) gate.Verdict {
	return gate.Verdict{State: gate.StateFail, At: at, Reasons: []gate.Reason{{Rule: gate.RuleMaxSeverity, Message: "CVE-2026-1 is HIGH", Findings: []string{"CVE-2026-1"}}}}
}

func TestRecordAndPromote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gate.db")
	s := open(t, path)
	ctx := t.Context()
	if _, err := s.Image(ctx, digest(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown digest: %v", err)
	}
	if _, _, err := s.RecordVerdict(ctx, "sha256:nothex", "quarantine/x", pass(t0), t0, 0); err == nil {
		t.Error("malformed digest accepted")
	}
	if _, _, err := s.RecordVerdict(ctx, digest(1), "quarantine/app", failFindings(t0), t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPromoted(ctx, digest(1), t0); err == nil || !strings.Contains(err.Error(), "not promotable") {
		t.Errorf("promoting a failing digest: %v", err)
	}
	eff, flip, err := s.RecordVerdict(ctx, digest(1), "quarantine/app", pass(t0.Add(time.Minute)), t0.Add(time.Minute), time.Hour)
	if err != nil || eff.State != gate.StatePass || flip != nil {
		t.Fatalf("pass: %v %v %v", eff.State, flip, err)
	}
	if err := s.MarkPromoted(ctx, digest(1), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Reopen: everything persisted.
	s.Close()
	s = open(t, path)
	im, err := s.Image(ctx, digest(1))
	if err != nil {
		t.Fatal(err)
	}
	if !im.Promoted || im.Verdict.State != gate.StatePass || im.Repository != "quarantine/app" || !im.UpdatedAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("after reopen: %+v", im)
	}
	h, err := s.History(ctx, digest(1))
	if err != nil || len(h) != 2 || h[0].State != gate.StateFail || h[1].State != gate.StatePass {
		t.Errorf("history: %+v, %v", h, err)
	}
	if err := s.MarkPromoted(ctx, digest(9), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("promoting an unknown digest: %v", err)
	}
}

// TestStability checks that the stored verdict feeds gate.Transition: a
// rescan's fail waits out the grace window (its first sighting is kept
// across rescans), and a promoted image never goes back to pending.
func TestStability(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "gate.db"))
	ctx := t.Context()
	grace := 24 * time.Hour
	d := digest(2)
	if _, _, err := s.RecordVerdict(ctx, d, "quarantine/app", pass(t0), t0, grace); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPromoted(ctx, d, t0); err != nil {
		t.Fatal(err)
	}
	// A pending rescan of a promoted image keeps its pass.
	eff, _, err := s.RecordVerdict(ctx, d, "quarantine/app", gate.Verdict{State: gate.StatePending, At: t0.Add(time.Hour)}, t0.Add(time.Hour), grace)
	if err != nil || eff.State != gate.StatePass {
		t.Fatalf("pending after promotion: %s, %v", eff.State, err)
	}
	// The first failing rescan starts the grace window.
	t1 := t0.Add(2 * time.Hour)
	eff, flip, err := s.RecordVerdict(ctx, d, "quarantine/app", failFindings(t1), t1, grace)
	if err != nil || eff.State != gate.StatePass || flip == nil || !flip.EffectiveAt.Equal(t1.Add(grace)) {
		t.Fatalf("first fail: %s %+v %v", eff.State, flip, err)
	}
	// A second failing rescan inside the window keeps the first sighting.
	t2 := t1.Add(12 * time.Hour)
	eff, flip, err = s.RecordVerdict(ctx, d, "quarantine/app", failFindings(t2), t2, grace)
	if err != nil || eff.State != gate.StatePass || flip == nil || !flip.FirstSeen.Equal(t1) {
		t.Fatalf("second fail: %s %+v %v", eff.State, flip, err)
	}
	im, _ := s.Image(ctx, d)
	if im.Verdict.PendingFlip == nil {
		t.Error("the coming flip is not visible on the stored verdict")
	}
	// After the window the fail takes effect.
	t3 := t1.Add(grace + time.Minute)
	eff, flip, err = s.RecordVerdict(ctx, d, "quarantine/app", failFindings(t3), t3, grace)
	if err != nil || eff.State != gate.StateFail || flip != nil {
		t.Fatalf("after the window: %s %+v %v", eff.State, flip, err)
	}
	fails, err := s.List(ctx, Filter{State: gate.StateFail})
	if err != nil || len(fails) != 1 || fails[0].Digest != d {
		t.Errorf("List(fail): %+v, %v", fails, err)
	}
}

// TestConcurrentWriters records verdicts from two handles on one file
// (two processes' worth) and many goroutines: no error, no lost record.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gate.db")
	a, b := open(t, path), open(t, path)
	var wg sync.WaitGroup
	const workers, each = 8, 25
	errs := make(chan error, workers*each)
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range each {
				d := digest(i % 5) // contended digests
				at := t0.Add(time.Duration(w*each+i) * time.Second)
				v := pass(at)
				v.Reasons = []gate.Reason{{Rule: "test", Message: fmt.Sprint(w, "/", i)}} // every record differs
				if _, _, err := s.RecordVerdict(t.Context(), d, "quarantine/app", v, at, time.Hour); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for i := range 5 {
		h, err := a.History(t.Context(), digest(i))
		if err != nil {
			t.Fatal(err)
		}
		total += len(h)
	}
	if total != workers*each {
		t.Errorf("%d history records, want %d", total, workers*each)
	}
	all, err := b.List(t.Context(), Filter{Repository: "quarantine/app", Limit: 3})
	if err != nil || len(all) != 3 {
		t.Errorf("List limit 3: %d, %v", len(all), err)
	}
}

func TestHistoryOnlyOnChangeAndScans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "gate.db"))
	ctx := t.Context()
	d := digest(1)
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, _, err := s.RecordVerdict(ctx, d, "quarantine/app", pass(at), at, 0); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := s.History(ctx, d); len(h) != 1 {
		t.Fatalf("%d history records for three identical verdicts, want 1", len(h))
	}
	if im, _ := s.Image(ctx, d); !im.Verdict.At.Equal(t0) || !im.UpdatedAt.Equal(t0) {
		t.Errorf("an unchanged verdict was rewritten: at %s, updated %s; want both %s", im.Verdict.At, im.UpdatedAt, t0)
	}

	if _, err := s.Scan(ctx, d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Scan of unscanned digest: %v", err)
	}
	if err := s.SetSource(ctx, d, "quarantine/app", "docker.io/library/app:1"); err != nil {
		t.Fatal(err)
	}
	sc := Scan{Digest: d, Repository: "quarantine/app", ScannedAt: t0, Reports: []PlatformReport{{Digest: d, Report: &scan.Report{Status: scan.StatusOK}}}}
	if err := s.PutScan(ctx, sc); err != nil {
		t.Fatal(err)
	}
	got, err := s.Scan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "docker.io/library/app:1" || !got.ScannedAt.Equal(t0) || len(got.Reports) != 1 || got.Reports[0].Report.Status != scan.StatusOK {
		t.Fatalf("scan %+v", got)
	}
	sc.Error, sc.Reports = "boom", nil
	if err := s.PutScan(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Scan(ctx, d); got.Error != "boom" || got.Source == "" || len(got.Reports) != 0 {
		t.Fatalf("after a failed scan: %+v", got)
	}
	if err := s.PutScan(ctx, Scan{Digest: "nope"}); err == nil {
		t.Fatal("bad digest accepted")
	}
}

func TestSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gate.db")
	s := open(t, path)
	if v, err := s.Setting(t.Context(), "k"); err != nil || v != "" {
		t.Fatalf("unset setting: %q %v", v, err)
	}
	for _, v := range []string{"a", "b"} {
		if err := s.SetSetting(t.Context(), "k", v); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := open(t, path).Setting(t.Context(), "k"); err != nil || v != "b" {
		t.Fatalf("setting from a second handle: %q %v", v, err)
	}
}
