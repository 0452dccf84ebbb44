package trivycompat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aquasecurity/trivy/pkg/types"
)

// goldenPath is drydock's trivy-json golden report, written by
// internal/scan's TestGolden (go test ./internal/scan -run TestGolden -update).
const goldenPath = "../../internal/scan/testdata/report.trivy.json"

func readGolden(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(goldenPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("golden trivy-json report %s is missing: regenerate it with "+
			"`go test ./internal/scan -run TestGolden -update` at the repository root", goldenPath)
	}
	if err != nil {
		t.Fatalf("reading golden trivy-json report: %v", err)
	}
	return b
}

// decodeStrict decodes drydock's report into Trivy's own types.Report,
// rejecting any field Trivy does not know.
func decodeStrict(t *testing.T, b []byte) types.Report {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r types.Report
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decoding %s into trivy types.Report: %v", goldenPath, err)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data after the report", goldenPath)
	}
	return r
}

func decodeAny(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding JSON into map: %v", err)
	}
	return m
}

// counts are vulnerability totals: all, and per severity.
type counts struct {
	Total      int
	BySeverity map[string]int
	OSPkgs     int // vulnerabilities in os-pkgs results
}

func countTrivy(r types.Report) counts {
	c := counts{BySeverity: map[string]int{}}
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			c.Total++
			c.BySeverity[v.Severity]++
			if res.Class == types.ClassOSPkg {
				c.OSPkgs++
			}
		}
	}
	return c
}

// countRaw computes the same totals independently of Trivy's types, by
// walking the JSON as generic maps.
func countRaw(t *testing.T, m map[string]any) counts {
	t.Helper()
	c := counts{BySeverity: map[string]int{}}
	results, _ := m["Results"].([]any)
	for i, ri := range results {
		res, ok := ri.(map[string]any)
		if !ok {
			t.Fatalf("Results[%d] is %T, not an object", i, ri)
		}
		vulns, _ := res["Vulnerabilities"].([]any)
		for j, vi := range vulns {
			v, ok := vi.(map[string]any)
			if !ok {
				t.Fatalf("Results[%d].Vulnerabilities[%d] is %T, not an object", i, j, vi)
			}
			sev, _ := v["Severity"].(string)
			c.Total++
			c.BySeverity[sev]++
			if res["Class"] == "os-pkgs" {
				c.OSPkgs++
			}
		}
	}
	return c
}

func TestGoldenDecodesIntoTrivyReport(t *testing.T) {
	raw := readGolden(t)
	r := decodeStrict(t, raw)

	if r.SchemaVersion != 2 {
		t.Errorf("SchemaVersion = %d, want 2", r.SchemaVersion)
	}
	if r.ArtifactName == "" {
		t.Error("ArtifactName is empty")
	}
	// Copa's -r reader dereferences Metadata.OS and uses Family and Name.
	if r.Metadata.OS == nil {
		t.Fatal("Metadata.OS is missing")
	}
	if r.Metadata.OS.Family == "" || r.Metadata.OS.Name == "" {
		t.Errorf("Metadata.OS = %+v, want Family and Name set", *r.Metadata.OS)
	}

	osResults := 0
	for i, res := range r.Results {
		if res.Class == types.ClassOSPkg {
			osResults++
			if res.Type == "" {
				t.Errorf("Results[%d] (os-pkgs): Type is empty", i)
			}
		}
		for j, v := range res.Vulnerabilities {
			var missing []string
			if v.VulnerabilityID == "" {
				missing = append(missing, "VulnerabilityID")
			}
			if v.PkgName == "" {
				missing = append(missing, "PkgName")
			}
			if v.InstalledVersion == "" {
				missing = append(missing, "InstalledVersion")
			}
			if v.Severity == "" {
				missing = append(missing, "Severity")
			}
			if len(missing) > 0 {
				t.Errorf("Results[%d].Vulnerabilities[%d] (%s): missing %s", i, j, v.VulnerabilityID, strings.Join(missing, ", "))
			}
		}
	}
	// Copa rejects more than one os-pkgs result; drydock needs at least one.
	if osResults != 1 {
		t.Errorf("%d results with Class %q, want exactly 1", osResults, types.ClassOSPkg)
	}

	got, want := countTrivy(r), countRaw(t, decodeAny(t, raw))
	if want.Total == 0 {
		t.Error("golden report has no vulnerabilities: nothing meaningful is checked")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vulnerability counts after decoding into Trivy's types = %+v, in the raw JSON = %+v", got, want)
	}
}

