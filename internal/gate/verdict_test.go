package gate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/vulndb"
)

var (
	scanTime = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	now      = scanTime.Add(time.Hour)
	in       = Input{Repository: "quarantine/app", Digest: digestA, SourceRef: "docker.io/library/debian:bookworm"}
)

func finding(cve, pkg string, sev vulndb.Severity, fixed string, st vulndb.Status) scan.Finding {
	return scan.Finding{VulnerabilityID: cve, PkgName: pkg, InstalledVersion: "1.0", SrcName: pkg,
		SrcVersion: "1.0", FixedVersion: fixed, Status: st, Severity: sev}
}

// bookworm is a hand-built report of a vulnerable bookworm image.
func bookworm() *scan.Report {
	return &scan.Report{
		Status:    scan.StatusOK,
		OS:        scan.OS{Family: "debian", ID: "debian", Version: "12.5", Release: "12"},
		ScannedAt: scanTime,
		Findings: []scan.Finding{
			finding("CVE-2023-0003", "zlib1g", vulndb.SeverityCritical, "", vulndb.StatusWillNotFix),
			finding("CVE-2023-0001", "libc6", vulndb.SeverityCritical, "2.36-9+deb12u4", vulndb.StatusFixed),
			finding("CVE-2023-0002", "openssl", vulndb.SeverityHigh, "", vulndb.StatusAffected),
			finding("CVE-2023-0004", "curl", vulndb.SeverityLow, "", vulndb.StatusNoDSA),
		},
	}
}

