package gatekeeper

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/store"
)

// signIn signs subject in repo with a new key (both forms), as a user's
// cosign would, and returns the key.
func (f *fixture) signIn(repo string, subject ocispec.Descriptor, k *attest.Key) {
	f.t.Helper()
	if _, err := attest.Write(f.t.Context(), f.reg, repo, subject, k, attest.WriteRequest{Ref: repo, Signature: true, Now: f.clock.Now()}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) verifyIn(repo string, subject digest.Digest, k *attest.Key) *attest.Report {
	f.t.Helper()
	pub, err := attest.ParsePublicKey("k", k.PublicPEM())
	if err != nil {
		f.t.Fatal(err)
	}
	rep, err := attest.Verify(f.t.Context(), f.reg, repo, subject, attest.VerifyOptions{Keys: []attest.PublicKey{pub}})
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// forms counts the verified signatures of a report by form.
func forms(rep *attest.Report) map[string]int {
	out := map[string]int{}
	for _, s := range rep.Signatures {
		if s.Verified {
			out[s.Form]++
		}
	}
	return out
}

// TestFollowersAtAndAfterPromotion: signatures in both forms are not
// scanned, follow their subject at promotion, and a signature pushed
// after the promotion follows by itself, audited as the gate's write.
func TestFollowersAtAndAfterPromotion(t *testing.T) {
	f := newFixture(t, fixtureOptions{listen: true})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	f.putScan("quarantine/app", d)
	k1, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	f.signIn("quarantine/app", img, k1)

	// None of the signature's manifests was queued for a scan or given
	// a verdict.
	_, args := f.scanJobs()
	for _, a := range args {
		if a.Digest != d {
			t.Errorf("scan queued for %s (%s)", a.Digest, a.Tag)
		}
	}
	if ims, _ := f.store.List(ctx, store.Filter{}); len(ims) != 1 {
		t.Errorf("%d digests with a verdict, want 1 (the image)", len(ims))
	}

	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if got := forms(f.verifyIn("live/app", img.Digest, k1)); got[attest.FormReferrer] != 1 || got[attest.FormTag] != 1 {
		t.Fatalf("verified in live/ after promotion: %v, want one per form", got)
	}
	if len(p.Followed) != 1 || p.Followed[0].Form != attest.FormTag || p.Followed[0].Class != imgref.ClassSignature {
		t.Errorf("followed %+v", p.Followed)
	}

	// A second signer, after the promotion: it reaches live/ too, and
	// live/'s .sig keeps the first signer's layer.
	k2, _ := attest.GenerateKey(t0)
	before := len(f.auditEntries(audit.ActionPromotion, ""))
	f.signIn("quarantine/app", img, k2)
	for _, k := range []*attest.Key{k1, k2} {
		if got := forms(f.verifyIn("live/app", img.Digest, k)); got[attest.FormReferrer] != 1 || got[attest.FormTag] != 1 {
			t.Errorf("key %s in live/ after a later signature: %v", k.ID(), got)
		}
	}
	// The signature's two pushes (its manifest, then its .sig tag) each
	// make the gate follow the subject's signatures: both forms are
	// written by the gate and audited once each.
	var gateWrites []audit.Entry
	for _, e := range f.auditEntries(audit.ActionPromotion, "")[before:] {
		if e.Actor == ActorGate && e.Repository == "live/app" {
			gateWrites = append(gateWrites, e)
		}
	}
	if len(gateWrites) != 2 || gateWrites[0].Digest == gateWrites[1].Digest {
		t.Errorf("gate's audited follow writes: %+v, want 2 (referrer and tag)", gateWrites)
	}
	// A signature for a digest not in live/ stays in quarantine/.
	other := f.push("quarantine/app", "2", "other")
	f.signIn("quarantine/app", other, k1)
	if _, err := f.reg.Resolve(ctx, "live/app", imgref.TagSchemeTag(other.Digest, imgref.SuffixSignature)); err == nil {
		t.Error("a signature of an unpromoted digest reached live/")
	}
	// Another team's quarantine/ repository cannot attach to live/app.
	f.push("quarantine/evil", "x", "app") // same bytes: same digest as img
	k3, _ := attest.GenerateKey(t0)
	f.signIn("quarantine/evil", img, k3)
	if got := forms(f.verifyIn("live/app", img.Digest, k3)); len(got) != 0 {
		t.Errorf("a signature pushed to quarantine/evil reached live/app: %v", got)
	}
}

// TestTagSchemeImpostorsAreJudged: an image under a .sig tag is not a
// follower: it is scanned like any image and never copied as one.
func TestTagSchemeImpostorsAreJudged(t *testing.T) {
	f := newFixture(t, fixtureOptions{listen: true})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String())
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1"}); err != nil {
		t.Fatal(err)
	}
	sigTag := imgref.TagSchemeTag(img.Digest, imgref.SuffixSignature)
	evil := f.push("quarantine/app", sigTag, "evil") // a runnable image under the signature tag
	_, args := f.scanJobs()
	queued := false
	for _, a := range args {
		queued = queued || a.Digest == evil.Digest.String()
	}
	if !queued {
		t.Error("an image under a .sig tag was not queued for a scan")
	}
	if _, err := f.reg.Resolve(ctx, "live/app", sigTag); err == nil {
		t.Error("an image under a .sig tag reached live/")
	}
	// A promotion does not take it along either.
	img2 := f.push("quarantine/app", "2", "app2")
	f.putScan("quarantine/app", img2.Digest.String())
	evil2 := f.push("quarantine/app", imgref.TagSchemeTag(img2.Digest, imgref.SuffixAttestation), "evil2")
	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:2"})
	if err != nil {
		t.Fatal(err)
	}
	if f.inLive("live/app", evil2) {
		t.Error("an image under an .att tag was promoted with its 'subject'")
	}
	found := false
	for _, lb := range p.Copy.LeftBehind {
		found = found || (lb.Referrer.Digest == evil2.Digest && strings.Contains(lb.Reason, "not cosign's"))
	}
	if !found {
		t.Errorf("left behind %+v, want the .att impostor with a reason", p.Copy.LeftBehind)
	}
}

