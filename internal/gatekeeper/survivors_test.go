package gatekeeper

// Tests added for mutants that survived `make mutate` (sixth pass; see
// test/mutation/SURVIVORS.md).

import (
	"fmt"
	"testing"

	"github.com/drydock-project/drydock/internal/gate"
)

// TestRefusedErrorListsFiveFindings: a refusal names a reason's first
// five findings and counts the rest; a reason without findings names
// none.
func TestRefusedErrorListsFiveFindings(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("CVE-2025-%d", i+1)
		}
		return out
	}
	const head = "promotion of quarantine/a:1 (sha256:d) refused: verdict is fail; max-severity: too severe"
	for _, c := range []struct {
		findings []string
		want     string
	}{
		{nil, head},
		{ids(1), head + " (CVE-2025-1)"},
		{ids(5), head + " (CVE-2025-1, CVE-2025-2, CVE-2025-3, CVE-2025-4, CVE-2025-5)"},
		{ids(6), head + " (CVE-2025-1, CVE-2025-2, CVE-2025-3, CVE-2025-4, CVE-2025-5, and 1 more)"},
		{ids(8), head + " (CVE-2025-1, CVE-2025-2, CVE-2025-3, CVE-2025-4, CVE-2025-5, and 3 more)"},
	} {
		e := &RefusedError{Source: "quarantine/a:1", Digest: "sha256:d", Verdict: gate.Verdict{State: gate.StateFail,
			Reasons: []gate.Reason{{Rule: "max-severity", Message: "too severe", Findings: c.findings}}}}
		if got := e.Error(); got != c.want {
			t.Errorf("%d findings:\n got %s\nwant %s", len(c.findings), got, c.want)
		}
	}
}
