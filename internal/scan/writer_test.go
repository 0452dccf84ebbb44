package scan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/vulndb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenReport is a small fixed report: one fixable and one unfixed
// finding in two binaries of one source package.
func goldenReport() *Report {
	r := &Report{
		SchemaVersion: SchemaVersion,
		Artifact: Artifact{Name: "bullseye-nginx-curl", Digest: "sha256:" + strings.Repeat("a", 64), ImageID: "sha256:" + strings.Repeat("b", 64),
			DiffIDs: []string{"sha256:" + strings.Repeat("c", 64)}, RepoDigests: []string{"example.com/nginx@sha256:" + strings.Repeat("a", 64)},
			Config: &v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: v1.Config{Cmd: []string{"nginx", "-g", "daemon off;"}}}},
		OS:        OS{Family: "debian", ID: "debian", Name: "Debian GNU/Linux", PrettyName: "Debian GNU/Linux 11 (bullseye)", Version: "11.11", Codename: "bullseye", Release: "11"},
		Status:    StatusOK,
		Support:   Support{State: "lts", Until: time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC), Codename: "Bullseye"},
		ScannedAt: time.Date(2025, 2, 12, 0, 0, 0, 0, time.UTC),
		DB: DBInfo{Path: "/data/vulndb/drydock-vuln.db", SchemaVersion: 1, BuiltAt: time.Date(2025, 2, 11, 0, 0, 0, 0, time.UTC), Age: 24 * time.Hour,
			Sources: []DBSource{{Name: "debian-tracker"}, {Name: "osv", DataAsOf: time.Date(2025, 2, 12, 16, 46, 0, 0, time.UTC)}}},
		Packages: 2, SourcePackages: 1,
		Findings: []Finding{
			{VulnerabilityID: "CVE-2023-0286", PkgName: "libssl1.1", PkgArch: "amd64", InstalledVersion: "1.1.1n-0+deb11u3", SrcName: "openssl", SrcVersion: "1.1.1n-0+deb11u3",
				Ecosystem: "deb", FixedVersion: "1.1.1n-0+deb11u4", Status: vulndb.StatusFixed, Severity: vulndb.SeverityHigh, SeveritySource: "debian urgency",
				Title: "X.400 address type confusion in X.509 GeneralName", References: []string{"https://security-tracker.debian.org/tracker/CVE-2023-0286"},
				FixedBy: []string{"DSA-5343-1"}, DataSource: "debian-tracker"},
			{VulnerabilityID: "CVE-2024-9999", PkgName: "openssl", PkgArch: "amd64", InstalledVersion: "1.1.1n-0+deb11u3", SrcName: "openssl", SrcVersion: "1.1.1n-0+deb11u3",
				Ecosystem: "deb", Status: vulndb.StatusNoDSA, Severity: vulndb.SeverityLow, Title: "a minor issue", DataSource: "osv"},
		},
		PackageSupport: []PackageSupportNote{{SrcName: "openssl", Binaries: []string{"libssl1.1", "openssl"}, Kind: "limited", Details: "see README.Debian.security"}},
	}
	return r
}

func TestGolden(t *testing.T) {
	for name, w := range map[string]Writer{"report.table": WriteTable, "report.json": WriteJSON, "report.trivy.json": WriteTrivyJSON} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := w(&buf, goldenReport()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", name, buf.String())
			}
		})
	}
}

func TestTableShape(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] != "bullseye-nginx-curl (debian 11.11)" {
		t.Errorf("header %q", lines[0])
	}
	if last := lines[len(lines)-1]; last != "Total: 2 (UNKNOWN: 0, LOW: 1, MEDIUM: 0, HIGH: 1, CRITICAL: 0)" {
		t.Errorf("total line %q", last)
	}
}

// copaReport mirrors the part of Trivy's report types Copa's -r reads
// (copacetic pkg/report/trivy.go): Metadata.OS, the image config's
// architecture and the os-pkgs result's vulnerabilities.
type copaReport struct {
	SchemaVersion int
	ArtifactName  string
	ArtifactType  string
	Metadata      struct {
		OS *struct {
			Family string
			Name   string
			EOSL   bool
		}
		ImageID     string
		DiffIDs     []string
		RepoDigests []string
		ImageConfig v1.ConfigFile
	}
	Results []struct {
		Target          string
		Class           string
		Type            string
		Vulnerabilities []struct {
			VulnerabilityID  string
			PkgID            string
			PkgName          string
			InstalledVersion string
			FixedVersion     string
			Status           string
			Severity         string
			SeveritySource   string
			Title            string
			References       []string
			DataSource       *struct{ ID, Name, URL string }
		}
	}
}

func TestTrivyJSONForCopa(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTrivyJSON(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	var r copaReport
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.SchemaVersion != 2 || r.ArtifactType != "container_image" || r.ArtifactName != "bullseye-nginx-curl" {
		t.Errorf("header %+v", r)
	}
	if r.Metadata.OS == nil || r.Metadata.OS.Family != "debian" || r.Metadata.OS.Name != "11.11" || r.Metadata.OS.EOSL ||
		r.Metadata.ImageConfig.Architecture != "amd64" || len(r.Metadata.DiffIDs) != 1 {
		t.Errorf("metadata %+v", r.Metadata)
	}
	if len(r.Results) != 1 || r.Results[0].Class != "os-pkgs" || r.Results[0].Type != "debian" ||
		r.Results[0].Target != "bullseye-nginx-curl (debian 11.11)" || len(r.Results[0].Vulnerabilities) != 2 {
		t.Fatalf("results %+v", r.Results)
	}
	v := r.Results[0].Vulnerabilities[0]
	if v.PkgName != "libssl1.1" || v.InstalledVersion != "1.1.1n-0+deb11u3" || v.FixedVersion != "1.1.1n-0+deb11u4" ||
		v.VulnerabilityID != "CVE-2023-0286" || v.Status != "fixed" || v.Severity != "HIGH" || v.PkgID != "libssl1.1@1.1.1n-0+deb11u3" ||
		v.DataSource == nil || v.DataSource.ID != "debian" {
		t.Errorf("vulnerability %+v", v)
	}
	if u := r.Results[0].Vulnerabilities[1]; u.FixedVersion != "" || u.Status != "will_not_fix" {
		t.Errorf("unfixed vulnerability %+v", u)
	}
	// EOSL is carried.
	eol := goldenReport()
	eol.Status, eol.OS.EOSL = StatusEndOfLife, true
	if tr := TrivyFromReport(eol); tr.Metadata.OS == nil || !tr.Metadata.OS.EOSL {
		t.Errorf("EOSL not set: %+v", tr.Metadata.OS)
	}
}

func TestJSONSchema(t *testing.T) {
	var buf bytes.Buffer
	r := goldenReport()
	r.Findings = nil
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["schemaVersion"] != float64(1) || m["status"] != "ok" {
		t.Errorf("schema fields: %v %v", m["schemaVersion"], m["status"])
	}
	if f, ok := m["findings"].([]any); !ok || len(f) != 0 {
		t.Errorf("findings = %#v, want []", m["findings"])
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.DB.BuiltAt != r.DB.BuiltAt || back.OS != r.OS {
		t.Errorf("round trip: %v %+v", err, back)
	}
}
