package gate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/scan"
)

// State is a verdict's state.
type State string

// Verdict states. Only pass and exempt are promotable.
const (
	// StatePending: the scan is not done yet (the caller passes a nil
	// report). A scan that errored or is stuck past its time-out is a
	// fail, not pending (see ScanFailed); so is an unsupported image.
	StatePending State = "pending"
	StatePass    State = "pass"
	StateFail    State = "fail"
	// StateExempt: findings that would fail are all covered by unexpired
	// exceptions.
	StateExempt State = "exempt"
)

// Rules, as named in Reason.Rule.
const (
	RulePolicy         = "policy"
	RuleScan           = "scan"
	RuleUnsupported    = "unsupported"
	RuleMaxScanAge     = "maxScanAge"
	RuleBlockEndOfLife = "blockEndOfLife"
	RuleAllowedSources = "allowedSources"
	RuleMaxSeverity    = "maxSeverity"
	RuleException      = "exception"
	RuleGraceWindow    = "graceWindow"
	RulePromoted       = "promoted"
	// RuleRequireSignedBy refuses a promotion the policy's requireSignedBy
	// keys have not all signed (decided at promotion, not in the verdict).
	RuleRequireSignedBy = "requireSignedBy"
)

// Reason is why a verdict is what it is.
type Reason struct {
	Rule     string   `json:"rule"`
	Message  string   `json:"message"`
	Findings []string `json:"findings,omitempty"`
}

// Verdict is the gate's decision on one digest.
type Verdict struct {
	State   State    `json:"state"`
	Reasons []Reason `json:"reasons,omitempty"`
	// ExpiredExceptions are the IDs of exceptions that would have
	// covered a finding but have expired.
	ExpiredExceptions []string `json:"expiredExceptions,omitempty"`
	// Applied are the IDs of the exceptions that exempted a finding.
	Applied []string `json:"applied,omitempty"`
	// At is when the verdict was reached (Evaluate's now); the store keeps
	// the time it was first reached while it stays the same.
	At time.Time `json:"at"`
	// PendingFlip is a pass -> fail flip waiting out the grace window
	// (set by Transition).
	PendingFlip *Flip `json:"pendingFlip,omitempty"`
}

// Promotable reports whether the verdict lets the digest into live/.
func (v Verdict) Promotable() bool { return v.State == StatePass || v.State == StateExempt }

// Input is what the caller knows about the digest besides its report.
type Input struct {
	// Repository is the quarantine repository, e.g. "quarantine/nginx".
	Repository string
	// Digest is the manifest digest.
	Digest string
	// SourceRef is where it was imported from (matched by allowedSources).
	SourceRef string
	// ScannedAt is when the scan ran; zero means the report's ScannedAt.
	ScannedAt time.Time
}

// ScanFailed is the verdict for a digest whose scan errored or is stuck
// past its time-out: fail, with why. It is never promotable.
func ScanFailed(why string, now time.Time) Verdict {
	return Verdict{State: StateFail, At: now, Reasons: []Reason{{Rule: RuleScan, Message: "scan failed: " + why}}}
}

// findingID names a finding in reasons: "CVE-2023-4911 libc6@2.36-9".
func findingID(f scan.Finding) string {
	return fmt.Sprintf("%s %s@%s", f.VulnerabilityID, f.PkgName, f.InstalledVersion)
}