// TestGoldenRoundTrips re-encodes the decoded Trivy report and compares it
// with drydock's original, as generic JSON values.
//
// Trivy's types have fields without omitempty/omitzero whose zero value
// drydock rightly leaves out; re-encoding adds them back (with Trivy v0.74.0
// and the golden report this happens for none, but a later Trivy may add
// some). Such keys, absent from the original and zero/empty (null, "", 0,
// false, {} or []) in the re-encoded report, are removed before the
// comparison: they carry no information. Any other difference means that
// Trivy read something other than what drydock wrote (e.g. an unknown Status
// string becomes "unknown") and fails the test.
func TestGoldenRoundTrips(t *testing.T) {
	raw := readGolden(t)
	r := decodeStrict(t, raw)

	reenc, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("re-encoding trivy types.Report: %v", err)
	}
	orig, back := decodeAny(t, raw), decodeAny(t, reenc)

	var dropped []string
	pruneZeroAdditions("", orig, back, &dropped)
	if len(dropped) > 0 {
		t.Logf("ignored zero-valued keys Trivy adds on re-encoding: %s", strings.Join(dropped, ", "))
	}

	var diffs []string
	diff("", orig, back, &diffs)
	if len(diffs) > 0 {
		t.Errorf("drydock's trivy-json does not round-trip through Trivy's types.Report (original vs re-encoded):\n  %s",
			strings.Join(diffs, "\n  "))
	}
}

// pruneZeroAdditions removes from back the object keys that orig lacks and
// whose value in back is zero or empty, recording their paths in dropped.
func pruneZeroAdditions(path string, orig, back any, dropped *[]string) {
	switch b := back.(type) {
	case map[string]any:
		o, _ := orig.(map[string]any)
		for _, k := range sortedKeys(b) {
			ov, inOrig := o[k]
			if !inOrig && isZero(b[k]) {
				*dropped = append(*dropped, path+"."+k)
				delete(b, k)
				continue
			}
			pruneZeroAdditions(path+"."+k, ov, b[k], dropped)
		}
	case []any:
		o, _ := orig.([]any)
		for i := range b {
			var ov any
			if i < len(o) {
				ov = o[i]
			}
			pruneZeroAdditions(fmt.Sprintf("%s[%d]", path, i), ov, b[i], dropped)
		}
	}
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case float64:
		return x == 0
	case bool:
		return !x
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// diff appends a line per difference between a (original) and b
// (re-encoded).
func diff(path string, a, b any, out *[]string) {
	if path == "" {
		path = "$"
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: original %s, re-encoded %s", path, show(a), show(b)))
			return
		}
		keys := sortedKeys(x)
		for _, k := range sortedKeys(y) {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			av, inA := x[k]
			bv, inB := y[k]
			switch {
			case !inB:
				*out = append(*out, fmt.Sprintf("%s.%s: dropped by Trivy (original %s)", path, k, show(av)))
			case !inA:
				*out = append(*out, fmt.Sprintf("%s.%s: added by Trivy (re-encoded %s)", path, k, show(bv)))
			default:
				diff(path+"."+k, av, bv, out)
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			*out = append(*out, fmt.Sprintf("%s: original %s, re-encoded %s", path, show(a), show(b)))
			return
		}
		for i := range x {
			diff(fmt.Sprintf("%s[%d]", path, i), x[i], y[i], out)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, fmt.Sprintf("%s: original %s, re-encoded %s", path, show(a), show(b)))
		}
	}
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The helpers must catch what they are meant to catch; a comparison that
// can never fail proves nothing.
func TestDiffHelpers(t *testing.T) {
	orig := map[string]any{"A": "x", "L": []any{map[string]any{"S": "fixed"}}}
	back := map[string]any{"A": "x", "Z": "", "N": nil, "E": []any{}, "Added": "v",
		"L": []any{map[string]any{"S": "unknown", "Zero": false}}}
	var dropped []string
	pruneZeroAdditions("", orig, back, &dropped)
	slices.Sort(dropped)
	if want := []string{".E", ".L[0].Zero", ".N", ".Z"}; !slices.Equal(dropped, want) {
		t.Errorf("pruned %v, want %v", dropped, want)
	}
	var diffs []string
	diff("", orig, back, &diffs)
	want := []string{
		`$.L[0].S: original "fixed", re-encoded "unknown"`,
		`$.Added: added by Trivy (re-encoded "v")`,
	}
	if !slices.Equal(diffs, want) {
		t.Errorf("diff = %q, want %q", diffs, want)
	}
}
