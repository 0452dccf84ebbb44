package gate

import (
	"strings"
	"testing"
	"time"
)

// Tests written for mutants that survived `make mutate` (see
// test/mutation/SURVIVORS.md).

// TestPolicySizeLimitBoundary: a policy of exactly maxPolicySize bytes is
// read whole; one byte more is refused, never parsed truncated.
func TestPolicySizeLimitBoundary(t *testing.T) {
	body := "version: v1\nmaxSeverity: HIGH\n"
	pad := func(n int) string { // a YAML comment filling the file to n bytes
		return body + "#" + strings.Repeat("x", n-len(body)-2) + "\n"
	}
	exact := pad(maxPolicySize)
	if len(exact) != maxPolicySize {
		t.Fatalf("built %d bytes", len(exact))
	}
	if _, err := LoadPolicy(strings.NewReader(exact)); err != nil {
		t.Errorf("policy of exactly %d bytes: %v", maxPolicySize, err)
	}
	over := pad(maxPolicySize + 1)
	probs, err := ValidatePolicy(strings.NewReader(over))
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0].Message, "larger than") {
		t.Errorf("policy of %d bytes: problems %v, err %v; want one 'larger than'", len(over), probs, err)
	}
}

// TestProblemString: the line is named only when known.
func TestProblemString(t *testing.T) {
	for _, tc := range []struct {
		p    Problem
		want string
	}{
		{Problem{Field: "maxSeverity", Line: 3, Message: "unknown"}, "line 3: maxSeverity: unknown"},
		{Problem{Field: "maxSeverity", Message: "unknown"}, "maxSeverity: unknown"},
		{Problem{Line: 1, Message: "syntax"}, "line 1: syntax"},
		{Problem{Message: "policy is empty"}, "policy is empty"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestMaxScanAgeBoundary: a scan exactly maxScanAge old is still fresh;
// a nanosecond older fails. (gremlins counts switch-case lines as not
// covered; this mutant was planted by hand.)
func TestMaxScanAgeBoundary(t *testing.T) {
	p := policy(t, "maxSeverity: CRITICAL\nmaxScanAge: 24h\n")
	rep := bookworm()
	rep.Findings = nil
	at := rep.ScannedAt.Add(p.MaxScanAge)
	if v := Evaluate(p, rep, nil, in, at); v.State != StatePass {
		t.Errorf("scan exactly maxScanAge old: %s %+v, want pass", v.State, v.Reasons)
	}
	v := Evaluate(p, rep, nil, in, at.Add(time.Nanosecond))
	if v.State != StateFail || len(v.Reasons) != 1 || v.Reasons[0].Rule != RuleMaxScanAge {
		t.Errorf("scan a nanosecond older than maxScanAge: %s %+v, want fail on %s", v.State, v.Reasons, RuleMaxScanAge)
	}
}
