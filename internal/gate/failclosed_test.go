package gate

import (
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/scan"
)

// TestScanStatusFailsClosed: a report whose status is not one the gate
// knows (empty, misspelt, from a newer scanner) fails, even with nothing
// else against it, under the most permissive policy, and the reason names
// the status. Known statuses are the control: without findings ok passes,
// end_of_life passes unless blockEndOfLife, unsupported fails.
func TestScanStatusFailsClosed(t *testing.T) {
	permissive := policy(t, "maxSeverity: CRITICAL\nblockEndOfLife: false\n")
	clean := func(st scan.Status) *scan.Report {
		return &scan.Report{Status: st, OS: scan.OS{Family: "debian", ID: "debian", Version: "12.5", Release: "12"}, ScannedAt: scanTime}
	}
	tests := []struct {
		status   scan.Status
		want     State
		wantRule string
	}{
		{"", StateFail, RuleScan},
		{"OK", StateFail, RuleScan},
		{"error", StateFail, RuleScan},
		{"pending", StateFail, RuleScan},
		{"passed", StateFail, RuleScan},
		{scan.StatusUnsupported, StateFail, RuleUnsupported},
		{scan.StatusOK, StatePass, ""},
		{scan.StatusEndOfLife, StatePass, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.status), func(t *testing.T) {
			v := Evaluate(permissive, clean(tc.status), nil, in, now)
			if v.State != tc.want || v.Promotable() != (tc.want == StatePass) {
				t.Fatalf("status %q: %s (promotable %v), want %s: %+v", tc.status, v.State, v.Promotable(), tc.want, v.Reasons)
			}
			if tc.wantRule == "" {
				if len(v.Reasons) != 0 {
					t.Errorf("status %q: reasons %+v on a pass", tc.status, v.Reasons)
				}
				return
			}
			if len(v.Reasons) != 1 || v.Reasons[0].Rule != tc.wantRule {
				t.Fatalf("status %q: reasons %+v, want one %s reason", tc.status, v.Reasons, tc.wantRule)
			}
			if tc.wantRule == RuleScan && !strings.Contains(v.Reasons[0].Message, `"`+string(tc.status)+`"`) {
				t.Errorf("status %q: reason %q does not name the status", tc.status, v.Reasons[0].Message)
			}
		})
	}
}

// TestUnknownStatusFailsAtOnceWhenPromoted: the grace window is for new
// findings only; a promoted image whose rescan comes back with an unknown
// status fails at once.
func TestUnknownStatusFailsAtOnceWhenPromoted(t *testing.T) {
	p := policy(t, "maxSeverity: CRITICAL\ngraceWindow: 72h\n")
	prev := Evaluate(p, &scan.Report{Status: scan.StatusOK, ScannedAt: scanTime}, nil, in, now)
	if prev.State != StatePass {
		t.Fatalf("control: %s", prev.State)
	}
	next := Evaluate(p, &scan.Report{Status: "", ScannedAt: scanTime}, nil, in, now)
	eff, flip := Transition(prev, next, true, now, p.GraceWindow)
	if eff.State != StateFail || flip != nil || eff.Promotable() {
		t.Errorf("promoted image, rescan with an empty status: %s, flip %v; want fail at once", eff.State, flip)
	}
}
