package gatekeeper

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// countingSettings counts reads of the stored policy's text.
type countingSettings struct {
	PolicySettings
	textReads atomic.Int64
}

func (c *countingSettings) Setting(ctx context.Context, key string) (string, error) {
	if key == policyTextKey {
		c.textReads.Add(1)
	}
	return c.PolicySettings.Setting(ctx, key)
}

// TestStoredPolicyCachedByVersion: two replicas (two handles on one
// database, each its own PolicySource). A decision reads the text once,
// then only the version; an edit through one replica (SetPolicy's own
// writes) is seen by the other at its next decision, which reads the text
// once again. A database whose text has no version yet (stored by an
// older drydock) is read and its version mended.
func TestStoredPolicyCachedByVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		ctx := context.Background()
		target := newTarget(t)
		open := func() *countingSettings {
			s, err := store.Open(ctx, target.Opener(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return &countingSettings{PolicySettings: s}
		}
		a, b := open(), open()
		// An older drydock stored a text without a version.
		const older = "version: v1\nmaxSeverity: CRITICAL\n"
		if ok, err := a.SwapSetting(ctx, policyTextKey, "", older); err != nil || !ok {
			t.Fatalf("store the older text: %v %v", ok, err)
		}
		srcA, err := NewPolicySource("", WithPolicyStore(a))
		if err != nil {
			t.Fatal(err)
		}
		srcB, err := NewPolicySource("", WithPolicyStore(b))
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := a.Setting(ctx, policyVersionKey); v != hashText(older) {
			t.Fatalf("the version was not mended: %q", v)
		}
		severity := func(src *PolicySource) string {
			t.Helper()
			p, _, err := src.Get()
			if err != nil {
				t.Fatal(err)
			}
			return string(p.MaxSeverity)
		}
		if severity(srcA) != "CRITICAL" || severity(srcB) != "CRITICAL" {
			t.Fatal("the stored policy is not in effect")
		}
		readsA, readsB := a.textReads.Load(), b.textReads.Load()
		for range 50 {
			severity(srcA)
			severity(srcB)
		}
		if a.textReads.Load() != readsA || b.textReads.Load() != readsB {
			t.Errorf("50 decisions read the text %d and %d more times, want 0 (cached by version)",
				a.textReads.Load()-readsA, b.textReads.Load()-readsB)
		}

		// Replica B edits: its writes, as SetPolicy makes them.
		const stricter = "version: v1\nmaxSeverity: HIGH\n"
		if ok, err := b.SwapSetting(ctx, policyTextKey, older, stricter); err != nil || !ok {
			t.Fatalf("edit: %v %v", ok, err)
		}
		if err := srcB.mendVersion(ctx); err != nil {
			t.Fatal(err)
		}
		readsA = a.textReads.Load()
		if got := severity(srcA); got != "HIGH" {
			t.Fatalf("replica A decides with maxSeverity %s after B's edit, want HIGH", got)
		}
		if n := a.textReads.Load() - readsA; n != 1 {
			t.Errorf("replica A read the text %d times to see the edit, want 1", n)
		}
		readsA = a.textReads.Load()
		severity(srcA)
		if a.textReads.Load() != readsA {
			t.Error("replica A reads the text again after it cached the edit")
		}
	})
}

// Two stored policies for the tests of an edit stopped half-way.
const policyHigh, policyMedium = "version: v1\nmaxSeverity: HIGH\n", "version: v1\nmaxSeverity: MEDIUM\n"

// TestStoredPolicyMendedAtOnce: an editor that stopped between its two
// writes left a new text under another text's version; the next decision
// mends the version and decides with the text stored, at once.
func TestStoredPolicyMendedAtOnce(t *testing.T) {
	ctx := t.Context()
	// A full edit, then one stopped before the version.
	st, src, write := newStoredPolicy(t, policyHigh)
	write(policyTextKey, policyHigh, policyMedium)
	p, hash, err := src.Get()
	if err != nil || p == nil || p.MaxSeverity != vulndb.SeverityMedium || hash != hashText(policyMedium) {
		t.Fatalf("Get() = %+v, %s, %v; want the stored MEDIUM policy", p, hash, err)
	}
	if v, _ := st.Setting(ctx, policyVersionKey); v != hashText(policyMedium) {
		t.Errorf("the version %s was not mended to the stored text's", v)
	}
}

// TestStoredPolicyRecheckedAfterAMinute: a text changed under an unchanged
// version (an editor stopped between its two writes, seen by a replica
// that had already read that version) is trusted for policyRecheck on
// the version alone, then read again by the source's clock, and the
// version mended.
func TestStoredPolicyRecheckedAfterAMinute(t *testing.T) {
	ctx := t.Context()
	read := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	now := read
	st, src, write := newStoredPolicy(t, policyHigh, WithPolicyClock(func() time.Time { return now }))
	if p, _, err := src.Get(); err != nil || p.MaxSeverity != vulndb.SeverityHigh {
		t.Fatalf("Get() = %+v, %v; want the stored HIGH policy", p, err)
	}
	write(policyTextKey, policyHigh, policyMedium) // the version still says HIGH
	for _, tc := range []struct {
		after time.Duration
		want  vulndb.Severity
	}{
		{0, vulndb.SeverityHigh},
		{policyRecheck - time.Second, vulndb.SeverityHigh},
		{policyRecheck, vulndb.SeverityMedium},
	} {
		now = read.Add(tc.after)
		if p, _, err := src.Get(); err != nil || p.MaxSeverity != tc.want {
			t.Errorf("Get() %s after the read = %+v, %v; want maxSeverity %v", tc.after, p, err, tc.want)
		}
	}
	if v, _ := st.Setting(ctx, policyVersionKey); v != hashText(policyMedium) {
		t.Errorf("the version %s was not mended to the stored text's", v)
	}
}

// newStoredPolicy is a policy source on a gate store of its own (SQLite in
// a temporary directory), after a full edit of the stored policy to text
// (the text, then its version), and a write of one of the store's
// settings by compare-and-swap, as an editor on another replica writes.
func newStoredPolicy(t *testing.T, text string, opts ...PolicyOption) (store.Store, *PolicySource, func(key, old, value string)) {
	t.Helper()
	st, err := store.Open(t.Context(), dbtest.SQLite(t).Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src, err := NewPolicySource("", append([]PolicyOption{WithPolicyStore(st)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	write := func(key, old, value string) {
		t.Helper()
		if ok, err := st.SwapSetting(t.Context(), key, old, value); err != nil || !ok {
			t.Fatalf("write %s: %v %v", key, ok, err)
		}
	}
	v0, err := st.Setting(t.Context(), policyVersionKey)
	if err != nil {
		t.Fatal(err)
	}
	write(policyTextKey, "", text)
	write(policyVersionKey, v0, hashText(text))
	return st, src, write
}
