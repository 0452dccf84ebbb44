package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/scan"
)

// TestPackageExceptions: drydock's "package" extension and the product
// "*" of the exceptions documents, and their effect on verdicts.
func TestPackageExceptions(t *testing.T) {
	doc := `{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","author":"a","timestamp":"2026-11-01T00:00:00Z",
"statements":[
 {"vulnerability":{"name":"*"},"products":[{"@id":"*"}],"status":"not_affected","justification":"component_not_present","expires":"2027-01-01T00:00:00Z","package":"glibc"},
 {"vulnerability":{"name":"CVE-2024-2"},"products":[{"@id":"quarantine/app"}],"status":"not_affected","justification":"component_not_present","expires":"2027-01-01T00:00:00Z","package":"zlib1g"}]}`
	ex, err := LoadExceptions(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ex[0].CVE != "" || ex[0].Package != "glibc" || !ex[0].Products[0].Any {
		t.Fatalf("statement 0 read as %+v", ex[0])
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := &Policy{MaxSeverity: "MEDIUM"}
	rep := func(fs ...scan.Finding) *scan.Report {
		return &scan.Report{Status: scan.StatusOK, ScannedAt: now, Findings: fs}
	}
	libc := scan.Finding{VulnerabilityID: "CVE-2024-1", PkgName: "libc6", SrcName: "glibc", InstalledVersion: "1", Severity: "HIGH"}
	zlibOther := scan.Finding{VulnerabilityID: "CVE-2024-3", PkgName: "zlib1g", SrcName: "zlib", InstalledVersion: "1", Severity: "HIGH"}
	zlib := scan.Finding{VulnerabilityID: "CVE-2024-2", PkgName: "zlib1g", SrcName: "zlib", InstalledVersion: "1", Severity: "HIGH"}
	zlibInBash := scan.Finding{VulnerabilityID: "CVE-2024-2", PkgName: "bash", SrcName: "bash", InstalledVersion: "1", Severity: "HIGH"}
	in := Input{Repository: "quarantine/team/app", Digest: "sha256:" + strings.Repeat("a", 64)}
	for _, tt := range []struct {
		name string
		rep  *scan.Report
		in   Input
		want State
	}{
		{"any CVE of the source package, anywhere", rep(libc), in, StateExempt},
		{"another package", rep(libc, zlibOther), in, StateFail},
		{"CVE and package in the repository", rep(zlib), Input{Repository: "quarantine/app"}, StateExempt},
		{"that CVE in another package", rep(zlibInBash), Input{Repository: "quarantine/app"}, StateFail},
		{"that CVE and package elsewhere", rep(zlib), in, StateFail},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if v := Evaluate(p, tt.rep, ex, tt.in, now); v.State != tt.want {
				t.Fatalf("verdict %s, want %s: %+v", v.State, tt.want, v.Reasons)
			}
		})
	}
	bad := `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"*"},"products":[{"@id":"*"}],"status":"not_affected","justification":"component_not_present","expires":"2027-01-01T00:00:00Z"}]}`
	if _, err := LoadExceptions(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "vulnerability.name") {
		t.Fatalf("a statement for every vulnerability of every package loads: %v", err)
	}
}
