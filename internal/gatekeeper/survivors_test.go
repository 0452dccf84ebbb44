package gatekeeper

// Tests added for mutants that survived `make mutate` (sixth pass; see
// test/mutation/SURVIVORS.md).

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/store"
)

// TestRefusedErrorListsFiveFindings: a refusal names a reason's first
// five findings and counts the rest; a reason without findings names
// none.
func TestRefusedErrorListsFiveFindings(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("CVE-2025-%d", i+1)
		}
		return out
	}
	const head = "promotion of quarantine/a:1 (sha256:d) refused: verdict is fail; max-severity: too severe"
	for _, c := range []struct {
		findings []string
		want     string
	}{
		{nil, head},
		{ids(1), head + " (CVE-2025-1)"},
		{ids(5), head + " (CVE-2025-1, CVE-2025-2, CVE-2025-3, CVE-2025-4, CVE-2025-5)"},
		{ids(6), head + " (CVE-2025-1, CVE-2025-2, CVE-2025-3, CVE-2025-4, CVE-2025-5, and 1 more)"},
		{ids(8), head + " (CVE-2025-1, CVE-2025-2, CVE-2025-3, CVE-2025-4, CVE-2025-5, and 3 more)"},
	} {
		e := &RefusedError{Source: "quarantine/a:1", Digest: "sha256:d", Verdict: gate.Verdict{State: gate.StateFail,
			Reasons: []gate.Reason{{Rule: "max-severity", Message: "too severe", Findings: c.findings}}}}
		if got := e.Error(); got != c.want {
			t.Errorf("%d findings:\n got %s\nwant %s", len(c.findings), got, c.want)
		}
	}
}

// racingStore is the real store, except that marking a digest promoted
// first turns its stored verdict to fail: the verdict changes between
// Promote's decision and its mark, as another replica's decision can.
type racingStore struct{ store.Store }

func (s racingStore) MarkPromoted(ctx context.Context, d string, now time.Time) error {
	if _, err := s.UpdateImage(ctx, d, func(prev *store.Image) (*store.Image, error) {
		next := *prev
		next.Verdict = gate.Verdict{State: gate.StateFail, At: now, Reasons: []gate.Reason{{Rule: gate.RuleMaxSeverity, Message: "decided meanwhile"}}}
		return &next, nil
	}); err != nil {
		return err
	}
	return s.Store.MarkPromoted(ctx, d, now)
}

// TestPromoteRefusesAVerdictChangedBeforeTheMark: a verdict that turns to
// fail between the decision and the mark is a refusal with that verdict
// (audited as refused), not an error, and nothing reaches live/.
func TestPromoteRefusesAVerdictChangedBeforeTheMark(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	withStore(t, f, racingStore{f.store})
	ctx := t.Context()
	d := f.push("quarantine/app", "v1", "v1").Digest.String()
	f.putScan("quarantine/app", d)
	_, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:v1", Actor: "bob"})
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Verdict.State != gate.StateFail || len(refused.Verdict.Reasons) != 1 || refused.Verdict.Reasons[0].Message != "decided meanwhile" {
		t.Fatalf("Promote = %v, want a *RefusedError with the verdict decided meanwhile", err)
	}
	if _, _, err := f.reg.Manifest(ctx, "live/app", "v1"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("live/app:v1 after the refusal: %v, want not found", err)
	}
	if es := f.auditEntries(audit.ActionPromotion, d); len(es) != 1 || es[0].Outcome != audit.OutcomeRefused {
		t.Errorf("promotion audit entries %+v, want one refused", es)
	}
}
