package kube

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/gate"
)

// countingReader counts the referrer listings attestation checks make.
type countingReader struct {
	attest.Reader
	n atomic.Int64
}

func (c *countingReader) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	c.n.Add(1)
	return c.Reader.Referrers(ctx, repo, subject, artifactType)
}

// TestAdmitterRequirePromotion: with a promotion key, a live/ digest is
// admitted only with drydock's promotion attestation about it, signed by
// that key, with a pass or exempt verdict; the check's result is reused
// per digest for the TTL, then read again (an attestation written
// meanwhile counts).
func TestAdmitterRequirePromotion(t *testing.T) {
	ctx := t.Context()
	reg := newTestRegistry(t)
	clock := newTestClock()
	key, err := attest.GenerateKey(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := attest.GenerateKey(clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	verdicts := &fakeVerdicts{}
	attestAs := func(tag string, seed int64, k *attest.Key, state string) string {
		d := reg.push("live/app", tag, seed)
		verdicts.set(d, gate.StatePass)
		if k == nil {
			return d
		}
		writePromotion(t, reg, d, k, state)
		return d
	}
	promoted := attestAs("promoted", 1, key, "pass")
	exempt := attestAs("exempt", 2, key, "exempt")
	copied := attestAs("copied", 3, nil, "")
	otherKey := attestAs("other-key", 4, other, "pass")
	failed := attestAs("failed", 5, key, "fail")

	pub := key.PublicKey("drydock")
	cr := &countingReader{Reader: reg.Registry}
	a, err := NewAdmitter(AdmitterOptions{Hosts: []string{reg.host}, Registry: reg, Verdicts: verdicts, VerdictTTL: time.Minute,
		Now: clock.Now, PromotionKey: &pub, Attestations: cr})
	if err != nil {
		t.Fatal(err)
	}
	if !a.ChecksPromotion() {
		t.Fatal("ChecksPromotion is false")
	}
	check := func(tag string) *Violation {
		t.Helper()
		got, err := a.Check(ctx, []Container{{Kind: KindContainer, Name: "app", Image: reg.host + "/live/app:" + tag}})
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		return got[0].Violation
	}
	for _, tc := range []struct{ tag, digest, why string }{
		{"promoted", promoted, ""},
		{"exempt", exempt, ""},
		{"copied", copied, "none found"},
		{"other-key", otherKey, "signed by none of the keys given"},
		{"failed", failed, "its verdict is fail"},
	} {
		v := check(tc.tag)
		if tc.why == "" {
			if v != nil {
				t.Errorf("%s: denied: %s", tc.tag, v)
			}
			continue
		}
		if v == nil || v.Rule != RulePromotion || !strings.Contains(v.Message, "digest "+tc.digest+" was not promoted by this drydock") ||
			!strings.Contains(v.Message, tc.why) {
			t.Errorf("%s: violation %+v, want rule %s and %q", tc.tag, v, RulePromotion, tc.why)
		}
	}

	// Reused per digest within the TTL, whatever the number of
	// containers: no referrer is listed again.
	n := cr.n.Load()
	cs := make([]Container, 8)
	for i := range cs {
		cs[i] = Container{Kind: KindContainer, Name: "c", Image: reg.host + "/live/app:promoted"}
	}
	for range 3 {
		if got, err := a.Check(ctx, cs); err != nil || got[7].Violation != nil {
			t.Fatalf("8 containers: %v %+v", err, got)
		}
	}
	if check("copied") == nil || cr.n.Load() != n {
		t.Errorf("%d referrer listings within the TTL, want none", cr.n.Load()-n)
	}
	// Past the TTL it is read again: the copy, now attested, runs.
	writePromotion(t, reg, copied, key, "pass")
	if check("copied") == nil {
		t.Error("the attestation counted before the cached result expired")
	}
	clock.Add(time.Minute)
	if v := check("copied"); v != nil || cr.n.Load() == n {
		t.Errorf("after the TTL: %v (%d listings)", v, cr.n.Load()-n)
	}
}

// writePromotion attaches a promotion attestation about live/app@d, with
// verdict state, signed by k.
func writePromotion(t *testing.T, reg *testRegistry, d string, k *attest.Key, state string) {
	t.Helper()
	ctx := t.Context()
	desc, err := reg.Resolve(ctx, "live/app", d)
	if err != nil {
		t.Fatal(err)
	}
	st, err := attest.VerdictStatement("live/app", desc.Digest, attest.VerdictPredicate{Source: "quarantine/app@" + d, Target: "live/app@" + d,
		Verdict: attest.VerdictState{State: state}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.Write(ctx, reg.Registry, "live/app", desc, k, attest.WriteRequest{Ref: "live/app", Statements: []*attest.Statement{st}}); err != nil {
		t.Fatal(err)
	}
}
