package gatekeeper

import (
	"context"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
)

// TestRecordVerdictStability checks that recordVerdict feeds the stored
// verdict to gate.Transition, on every database engine: a rescan's fail
// waits out the grace window (its first sighting kept across rescans), a
// promoted image never goes back to pending, and an unchanged verdict is
// not written again.
func TestRecordVerdictStability(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		ctx := context.Background()
		s, err := store.Open(ctx, newTarget(t).Opener(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		grace := 24 * time.Hour
		d := storetest.Digest(2)
		pass := gate.Verdict{State: gate.StatePass, At: t0}
		failAt := func(at time.Time) gate.Verdict {
			return gate.Verdict{State: gate.StateFail, At: at, Reasons: []gate.Reason{{Rule: gate.RuleMaxSeverity, Message: "CVE-2026-1 is HIGH", Findings: []string{"CVE-2026-1"}}}}
		}
		if _, _, err := recordVerdict(ctx, s, d, "quarantine/app", pass, t0, grace); err != nil {
			t.Fatal(err)
		}
		// The same verdict later: nothing written, the first time kept.
		if eff, _, err := recordVerdict(ctx, s, d, "quarantine/other", gate.Verdict{State: gate.StatePass, At: t0.Add(time.Minute)}, t0.Add(time.Minute), grace); err != nil || !eff.At.Equal(t0) {
			t.Fatalf("unchanged verdict: at %s, %v", eff.At, err)
		}
		if im, _ := s.Image(ctx, d); !im.UpdatedAt.Equal(t0) || im.Repository != "quarantine/app" {
			t.Errorf("an unchanged verdict was rewritten: %+v", im)
		}
		if err := s.MarkPromoted(ctx, d, t0); err != nil {
			t.Fatal(err)
		}
		eff, _, err := recordVerdict(ctx, s, d, "quarantine/app", gate.Verdict{State: gate.StatePending, At: t0.Add(time.Hour)}, t0.Add(time.Hour), grace)
		if err != nil || eff.State != gate.StatePass {
			t.Fatalf("pending after promotion: %s, %v", eff.State, err)
		}
		t1 := t0.Add(2 * time.Hour)
		eff, flip, err := recordVerdict(ctx, s, d, "quarantine/app", failAt(t1), t1, grace)
		if err != nil || eff.State != gate.StatePass || flip == nil || !flip.EffectiveAt.Equal(t1.Add(grace)) {
			t.Fatalf("first fail: %s %+v %v", eff.State, flip, err)
		}
		t2 := t1.Add(12 * time.Hour)
		eff, flip, err = recordVerdict(ctx, s, d, "quarantine/app", failAt(t2), t2, grace)
		if err != nil || eff.State != gate.StatePass || flip == nil || !flip.FirstSeen.Equal(t1) {
			t.Fatalf("second fail: %s %+v %v", eff.State, flip, err)
		}
		if im, _ := s.Image(ctx, d); im.Verdict.PendingFlip == nil {
			t.Error("the coming flip is not visible on the stored verdict")
		}
		t3 := t1.Add(grace + time.Minute)
		eff, flip, err = recordVerdict(ctx, s, d, "quarantine/app", failAt(t3), t3, grace)
		if err != nil || eff.State != gate.StateFail || flip != nil {
			t.Fatalf("after the window: %s %+v %v", eff.State, flip, err)
		}
		if h, _ := s.History(ctx, d); len(h) != 4 {
			t.Errorf("%d history records, want 4 (pass, pass with flip, flip kept, fail)", len(h))
		}
	})
}