// Evaluate decides the verdict for one digest. It fails closed: a nil
// policy, an unsupported OS, a scan older than the policy's maxScanAge
// (or without a time when there is a limit), an end-of-life OS under
// blockEndOfLife and a disallowed source all fail. A nil report means the
// scan is not done yet: pending, unless something else already fails.
//
// Findings count unless the policy ignores their vendor status, or they
// are unfixed under fixableOnly, or their severity is at or below
// maxSeverity. Each counting finding is exempted by an applicable
// unexpired exception; if all are, the verdict is exempt, if there are
// none it is pass, else fail listing the findings. Output is sorted.
func Evaluate(p *Policy, rep *scan.Report, ex []Exception, in Input, now time.Time) Verdict {
	v := Verdict{At: now}
	fail := func(rule, format string, args ...any) {
		v.Reasons = append(v.Reasons, Reason{Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	if p == nil {
		fail(RulePolicy, "no policy: nothing is promotable")
		v.State = StateFail
		return v
	}
	if !p.sourceAllowed(in.SourceRef) {
		fail(RuleAllowedSources, "source %q matches none of the allowed sources", in.SourceRef)
	}
	if rep == nil {
		if len(v.Reasons) == 0 {
			v.State = StatePending
			v.Reasons = []Reason{{Rule: RuleScan, Message: "scan not done yet"}}
			return v
		}
		fail(RuleScan, "scan not done yet")
		return finish(v, StateFail)
	}
	if rep.Status == scan.StatusUnsupported {
		fail(RuleUnsupported, "the scanner does not support this image: %s", cmp.Or(rep.StatusReason, "no reason given"))
	} else if rep.Status != scan.StatusOK && rep.Status != scan.StatusEndOfLife {
		fail(RuleScan, "unknown scan status %q", rep.Status)
	}
	scannedAt := in.ScannedAt
	if scannedAt.IsZero() {
		scannedAt = rep.ScannedAt
	}
	if p.MaxScanAge > 0 {
		switch age := now.Sub(scannedAt); {
		case scannedAt.IsZero():
			fail(RuleMaxScanAge, "scan time unknown (maxScanAge %s)", p.MaxScanAge)
		case age > p.MaxScanAge:
			fail(RuleMaxScanAge, "scan is %s old, older than maxScanAge %s", age.Round(time.Second), p.MaxScanAge)
		}
	}
	if p.BlockEndOfLife && (rep.Status == scan.StatusEndOfLife || rep.OS.EOSL) {
		fail(RuleBlockEndOfLife, "%s is end-of-life", cmp.Or(strings.TrimSpace(rep.OS.ID+" "+rep.OS.Version), "the OS"))
	}

	var failing, exempted []string
	applied, expired := map[string]bool{}, map[string]bool{}
	for _, f := range rep.Findings {
		if !counts(p, f) {
			continue
		}
		id := findingID(f)
		covered := false
		for _, e := range ex {
			ok, exp := e.Covers(Subject{CVE: f.VulnerabilityID, Package: f.PkgName, Source: f.SrcName, Advisories: f.FixedBy}, in.Digest, in.Repository, now)
			if exp {
				expired[e.ID] = true
			}
			if ok {
				applied[e.ID] = true
				covered = true
			}
		}
		if covered {
			exempted = append(exempted, id)
		} else {
			failing = append(failing, id)
		}
	}
	v.Applied = sortedKeys(applied)
	v.ExpiredExceptions = sortedKeys(expired)
	if len(failing) > 0 {
		v.Reasons = append(v.Reasons, Reason{
			Rule:     RuleMaxSeverity,
			Message:  fmt.Sprintf("%d finding(s) above %s without an exception", len(failing), p.MaxSeverity),
			Findings: sortedUnique(failing),
		})
	}
	if len(exempted) > 0 {
		v.Reasons = append(v.Reasons, Reason{
			Rule:     RuleException,
			Message:  fmt.Sprintf("%d finding(s) above %s covered by exceptions", len(exempted), p.MaxSeverity),
			Findings: sortedUnique(exempted),
		})
	}
	switch {
	case slices.ContainsFunc(v.Reasons, func(r Reason) bool { return r.Rule != RuleException }):
		return finish(v, StateFail)
	case len(exempted) > 0:
		return finish(v, StateExempt)
	default:
		return finish(v, StatePass)
	}
}

// counts reports whether the policy counts a finding against the image.
func counts(p *Policy, f scan.Finding) bool {
	if slices.Contains(p.IgnoreStatuses, f.Status) {
		return false
	}
	if p.FixableOnly && !f.Fixable() {
		return false
	}
	return rank(f.Severity) > rank(p.MaxSeverity)
}

// finish sets the state and sorts the reasons.
func finish(v Verdict, s State) Verdict {
	v.State = s
	slices.SortFunc(v.Reasons, func(a, b Reason) int {
		return cmp.Or(strings.Compare(a.Rule, b.Rule), strings.Compare(a.Message, b.Message))
	})
	return v
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// Flip is a pass -> fail change waiting out the grace window.
type Flip struct {
	From State `json:"from"`
	To   State `json:"to"`
	// FirstSeen is when the failing verdict was first seen, EffectiveAt
	// when it takes effect (FirstSeen + grace).
	FirstSeen   time.Time `json:"firstSeen"`
	EffectiveAt time.Time `json:"effectiveAt"`
	// Reasons are the coming verdict's reasons.
	Reasons []Reason `json:"reasons,omitempty"`
}

// Transition applies verdict stability to a new verdict. prev is the
// stored effective verdict (zero State if none), next a fresh Evaluate
// result, promoted whether the digest is already in live/.
//
//   - A promoted image never goes back to pending: if next is pending,
//     prev is kept with a RulePromoted reason.
//   - For a promoted image (one in use), a flip from pass or exempt to
//     fail caused only by findings (RuleMaxSeverity, e.g. a rescan after
//     a DB update) takes effect grace after it was first seen. An image
//     not promoted yet fails at once: the window keeps what is running
//     usable, it does not let new images in. Until then prev is kept, with a
//     RuleGraceWindow reason and PendingFlip set, and the flip is also
//     returned. FirstSeen carries over from prev.PendingFlip. Other
//     failures (source, EOL, stale scan, unsupported) apply at once, and
//     so does a fail with expired exceptions: an expiry is a deadline
//     the exception's author chose, not a surprise from a DB update.
//   - Anything else: next takes effect.
func Transition(prev, next Verdict, promoted bool, now time.Time, grace time.Duration) (Verdict, *Flip) {
	if next.State == StatePending && promoted && prev.State != "" && prev.State != StatePending {
		eff := prev
		eff.Reasons = append(withoutRule(prev.Reasons, RulePromoted), Reason{
			Rule:    RulePromoted,
			Message: fmt.Sprintf("already promoted: keeps its %s verdict while the rescan is pending", prev.State),
		})
		return finish(eff, eff.State), prev.PendingFlip
	}
	if !promoted || !prev.Promotable() || next.State != StateFail || grace <= 0 || !findingsOnly(next) || len(next.ExpiredExceptions) > 0 {
		next.PendingFlip = nil
		return next, nil
	}
	first := now
	if prev.PendingFlip != nil && prev.PendingFlip.To == StateFail {
		first = prev.PendingFlip.FirstSeen
	}
	effAt := first.Add(grace)
	if !now.Before(effAt) {
		next.PendingFlip = nil
		return next, nil
	}
	flip := &Flip{From: prev.State, To: StateFail, FirstSeen: first, EffectiveAt: effAt, Reasons: next.Reasons}
	eff := prev
	eff.PendingFlip = flip
	eff.Reasons = append(withoutRule(prev.Reasons, RuleGraceWindow), Reason{
		Rule:    RuleGraceWindow,
		Message: fmt.Sprintf("a rescan fails; the fail takes effect at %s", effAt.UTC().Format(time.RFC3339)),
	})
	return finish(eff, eff.State), flip
}

// findingsOnly reports whether every reason for v is about findings.
func findingsOnly(v Verdict) bool {
	for _, r := range v.Reasons {
		if r.Rule != RuleMaxSeverity && r.Rule != RuleException {
			return false
		}
	}
	return true
}

func withoutRule(rs []Reason, rule string) []Reason {
	return slices.DeleteFunc(slices.Clone(rs), func(r Reason) bool { return r.Rule == rule })
}
