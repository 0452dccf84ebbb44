package gatekeeper

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
)

func TestPromotePass(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	sbom := f.pushReferrer("quarantine/app", img, "application/spdx+json")
	f.putScan("quarantine/app", d)

	st := f.verdict("quarantine/app:1")
	if st.Verdict.State != gate.StatePass || len(st.Verdict.Reasons) != 0 {
		t.Fatalf("verdict of a clean scan: %+v, want pass", st.Verdict)
	}
	if len(st.Scan.Platforms) != 1 || st.Scan.Platforms[0].Status != scan.StatusOK || !st.Scan.ScannedAt.Equal(t0) {
		t.Errorf("scan summary %+v", st.Scan)
	}

	f.clock.Advance(time.Minute)
	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Source != "quarantine/app:1" || p.Target != "live/app:1" || p.Digest != d || p.Verdict.State != gate.StatePass || p.Copy.Digest != img.Digest {
		t.Errorf("promotion %+v", p)
	}
	if len(p.Copy.Referrers) != 1 || p.Copy.Referrers[0].Digest != sbom.Digest || p.Copy.Referrers[0].ArtifactType != "application/spdx+json" {
		t.Errorf("copied referrers %+v, want the SBOM %s", p.Copy.Referrers, sbom.Digest)
	}
	_, srcBody, err := f.reg.Manifest(ctx, "quarantine/app", "1")
	if err != nil {
		t.Fatal(err)
	}
	desc, body, err := f.reg.Manifest(ctx, "live/app", "1")
	if err != nil || desc.Digest != img.Digest || string(body) != string(srcBody) {
		t.Errorf("live/app:1 = %v, %v; want %s with the same bytes", desc.Digest, err, d)
	}
	refs, err := f.reg.Referrers(ctx, "live/app", img.Digest, "")
	if err != nil || len(refs) != 1 || refs[0].Digest != sbom.Digest {
		t.Errorf("referrers in live/app: %+v, %v; want the SBOM", refs, err)
	}
	im := f.image(d)
	if !im.Promoted || im.Verdict.State != gate.StatePass || !im.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("stored image %+v, want promoted at %s", im, t0.Add(time.Minute))
	}
	es := f.auditEntries(audit.ActionPromotion, d)
	if len(es) != 1 || es[0].Outcome != audit.OutcomeOK || es[0].Actor != "bob" || es[0].Repository != "live/app" || es[0].Reference != "1" {
		t.Errorf("promotion audit entries %+v, want one ok", es)
	}
	ev := f.events.ofType(events.TypePromotion)
	if len(ev) != 1 || ev[0].Subject != "live/app@"+d || !ev[0].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("promotion events %+v", ev)
	}
	// Asking through live/ decides the same digest's verdict, for its
	// quarantine/ repository: nothing changes, nothing is announced.
	before := len(f.auditEntries(audit.ActionVerdict, d))
	if st := f.verdict("live/app:1"); st.Verdict.State != gate.StatePass || f.image(d).Repository != "quarantine/app" {
		t.Errorf("verdict through live/: %+v", st.Verdict)
	}
	if after := len(f.auditEntries(audit.ActionVerdict, d)); after != before {
		t.Errorf("a verdict read through live/ added %d verdict audit entries", after-before)
	}
	if st := f.verdict("quarantine/app:1"); !st.Promoted {
		t.Error("status does not show the promotion")
	}

	// More targets for the same passing digest.
	tests := []struct {
		req      PromoteRequest
		repo     string
		tag      string // "" = no tag in the target
		wantName string
	}{
		{PromoteRequest{Source: "quarantine/app@" + d, Target: "live/pinned"}, "live/pinned", "", "live/pinned"},
		{PromoteRequest{Source: "quarantine/app@" + d, Target: "live/team/app:stable"}, "live/team/app", "stable", "live/team/app:stable"},
		{PromoteRequest{Source: "quarantine/app:1", Target: "live/web"}, "live/web", "1", "live/web:1"},
	}
	for _, tt := range tests {
		p, err := f.k.Promote(ctx, tt.req)
		if err != nil {
			t.Errorf("Promote(%+v): %v", tt.req, err)
			continue
		}
		if p.Target != tt.wantName || p.Digest != d {
			t.Errorf("Promote(%+v) target %s digest %s, want %s", tt.req, p.Target, p.Digest, tt.wantName)
		}
		if _, _, err := f.reg.Manifest(ctx, tt.repo, d); err != nil {
			t.Errorf("%s@%s: %v", tt.repo, d, err)
		}
		for _, tag := range []string{"1", "stable"} {
			_, _, err := f.reg.Manifest(ctx, tt.repo, tag)
			if found := err == nil; found != (tag == tt.tag) {
				t.Errorf("%s:%s found %v (err %v), want %v", tt.repo, tag, found, err, tag == tt.tag)
			}
		}
		if refs, err := f.reg.Referrers(ctx, tt.repo, img.Digest, ""); err != nil || len(refs) != 1 {
			t.Errorf("referrers in %s: %+v, %v", tt.repo, refs, err)
		}
	}
	if n := len(f.events.ofType(events.TypePromotion)); n != 1+len(tests) {
		t.Errorf("%d promotion events, want %d", n, 1+len(tests))
	}
}

