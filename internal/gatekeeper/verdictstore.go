package gatekeeper

import (
	"context"
	"encoding/json"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/store"
)

// recordVerdict stores next, a fresh gate.Evaluate result for digest, as
// the digest's effective verdict after gate.Transition against the stored
// one, in one store transaction, and returns the effective verdict and a
// pending flip. An effective verdict equal to the stored one but for its
// time is not written again: a sweep over every digest writes nothing, and
// the verdict keeps the time it was first reached. A new record takes
// repository; an existing one keeps where it was first seen.
func recordVerdict(ctx context.Context, st store.Store, digest, repository string, next gate.Verdict, now time.Time, grace time.Duration) (gate.Verdict, *gate.Flip, error) {
	var eff gate.Verdict
	var flip *gate.Flip
	_, err := st.UpdateImage(ctx, digest, func(prev *store.Image) (*store.Image, error) {
		if prev == nil {
			eff, flip = gate.Transition(gate.Verdict{}, next, false, now, grace)
			return &store.Image{Digest: digest, Repository: repository, Verdict: eff, UpdatedAt: now}, nil
		}
		eff, flip = gate.Transition(prev.Verdict, next, prev.Promoted, now, grace)
		if !changedButTime(prev.Verdict, eff) {
			eff = prev.Verdict
			return nil, nil
		}
		prev.Verdict, prev.UpdatedAt = eff, now
		return prev, nil
	})
	if err != nil {
		return gate.Verdict{}, nil, err
	}
	return eff, flip, nil
}

// changedButTime reports whether b differs from a in anything but the time
// it was reached.
func changedButTime(a, b gate.Verdict) bool {
	a.At, b.At = time.Time{}, time.Time{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) != string(jb)
}