// TestFollowersPolicy: the policy's followers list restricts what
// follows, at promotion and after.
func TestFollowersPolicy(t *testing.T) {
	f := newFixture(t, fixtureOptions{listen: true, policy: "version: v1\nmaxSeverity: HIGH\nfollowers: [signature]\n"})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String())
	sbom := f.pushReferrer("quarantine/app", img, "application/spdx+json")
	k, _ := attest.GenerateKey(t0)
	st, _ := attest.NewStatement("x", img.Digest, "https://example.com/p", map[string]string{})
	if _, err := attest.Write(ctx, f.reg, "quarantine/app", img, k, attest.WriteRequest{Signature: true, Statements: []*attest.Statement{st}}); err != nil {
		t.Fatal(err)
	}
	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1"})
	if err != nil {
		t.Fatal(err)
	}
	if f.inLive("live/app", sbom) {
		t.Error("an SBOM followed a policy that lets only signatures follow")
	}
	got := forms(f.verifyIn("live/app", img.Digest, k))
	if got[attest.FormReferrer] != 1 || got[attest.FormTag] != 1 {
		t.Errorf("verified in live/: %v, want the signature in both forms only", got)
	}
	if _, err := f.reg.Resolve(ctx, "live/app", imgref.TagSchemeTag(img.Digest, imgref.SuffixAttestation)); err == nil {
		t.Error("the .att tag followed")
	}
	if len(p.Copy.LeftBehind) != 3 { // the SBOM, the attestation referrer, the .att tag
		t.Errorf("left behind %+v, want 3", p.Copy.LeftBehind)
	}
}

