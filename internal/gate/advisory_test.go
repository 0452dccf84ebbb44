package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/scan"
)

// TestAdvisoryExceptions: an exception written for the advisory that
// ships a fix (a DSA, DLA or GHSA id) covers every finding that advisory
// fixes, and nothing else; the finding's own ID and a VEX alias still match.
func TestAdvisoryExceptions(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	digest := "sha256:" + strings.Repeat("a", 64)
	mk := func(id string, aliases ...string) Exception {
		return Exception{ID: id, CVE: id, Aliases: aliases, Products: []Product{{Any: true}},
			Issued: now.Add(-time.Hour), Expires: now.Add(time.Hour)}
	}
	openssl := scan.Finding{VulnerabilityID: "CVE-2024-1", PkgName: "libssl3", SrcName: "openssl", InstalledVersion: "1",
		FixedVersion: "2", Severity: "HIGH", FixedBy: []string{"DSA-5555-1"}}
	openssl2 := scan.Finding{VulnerabilityID: "CVE-2024-2", PkgName: "libssl3", SrcName: "openssl", InstalledVersion: "1",
		FixedVersion: "2", Severity: "HIGH", FixedBy: []string{"DSA-5555-1", "DSA-5600-1"}}
	zlib := scan.Finding{VulnerabilityID: "CVE-2024-3", PkgName: "zlib1g", SrcName: "zlib", InstalledVersion: "1",
		FixedVersion: "2", Severity: "HIGH", FixedBy: []string{"DSA-5600-1"}}
	p := &Policy{MaxSeverity: "MEDIUM"}
	in := Input{Repository: "quarantine/app", Digest: digest}
	for _, tt := range []struct {
		name    string
		ex      []Exception
		fs      []scan.Finding
		want    State
		failing int
	}{
		{"the advisory covers both CVEs it fixes", []Exception{mk("DSA-5555-1")}, []scan.Finding{openssl, openssl2}, StateExempt, 0},
		{"not a CVE another advisory fixes", []Exception{mk("DSA-5555-1")}, []scan.Finding{openssl, zlib}, StateFail, 1},
		{"an advisory of a CVE shared with another", []Exception{mk("DSA-5600-1")}, []scan.Finding{openssl, openssl2, zlib}, StateFail, 1},
		{"an advisory id is matched exactly", []Exception{mk("DSA-5555")}, []scan.Finding{openssl}, StateFail, 1},
		{"the CVE itself", []Exception{mk("CVE-2024-1")}, []scan.Finding{openssl}, StateExempt, 0},
		{"a VEX alias", []Exception{mk("GHSA-xxxx-yyyy-zzzz", "CVE-2024-3")}, []scan.Finding{zlib}, StateExempt, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := &scan.Report{Status: scan.StatusOK, ScannedAt: now, Findings: tt.fs}
			v := Evaluate(p, rep, tt.ex, in, now)
			if v.State != tt.want {
				t.Fatalf("verdict %s, want %s: %+v", v.State, tt.want, v.Reasons)
			}
			failing := 0
			for _, r := range v.Reasons {
				if r.Rule == RuleMaxSeverity {
					failing = len(r.Findings)
				}
			}
			if failing != tt.failing {
				t.Fatalf("%d failing findings, want %d: %+v", failing, tt.failing, v.Reasons)
			}
		})
	}
}
