package osv

import (
	"testing"

	"github.com/drydock-project/drydock/internal/vulndb"
)

func TestCVSS3BaseScore(t *testing.T) {
	// Scores from FIRST's CVSS v3.1 calculator / NVD for well-known vectors.
	tests := []struct {
		vector string
		want   float64
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", 5.9},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1},
		{"CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", 5.5},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 6.5},
		{"CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:N/I:N/A:H", 4.7},
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0},
		// Temporal metrics are ignored.
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O", 9.8},
	}
	for _, tc := range tests {
		got, err := cvss3BaseScore(tc.vector)
		if err != nil || got != tc.want {
			t.Errorf("cvss3BaseScore(%q) = %v, %v; want %v", tc.vector, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"", "CVSS:2.0/AV:N", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", // missing A
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:N/AC/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
	} {
		if _, err := cvss3BaseScore(bad); err == nil {
			t.Errorf("cvss3BaseScore(%q) succeeded, want an error", bad)
		}
	}
}

func TestScoreSeverity(t *testing.T) {
	for score, want := range map[float64]vulndb.Severity{
		0: vulndb.SeverityLow, 3.9: vulndb.SeverityLow, 4.0: vulndb.SeverityMedium,
		6.9: vulndb.SeverityMedium, 7.0: vulndb.SeverityHigh, 8.9: vulndb.SeverityHigh,
		9.0: vulndb.SeverityCritical, 10: vulndb.SeverityCritical,
	} {
		if got := scoreSeverity(score); got != want {
			t.Errorf("scoreSeverity(%v) = %s, want %s", score, got, want)
		}
	}
}

func FuzzCVSS3BaseScore(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N/E:X")
	f.Add("CVSS:3.1//")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := cvss3BaseScore(v)
		if err == nil && (s < 0 || s > 10) {
			t.Fatalf("score %v out of range for %q", s, v)
		}
	})
}