// TestPromotionSigned: a promotion with the gate's key signs the live/
// digest (cosign, both forms; Notary Project) and attaches the promotion
// attestation, which RequirePromotion accepts and which names the policy
// hash; the same check refuses another key and another digest.
func TestPromotionSigned(t *testing.T) {
	key, _ := attest.GenerateKey(t0)
	f := newFixture(t, fixtureOptions{key: key, policy: "version: v1\nmaxSeverity: HIGH\n"})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String())
	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Signed == nil || p.SignError != "" || len(p.Signed.Referrers) != 3 {
		t.Fatalf("signed %+v, error %q", p.Signed, p.SignError)
	}
	pub, _ := attest.ParsePublicKey("drydock", key.PublicPEM())
	pred, err := attest.RequirePromotion(ctx, f.reg, "live/app", img.Digest, pub)
	if err != nil {
		t.Fatal(err)
	}
	st := f.verdict("quarantine/app:1")
	if pred.Policy.SHA256 != st.PolicyHash || pred.Policy.SHA256 == "" || pred.Verdict.State != "pass" ||
		pred.Source != "quarantine/app:1" || pred.Target != "live/app:1" || pred.Actor != "bob" || len(pred.Scan.Images) != 1 {
		t.Errorf("predicate %+v (policy hash %s)", pred, st.PolicyHash)
	}
	rep := f.verifyIn("live/app", img.Digest, key)
	got := map[string]int{}
	for _, s := range rep.Signatures {
		if s.Verified {
			got[s.Form+"/"+s.Format]++
		}
	}
	if got["referrer/cosign"] != 1 || got["tag/cosign"] != 1 || got["referrer/notary"] != 1 || got["referrer/dsse"] != 1 || got["tag/dsse"] != 1 {
		t.Errorf("verified %v", got)
	}
	// Not in quarantine/: the gate signs what it put in live/.
	if _, err := attest.RequirePromotion(ctx, f.reg, "quarantine/app", img.Digest, pub); err == nil {
		t.Error("a promotion attestation in quarantine/")
	}
	other, _ := attest.GenerateKey(t0)
	opub, _ := attest.ParsePublicKey("other", other.PublicPEM())
	if _, err := attest.RequirePromotion(ctx, f.reg, "live/app", img.Digest, opub); err == nil || !strings.Contains(err.Error(), "signed by none") {
		t.Errorf("another key: %v", err)
	}
}

// TestRequireSignedBy: the policy's requireSignedBy refuses an unsigned
// digest with the reason, and promotes one the key signed.
func TestRequireSignedBy(t *testing.T) {
	signer, _ := attest.GenerateKey(t0)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), signer.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: HIGH\nrequireSignedBy: [" + filepath.Join(dir, "release.pub") + "]\n"})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String())
	_, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1"})
	var refused *RefusedError
	if !errors.As(err, &refused) || !hasRule(refused.Verdict, gate.RuleRequireSignedBy) ||
		!strings.Contains(err.Error(), "not signed by key") || !strings.Contains(err.Error(), signer.ID()) {
		t.Fatalf("unsigned: %v", err)
	}
	// Signed by another key: still refused, and the reason says whose.
	other, _ := attest.GenerateKey(t0)
	f.signIn("quarantine/app", img, other)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1"}); !errors.As(err, &refused) || !strings.Contains(err.Error(), "signed by none of the keys") {
		t.Fatalf("signed by another key: %v", err)
	}
	f.signIn("quarantine/app", img, signer)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1"}); err != nil {
		t.Fatalf("signed: %v", err)
	}
}

// TestFollowArrivalsAuditOnce: arrivals of the same subject's followers
// at once (a signature's manifest and .sig tag pushes, on one replica or
// several) copy and audit each write once.
func TestFollowArrivalsAuditOnce(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String())
	if _, err := f.k.Promote(t.Context(), PromoteRequest{Source: "quarantine/app:1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	k1, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.auditEntries(audit.ActionPromotion, ""))
	f.signIn("quarantine/app", img, k1) // no listener: nothing follows yet
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { f.k.followerArrived(t.Context(), "quarantine/app", img.Digest) })
	}
	wg.Wait()
	if got := forms(f.verifyIn("live/app", img.Digest, k1)); got[attest.FormReferrer] != 1 || got[attest.FormTag] != 1 {
		t.Errorf("verified in live/: %v, want one per form", got)
	}
	var writes []string
	for _, e := range f.auditEntries(audit.ActionPromotion, "")[before:] {
		if e.Actor == ActorGate && e.Repository == "live/app" {
			writes = append(writes, e.Reference+"@"+e.Digest)
		}
	}
	if len(writes) != 2 {
		t.Errorf("%d audited follow writes %v, want 2 (referrer and tag, once each)", len(writes), writes)
	}
}
