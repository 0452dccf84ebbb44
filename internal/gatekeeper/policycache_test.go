package gatekeeper

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/store"
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