func policy(t *testing.T, yaml string) *Policy {
	t.Helper()
	p, err := LoadPolicy(strings.NewReader("version: v1\n" + yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func exceptions(t *testing.T, expires string, cves ...string) []Exception {
	t.Helper()
	var st []string
	for _, c := range cves {
		st = append(st, stmt(c, digestA, expires))
	}
	ex, err := LoadExceptions(strings.NewReader(vexDoc(st...)))
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestEvaluate(t *testing.T) {
	strict := policy(t, "maxSeverity: LOW\nmaxScanAge: 24h\n")
	lenient := policy(t, "maxSeverity: CRITICAL\nfixableOnly: true\nignoreStatuses: [will_not_fix]\n")
	const exp = "2027-01-01T00:00:00Z"
	all := exceptions(t, exp, "CVE-2023-0001", "CVE-2023-0002", "CVE-2023-0003")
	expiry := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	eol := bookworm()
	eol.Status, eol.OS.EOSL = scan.StatusEndOfLife, true
	clean := bookworm()
	clean.Findings = nil
	unsupported := &scan.Report{Status: scan.StatusUnsupported, StatusReason: "no OS detected", ScannedAt: scanTime}

	tests := []struct {
		name    string
		p       *Policy
		rep     *scan.Report
		ex      []Exception
		in      Input
		now     time.Time
		want    State
		rules   []string
		finds   []string // findings of the first reason
		expired []string
		applied []string
	}{
		{name: "lenient pass", p: lenient, rep: bookworm(), in: in, now: now, want: StatePass},
		{name: "strict fail", p: strict, rep: bookworm(), in: in, now: now, want: StateFail, rules: []string{RuleMaxSeverity},
			finds: []string{"CVE-2023-0001 libc6@1.0", "CVE-2023-0002 openssl@1.0", "CVE-2023-0003 zlib1g@1.0"}},
		{name: "strict exempt", p: strict, rep: bookworm(), ex: all, in: in, now: now, want: StateExempt, rules: []string{RuleException},
			finds:   []string{"CVE-2023-0001 libc6@1.0", "CVE-2023-0002 openssl@1.0", "CVE-2023-0003 zlib1g@1.0"},
			applied: []string{"https://example.com/vex/1#0", "https://example.com/vex/1#1", "https://example.com/vex/1#2"}},
		{name: "partly exempt", p: strict, rep: bookworm(), ex: all[:2], in: in, now: now, want: StateFail,
			rules: []string{RuleException, RuleMaxSeverity}, finds: []string{"CVE-2023-0001 libc6@1.0", "CVE-2023-0002 openssl@1.0"},
			applied: []string{"https://example.com/vex/1#0", "https://example.com/vex/1#1"}},
		{name: "exceptions expired", p: policy(t, "maxSeverity: LOW\n"), rep: bookworm(), ex: all, in: in, now: expiry, want: StateFail,
			rules: []string{RuleMaxSeverity}, finds: []string{"CVE-2023-0001 libc6@1.0", "CVE-2023-0002 openssl@1.0", "CVE-2023-0003 zlib1g@1.0"},
			expired: []string{"https://example.com/vex/1#0", "https://example.com/vex/1#1", "https://example.com/vex/1#2"}},
		{name: "exception for other digest", p: strict, rep: bookworm(), ex: all, in: Input{Repository: "quarantine/app", Digest: digestB},
			now: now, want: StateFail, rules: []string{RuleMaxSeverity},
			finds: []string{"CVE-2023-0001 libc6@1.0", "CVE-2023-0002 openssl@1.0", "CVE-2023-0003 zlib1g@1.0"}},
		{name: "clean pass", p: strict, rep: clean, in: in, now: now, want: StatePass},
		{name: "eol blocked", p: lenient, rep: eol, in: in, now: now, want: StateFail, rules: []string{RuleBlockEndOfLife}},
		{name: "eol allowed", p: policy(t, "maxSeverity: CRITICAL\nblockEndOfLife: false\n"), rep: eol, in: in, now: now, want: StatePass},
		{name: "unsupported", p: lenient, rep: unsupported, in: in, now: now, want: StateFail, rules: []string{RuleUnsupported}},
		{name: "stale scan", p: strict, rep: clean, in: in, now: scanTime.Add(25 * time.Hour), want: StateFail, rules: []string{RuleMaxScanAge}},
		{name: "input scan time wins", p: strict, rep: clean, in: Input{Digest: digestA, ScannedAt: scanTime.Add(24 * time.Hour)},
			now: scanTime.Add(25 * time.Hour), want: StatePass},
		{name: "scan time unknown", p: strict, rep: &scan.Report{Status: scan.StatusOK}, in: in, now: now, want: StateFail, rules: []string{RuleMaxScanAge}},
		{name: "pending", p: strict, in: in, now: now, want: StatePending, rules: []string{RuleScan}},
		{name: "disallowed source", p: policy(t, "maxSeverity: CRITICAL\nallowedSources: ['^ghcr\\.io/acme/']\n"), rep: clean, in: in, now: now,
			want: StateFail, rules: []string{RuleAllowedSources}},
		{name: "disallowed source, pending", p: policy(t, "maxSeverity: CRITICAL\nallowedSources: ['^ghcr\\.io/acme/']\n"), in: in, now: now,
			want: StateFail, rules: []string{RuleAllowedSources, RuleScan}},
		{name: "allowed source", p: policy(t, "maxSeverity: CRITICAL\nallowedSources: ['^docker\\.io/library/']\n"), rep: clean, in: in, now: now, want: StatePass},
		{name: "no policy", rep: clean, in: in, now: now, want: StateFail, rules: []string{RulePolicy}},
		{name: "unknown severity fails closed", p: policy(t, "maxSeverity: HIGH\n"),
			rep: &scan.Report{Status: scan.StatusOK, Findings: []scan.Finding{finding("CVE-9", "x", "WEIRD", "", vulndb.StatusAffected)}},
			in:  in, now: now, want: StateFail, rules: []string{RuleMaxSeverity}, finds: []string{"CVE-9 x@1.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Evaluate(tt.p, tt.rep, tt.ex, tt.in, tt.now)
			if v.State != tt.want {
				t.Errorf("state = %s, want %s (%+v)", v.State, tt.want, v.Reasons)
			}
			var rules []string
			for _, r := range v.Reasons {
				rules = append(rules, r.Rule)
			}
			if !reflect.DeepEqual(rules, tt.rules) {
				t.Errorf("rules = %v, want %v (%+v)", rules, tt.rules, v.Reasons)
			}
			if tt.finds != nil && !reflect.DeepEqual(v.Reasons[0].Findings, tt.finds) {
				t.Errorf("findings = %v, want %v", v.Reasons[0].Findings, tt.finds)
			}
			if !reflect.DeepEqual(v.ExpiredExceptions, tt.expired) {
				t.Errorf("expired = %v, want %v", v.ExpiredExceptions, tt.expired)
			}
			if !reflect.DeepEqual(v.Applied, tt.applied) {
				t.Errorf("applied = %v, want %v", v.Applied, tt.applied)
			}
			if v.Promotable() != (tt.want == StatePass || tt.want == StateExempt) {
				t.Errorf("Promotable = %v for %s", v.Promotable(), v.State)
			}
			// Deterministic: same inputs, same verdict.
			if again := Evaluate(tt.p, tt.rep, tt.ex, tt.in, tt.now); !reflect.DeepEqual(v, again) {
				t.Errorf("not deterministic:\n%+v\n%+v", v, again)
			}
		})
	}
}

func TestScanFailed(t *testing.T) {
	v := ScanFailed("timed out after 30m", now)
	if v.State != StateFail || v.Promotable() || v.Reasons[0].Rule != RuleScan {
		t.Errorf("ScanFailed = %+v", v)
	}
}

func TestTransition(t *testing.T) {
	strict := policy(t, "maxSeverity: LOW\n")
	const grace = 72 * time.Hour
	t0 := now
	pass := Evaluate(strict, &scan.Report{Status: scan.StatusOK, ScannedAt: scanTime}, nil, in, t0)
	fail := func(at time.Time) Verdict { return Evaluate(strict, bookworm(), nil, in, at) }

	// A rescan fails: pass is kept, the flip is visible.
	eff, flip := Transition(pass, fail(t0), true, t0, grace)
	if eff.State != StatePass || flip == nil || !flip.FirstSeen.Equal(t0) || !flip.EffectiveAt.Equal(t0.Add(grace)) {
		t.Fatalf("first fail: %+v, flip %+v", eff, flip)
	}
	if eff.PendingFlip == nil || eff.Reasons[len(eff.Reasons)-1].Rule != RuleGraceWindow || len(flip.Reasons) == 0 {
		t.Errorf("coming flip not visible: %+v", eff)
	}
	// Still failing before the window ends: FirstSeen carries over.
	mid := t0.Add(grace - time.Minute)
	eff, flip = Transition(eff, fail(mid), true, mid, grace)
	if eff.State != StatePass || flip == nil || !flip.FirstSeen.Equal(t0) {
		t.Fatalf("inside window: %+v, flip %+v", eff, flip)
	}
	// After the window: fail.
	end := t0.Add(grace)
	eff, flip = Transition(eff, fail(end), true, end, grace)
	if eff.State != StateFail || flip != nil || eff.PendingFlip != nil {
		t.Fatalf("after window: %+v, flip %+v", eff, flip)
	}

	// A pass in the window cancels the flip.
	eff, _ = Transition(pass, fail(t0), true, t0, grace)
	eff, flip = Transition(eff, pass, true, mid, grace)
	if eff.State != StatePass || flip != nil || eff.PendingFlip != nil {
		t.Errorf("recovered: %+v, flip %+v", eff, flip)
	}

	// Not promoted: the window does not apply, the fail is at once.
	if eff, flip := Transition(pass, fail(t0), false, t0, grace); eff.State != StateFail || flip != nil {
		t.Errorf("unpromoted pass -> fail delayed: %+v", eff)
	}
	// No grace window: at once.
	if eff, flip := Transition(pass, fail(t0), true, t0, 0); eff.State != StateFail || flip != nil {
		t.Errorf("no grace: %+v", eff)
	}
	// fail -> fail and first verdicts are not delayed.
	if eff, _ := Transition(Verdict{}, fail(t0), false, t0, grace); eff.State != StateFail {
		t.Errorf("first verdict delayed: %+v", eff)
	}
	// Expired exceptions are not delayed: exempt -> fail at the expiry.
	ex := exceptions(t, "2027-01-01T00:00:00Z", "CVE-2023-0001", "CVE-2023-0002", "CVE-2023-0003")
	expiry := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	exempt := Evaluate(strict, bookworm(), ex, in, t0)
	if exempt.State != StateExempt {
		t.Fatalf("exempt = %+v", exempt)
	}
	if eff, flip := Transition(exempt, Evaluate(strict, bookworm(), ex, in, expiry), true, expiry, grace); eff.State != StateFail || flip != nil {
		t.Errorf("expiry delayed: %+v", eff)
	}
	// Non-finding failures (e.g. a stale scan) are not delayed.
	stale := Evaluate(policy(t, "maxSeverity: LOW\nmaxScanAge: 1h\n"), &scan.Report{Status: scan.StatusOK, ScannedAt: scanTime}, nil, in, t0.Add(48*time.Hour))
	if eff, flip := Transition(pass, stale, true, t0.Add(48*time.Hour), grace); eff.State != StateFail || flip != nil {
		t.Errorf("stale delayed: %+v", eff)
	}
}

func TestTransitionNeverBackToPending(t *testing.T) {
	strict := policy(t, "maxSeverity: LOW\n")
	pass := Evaluate(strict, &scan.Report{Status: scan.StatusOK, ScannedAt: scanTime}, nil, in, now)
	pending := Evaluate(strict, nil, nil, in, now.Add(time.Hour))
	if pending.State != StatePending {
		t.Fatalf("pending = %+v", pending)
	}
	eff, _ := Transition(pass, pending, true, now.Add(time.Hour), time.Hour)
	if eff.State != StatePass || eff.Reasons[len(eff.Reasons)-1].Rule != RulePromoted {
		t.Errorf("promoted went to %+v", eff)
	}
	// Twice: the reason is not duplicated.
	eff, _ = Transition(eff, pending, true, now.Add(2*time.Hour), time.Hour)
	if n := len(eff.Reasons); n != 1 {
		t.Errorf("reasons = %+v", eff.Reasons)
	}
	// Not promoted: pending is shown.
	if eff, _ := Transition(pass, pending, false, now.Add(time.Hour), time.Hour); eff.State != StatePending {
		t.Errorf("unpromoted: %+v", eff)
	}
	// A promoted image with a flip in flight keeps it while pending.
	fail := Evaluate(strict, bookworm(), nil, in, now)
	waiting, flip := Transition(pass, fail, true, now, 72*time.Hour)
	eff, kept := Transition(waiting, pending, true, now.Add(time.Hour), 72*time.Hour)
	if eff.State != StatePass || kept == nil || !kept.FirstSeen.Equal(flip.FirstSeen) {
		t.Errorf("flip lost while pending: %+v, %+v", eff, kept)
	}
}

func TestEvaluateFilters(t *testing.T) {
	// HIGH allowed, fixable only, will_not_fix ignored: only the fixable
	// CRITICAL libc6 finding counts.
	p := policy(t, "maxSeverity: HIGH\nfixableOnly: true\nignoreStatuses: [will_not_fix]\n")
	v := Evaluate(p, bookworm(), nil, in, now)
	if v.State != StateFail || !reflect.DeepEqual(v.Reasons[0].Findings, []string{"CVE-2023-0001 libc6@1.0"}) {
		t.Errorf("verdict = %+v", v)
	}
	// Without fixableOnly, the unfixed CRITICAL zlib1g counts unless its
	// will_not_fix status is ignored.
	p = policy(t, "maxSeverity: HIGH\n")
	v = Evaluate(p, bookworm(), nil, in, now)
	if !reflect.DeepEqual(v.Reasons[0].Findings, []string{"CVE-2023-0001 libc6@1.0", "CVE-2023-0003 zlib1g@1.0"}) {
		t.Errorf("verdict = %+v", v)
	}
}