func TestGraceWindowThroughReevaluate(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.putScan("quarantine/app", d, highFinding)
	oldHash := sha256Hex(lenientPolicy)

	if st := f.verdict("quarantine/app:1"); st.Verdict.State != gate.StatePass || st.PolicyHash != oldHash || st.Policy != f.policy.path {
		t.Fatalf("HIGH finding under maxSeverity CRITICAL: %+v", st)
	}
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	newText := f.policy.write(stricterGrace)
	f.clock.Advance(time.Hour)
	changedAt := f.clock.Now()

	v, err := f.k.Reevaluate(ctx, "quarantine/app", d)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != gate.StatePass || v.PendingFlip == nil || v.PendingFlip.To != gate.StateFail ||
		!v.PendingFlip.FirstSeen.Equal(changedAt) || !v.PendingFlip.EffectiveAt.Equal(changedAt.Add(24*time.Hour)) ||
		!hasRule(v, gate.RuleGraceWindow) {
		t.Fatalf("inside the grace window: %+v, want pass with a pending flip at %s", v, changedAt.Add(24*time.Hour))
	}

	es := f.auditEntries(audit.ActionPolicyChange, "")
	if len(es) != 2 {
		t.Fatalf("policy_change entries %+v, want the first policy and the change", es)
	}
	var detail struct{ Path, Sha256, Previous string }
	if err := json.Unmarshal(es[1].Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if es[1].Outcome != audit.OutcomeOK || es[1].Actor != ActorGate || detail.Path != f.policy.path ||
		detail.Sha256 != sha256Hex(newText) || detail.Previous != oldHash {
		t.Errorf("policy change entry %+v detail %+v; want %s -> %s", es[1], detail, oldHash, sha256Hex(newText))
	}

	steps := []struct {
		advance  time.Duration // from changedAt
		want     gate.State
		wantFlip bool
	}{
		{12 * time.Hour, gate.StatePass, true},
		{24*time.Hour - time.Second, gate.StatePass, true},
		{24 * time.Hour, gate.StateFail, false},
		{48 * time.Hour, gate.StateFail, false},
	}
	for _, s := range steps {
		f.clock.Set(changedAt.Add(s.advance))
		v, err := f.k.Reevaluate(ctx, "quarantine/app", d)
		if err != nil {
			t.Fatal(err)
		}
		if v.State != s.want || (v.PendingFlip != nil) != s.wantFlip {
			t.Errorf("+%s: %s, pending flip %v; want %s, %v", s.advance, v.State, v.PendingFlip != nil, s.want, s.wantFlip)
		}
	}
	im := f.image(d)
	if im.Verdict.State != gate.StateFail || !im.Promoted || !hasRule(im.Verdict, gate.RuleMaxSeverity) ||
		!slices.Contains(im.Verdict.Reasons[0].Findings, "CVE-2024-1 libx@1") {
		t.Errorf("stored verdict after the window %+v", im)
	}
	if got := f.events.verdictEvents(d); !slices.Equal(got, []gate.State{gate.StatePass, gate.StatePass, gate.StateFail}) {
		t.Errorf("verdict events %v, want pass, pass (flip pending), fail", got)
	}
	if n := len(f.auditEntries(audit.ActionPolicyChange, "")); n != 2 {
		t.Errorf("%d policy_change entries for an unchanged policy, want 2", n)
	}
	_, err = f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Target: "live/app:again"})
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "CVE-2024-1 libx@1") {
		t.Errorf("promotion after the flip: %v, want a refusal naming the finding", err)
	}
}

func TestBrokenPolicyFailsClosed(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.putScan("quarantine/app", d)
	steps := []struct {
		name        string
		policy      string // "" = delete the file
		want        gate.State
		wantOutcome string // of the policy_change entry this step adds
	}{
		{"valid", lenientPolicy, gate.StatePass, audit.OutcomeOK},
		{"invalid", "version: v1\nmaxSeverity: SEVERE\n", gate.StateFail, audit.OutcomeError},
		{"fixed", "version: v1\nmaxSeverity: HIGH\n", gate.StatePass, audit.OutcomeOK},
		{"deleted", "", gate.StateFail, audit.OutcomeError},
		{"restored", lenientPolicy, gate.StatePass, audit.OutcomeOK},
	}
	for i, s := range steps {
		switch {
		case i == 0:
		case s.policy == "":
			if err := os.Remove(f.policy.path); err != nil {
				t.Fatal(err)
			}
		default:
			f.policy.write(s.policy)
		}
		st := f.verdict("quarantine/app:1")
		if st.Verdict.State != s.want {
			t.Errorf("%s: %+v, want %s", s.name, st.Verdict, s.want)
		}
		if s.want == gate.StateFail && !hasRule(st.Verdict, gate.RulePolicy) {
			t.Errorf("%s: fail without the policy rule: %+v", s.name, st.Verdict)
		}
		es := f.auditEntries(audit.ActionPolicyChange, "")
		if got := outcomes(es); len(got) != i+1 || got[i] != s.wantOutcome {
			t.Errorf("%s: policy_change outcomes %v, want %d ending in %s", s.name, got, i+1, s.wantOutcome)
		}
	}
}

// TestScanFallsBackToLive: a promoted digest deleted from quarantine/ is
// still scanned, from live/ (here the scan stops for want of a database,
// which shows it found the image; a digest gone from both is skipped).
func TestScanFallsBackToLive(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	f.putScan("quarantine/app", d)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.DeleteManifest(ctx, "quarantine/app", img.Digest); err != nil {
		t.Fatal(err)
	}
	err := f.k.runScan(ctx, ScanArgs{Repository: "quarantine/app", Digest: d, Reason: "db-update"})
	if !errors.Is(err, errNoDB) {
		t.Fatalf("scan of a promoted digest gone from quarantine/: %v, want it scanned from live/ (no database)", err)
	}
	if err := f.reg.DeleteManifest(ctx, "live/app", img.Digest); err != nil {
		t.Fatal(err)
	}
	if err := f.k.runScan(ctx, ScanArgs{Repository: "quarantine/app", Digest: d, Reason: "db-update"}); err != nil {
		t.Fatalf("scan of a digest gone from both: %v, want it skipped", err)
	}
}
