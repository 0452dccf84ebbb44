package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"strings"
	"testing"
)

// expectedFixable computes, independently of ParseReport, the fixable OS
// packages of a report file: package -> fixed version, for findings with
// one (the test reports have one finding per package with a fix).
func expectedFixable(t *testing.T, file string, trivy bool) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if trivy {
		var rep struct {
			Results []struct {
				Class           string `json:"Class"`
				Vulnerabilities []struct {
					PkgName      string `json:"PkgName"`
					FixedVersion string `json:"FixedVersion"`
				} `json:"Vulnerabilities"`
			} `json:"Results"`
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			for _, v := range r.Vulnerabilities {
				if r.Class == "os-pkgs" && v.FixedVersion != "" {
					out[v.PkgName] = v.FixedVersion
				}
			}
		}
		return out
	}
	var rep struct {
		Findings []struct {
			PkgName      string `json:"pkgName"`
			FixedVersion string `json:"fixedVersion"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.FixedVersion != "" {
			out[f.PkgName] = f.FixedVersion
		}
	}
	return out
}

func TestParseReportFiles(t *testing.T) {
	for _, tt := range []struct {
		file  string
		trivy bool
	}{
		{"../scan/testdata/report.trivy.json", true},
		{"../scan/testdata/report.json", false},
	} {
		t.Run(tt.file, func(t *testing.T) {
			want := expectedFixable(t, tt.file, tt.trivy)
			// The test reports: libssl1.1 has a fix, openssl has none.
			if len(want) != 1 || want["libssl1.1"] != "1.1.1n-0+deb11u4" {
				t.Fatalf("test report changed: fixable %v", want)
			}
			f, err := os.Open(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ParseReport(f)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("ParseReport = %v, want %v", got, want)
			}
		})
	}
}

func trivyReport(results string) string {
	return `{"SchemaVersion": 2, "ArtifactName": "x", "Results": [` + results + `]}`
}

func TestParseReport(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
	}{
		{"trivy: several fixed versions, the first is taken",
			trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"libfoo","FixedVersion":"1.2-3, 1.3-1"}]}`),
			map[string]string{"libfoo": "1.2-3"}},
		{"trivy: highest fixed version wins",
			trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[
				{"PkgName":"libfoo","FixedVersion":"1.2-3"},
				{"PkgName":"libfoo","FixedVersion":"1.10-1"},
				{"PkgName":"libfoo","FixedVersion":"1.9-1"},
				{"PkgName":"libbar","FixedVersion":"1:0.9"},
				{"PkgName":"libbar","FixedVersion":"2.0"},
				{"PkgName":"libbaz","FixedVersion":"2.0~rc1"},
				{"PkgName":"libbaz","FixedVersion":"2.0"},
				{"PkgName":"libbaz","FixedVersion":"2.0~beta"}]}`),
			map[string]string{"libfoo": "1.10-1", "libbar": "1:0.9", "libbaz": "2.0"}},
		{"trivy: across results",
			trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"a","FixedVersion":"1"}]},
				{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"a","FixedVersion":"2"}]}`),
			map[string]string{"a": "2"}},
		{"trivy: non os-pkgs classes ignored",
			trivyReport(`{"Class":"lang-pkgs","Type":"gobinary","Vulnerabilities":[{"PkgName":"golang.org/x/net","FixedVersion":"0.33.0"}]},
				{"Class":"secret","Secrets":[]},
				{"Class":"config","Vulnerabilities":[{"PkgName":"libfoo","FixedVersion":"9"}]},
				{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"libfoo","FixedVersion":"1.0"}]}`),
			map[string]string{"libfoo": "1.0"}},
		{"trivy: unfixed and nameless findings left out",
			trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"a","FixedVersion":""},{"PkgName":"b"},{"PkgName":"","FixedVersion":"1"}]}`),
			map[string]string{}},
		{"trivy: no results", `{"SchemaVersion": 2}`, map[string]string{}},
		{"trivy: null vulnerabilities", trivyReport(`{"Class":"os-pkgs","Vulnerabilities":null}`), map[string]string{}},
		{"drydock: findings",
			`{"schemaVersion": 1, "findings": [{"pkgName":"a","fixedVersion":"1.0-1"},{"pkgName":"a","fixedVersion":"1.0-2, 1.1-1"},{"pkgName":"b","fixedVersion":""},{"pkgName":"c","fixedVersion":"3"}]}`,
			map[string]string{"a": "1.0-2", "c": "3"}},
		{"drydock: no findings", `{"schemaVersion": 1}`, map[string]string{}},
		{"drydock: nested schemaVersion ignored", `{"schemaVersion": 1, "db": {"schemaVersion": 7}, "findings": []}`, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReport(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseReport: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("ParseReport = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseReportErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "not JSON"},
		{"not JSON", "Total: 3 (HIGH: 1)", "not JSON"},
		{"JSON array", `[{"SchemaVersion": 2}]`, "not JSON"},
		{"truncated", `{"SchemaVersion": 2, "Results": [`, "not JSON"},
		{"trivy schema 1", `{"SchemaVersion": 1, "Results": []}`, "SchemaVersion 1: want 2"},
		{"trivy schema 3", `{"SchemaVersion": 3}`, "SchemaVersion 3: want 2"},
		{"drydock schema 2", `{"schemaVersion": 2, "findings": []}`, "schemaVersion 2: want 1"},
		{"drydock schema 0", `{"schemaVersion": 0}`, "schemaVersion 0: want 1"},
		{"neither", `{"bomFormat": "CycloneDX", "specVersion": "1.5"}`, "not a Trivy (SchemaVersion 2) or drydock (schemaVersion 1) JSON report"},
		{"null schema", `{"SchemaVersion": null}`, "not a Trivy"},
		{"schema as string", `{"SchemaVersion": "2"}`, "not JSON"},
		{"trivy results wrong type", `{"SchemaVersion": 2, "Results": {"a": 1}}`, "trivy report"},
		{"drydock findings wrong type", `{"schemaVersion": 1, "findings": "x"}`, "drydock report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReport(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseReport(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseReportOtherFormatsRefused(t *testing.T) {
	for _, f := range []string{"report.cdx.json", "report.openvex.json", "report.sarif", "report.table"} {
		data, err := os.ReadFile("../scan/testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParseReport(bytes.NewReader(data)); err == nil {
			t.Errorf("ParseReport(%s) = %v, want an error", f, got)
		}
	}
}

// sizedReader yields n bytes of a JSON report padded with spaces.
type sizedReader struct{ n, off int64 }

func (r *sizedReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n-r.off)
	for i := range p[:k] {
		p[i] = ' '
	}
	if r.off == 0 && k > 0 {
		p[0] = '{'
	}
	r.off += k
	return int(k), nil
}

func TestParseReportTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 256 MiB")
	}
	_, err := ParseReport(&sizedReader{n: maxReportSize + 1})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("ParseReport(maxReportSize+1 bytes) error %v, want too large", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReportReadError(t *testing.T) {
	if _, err := ParseReport(failingReader{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("ParseReport(failing reader) error %v", err)
	}
}

// TestRegression_ParseReportMalformedFixedVersionOrder: the highest-version rule
// compares with apt.VersionAtLeast, which says false for a malformed
// version, so a malformed FixedVersion replaces a valid one seen before
// it but not one seen after it: the result depends on the order of the
// findings. Input: libfoo fixed "1.2-3" then "1.3 beta" (not a Debian
// version): got "1.3 beta"; the reverse order gives "1.2-3". Want the
// same answer in both orders (the valid "1.2-3", or an error).
func TestRegression_ParseReportMalformedFixedVersionOrder(t *testing.T) {
	a := trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"libfoo","FixedVersion":"1.2-3"},{"PkgName":"libfoo","FixedVersion":"1.3 beta"}]}`)
	b := trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"libfoo","FixedVersion":"1.3 beta"},{"PkgName":"libfoo","FixedVersion":"1.2-3"}]}`)
	ga, errA := ParseReport(strings.NewReader(a))
	gb, errB := ParseReport(strings.NewReader(b))
	if (errA == nil) != (errB == nil) || !maps.Equal(ga, gb) {
		t.Errorf("order-dependent result: [1.2-3, \"1.3 beta\"] -> %v, %v; [\"1.3 beta\", 1.2-3] -> %v, %v", ga, errA, gb, errB)
	}
}

// TestRegression_ParseReportLeadingComma: the empty check on FixedVersion runs
// before the list is cut at its first comma, so a FixedVersion whose first
// element is empty ("," or ", 1.3-1") records "" as the package's fixed
// version, replacing a real one found earlier (VersionAtLeast(cur, "")
// is false). Input: libfoo fixed "1.2-3", then ", 1.3-1". Got
// {libfoo: ""}; want {libfoo: "1.3-1"} (or at least "1.2-3": an empty
// fixed version means "any update" to wanted()).
func TestRegression_ParseReportLeadingComma(t *testing.T) {
	in := trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"libfoo","FixedVersion":"1.2-3"},{"PkgName":"libfoo","FixedVersion":", 1.3-1"}]}`)
	got, err := ParseReport(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got["libfoo"] == "" {
		t.Errorf("ParseReport = %q, want libfoo with a non-empty fixed version", got)
	}
}

// FuzzParseReport checks that ParseReport never panics and returns only
// named packages with a fixed version free of commas.
func FuzzParseReport(f *testing.F) {
	for _, name := range []string{"../scan/testdata/report.trivy.json", "../scan/testdata/report.json", "../scan/testdata/report.cdx.json"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", "{}", `{"SchemaVersion": 2}`, `{"schemaVersion": 1}`, `{"SchemaVersion": 1}`,
		trivyReport(`{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"a","FixedVersion":"1, 2"},{"PkgName":"b","FixedVersion":"3,"}]}`),
		`{"schemaVersion": 1, "findings": [{"pkgName":"a","fixedVersion":"1.0"}]}`, "null", "[]", `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseReport(bytes.NewReader(data))
		if err != nil {
			return
		}
		for k, v := range got {
			if k == "" || v == "" || strings.Contains(v, ",") {
				t.Fatalf("ParseReport(%q): entry %q -> %q", data, k, v)
			}
		}
	})
}
