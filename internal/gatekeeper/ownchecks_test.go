package gatekeeper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/store"
)

// lenientStore is the real store except that MarkPromoted accepts any
// verdict: it takes away the store's own check, so that the gatekeeper's
// decision is the only thing between a failing digest and live/.
type lenientStore struct{ store.Store }

func (lenientStore) MarkPromoted(context.Context, string, time.Time) error { return nil }

// withLenientStore replaces f's Keeper by one over lenientStore (and a
// queue of its own: a queue takes one scan handler).
func withLenientStore(t *testing.T, f *fixture) {
	t.Helper()
	withStore(t, f, lenientStore{f.store})
}

// withStore replaces f's Keeper by one over s.
func withStore(t *testing.T, f *fixture, s store.Store) {
	t.Helper()
	rebuild(t, f, func(o *Options) { o.Store = s })
}

// TestPromoteChecksTheVerdictItself: Promote refuses a failing or pending
// digest by its own decision, not only because the store's MarkPromoted
// refuses too. A passing digest is the control: the lenient store does not
// break promotion.
func TestPromoteChecksTheVerdictItself(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: LOW\n"})
	withLenientStore(t, f)
	ctx := t.Context()
	bad := f.push("quarantine/app", "bad", "bad").Digest.String()
	f.putScan("quarantine/app", bad, highFinding)
	pending := f.push("quarantine/app", "pending", "pending").Digest.String()
	good := f.push("quarantine/app", "good", "good").Digest.String()
	f.putScan("quarantine/app", good)

	for _, tc := range []struct {
		tag, digest string
		state       gate.State
	}{{"bad", bad, gate.StateFail}, {"pending", pending, gate.StatePending}} {
		_, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:" + tc.tag, Actor: "mallory"})
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Verdict.State != tc.state {
			t.Errorf("%s: Promote = %v, want a *RefusedError with verdict %s", tc.tag, err, tc.state)
		}
		for _, ref := range []string{tc.tag, tc.digest} {
			if _, _, err := f.reg.Manifest(ctx, "live/app", ref); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("%s: live/app %s after the refusal: %v, want not found", tc.tag, ref, err)
			}
		}
		es := f.auditEntries(audit.ActionPromotion, tc.digest)
		if len(es) != 1 || es[0].Outcome != audit.OutcomeRefused {
			t.Errorf("%s: promotion audit entries %+v, want one refused", tc.tag, es)
		}
	}
	if n := len(f.events.ofType(events.TypePromotion)); n != 0 {
		t.Errorf("%d promotion events after refusals", n)
	}

	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:good", Actor: "bob"})
	if err != nil || p.Verdict.State != gate.StatePass {
		t.Fatalf("control: Promote of a passing digest = %+v, %v", p, err)
	}
	if d, _, err := f.reg.Manifest(ctx, "live/app", "good"); err != nil || d.Digest.String() != good {
		t.Errorf("control: live/app:good = %v, %v", d.Digest, err)
	}
}
