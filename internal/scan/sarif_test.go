package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// Exported for the real-data tests (package scan_test).
var (
	ValidateSARIF     = validateSARIF
	ValidateCycloneDX = validateCycloneDX
	ValidateOpenVEX   = validateOpenVEX
	// ValidateCycloneDXSchema validates against the published schema.
	ValidateCycloneDXSchema = validateCycloneDXSchema
)

// checkGolden compares what w writes for the golden report with
// testdata/name (rewritten with -update).
func checkGolden(t *testing.T, name string, w Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := w(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
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
	return buf.Bytes()
}

// sarifDoc is an independent, minimal reading of SARIF 2.1.0: the fields
// the spec requires and the ones drydock promises.
type sarifDoc struct {
	Schema  *string `json:"$schema"`
	Version string  `json:"version"`
	Runs    []struct {
		Tool *struct {
			Driver *struct {
				Name    string `json:"name"`
				Version string `json:"version"`
				Rules   []struct {
					ID               string `json:"id"`
					ShortDescription *struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
					HelpURI              string `json:"helpUri"`
					DefaultConfiguration *struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
					Properties map[string]any `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results *[]struct {
			RuleID    string `json:"ruleId"`
			RuleIndex *int   `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   *struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation *struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					Name               string `json:"name"`
					FullyQualifiedName string `json:"fullyQualifiedName"`
				} `json:"logicalLocations"`
			} `json:"locations"`
		} `json:"results"`
	} `json:"runs"`
}

var sarifLevels = map[string]bool{"none": true, "note": true, "warning": true, "error": true}

// validateSARIF checks data against the SARIF 2.1.0 requirements drydock
// relies on: version, $schema, runs[].tool.driver.name, rules with unique
// ids, security-severity in [0, 10], results whose ruleId and ruleIndex
// name a rule, a level from the enum, a non-empty message and a location.
func validateSARIF(data []byte) error {
	var d sarifDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("decoding SARIF: %w", err)
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if d.Version != "2.1.0" {
		bad("version %q, want 2.1.0", d.Version)
	}
	if d.Schema == nil || !strings.Contains(*d.Schema, "sarif") || !strings.HasSuffix(*d.Schema, "2.1.0.json") {
		bad("$schema %v", d.Schema)
	}
	if len(d.Runs) != 1 {
		bad("%d runs, want 1", len(d.Runs))
	}
	for i, run := range d.Runs {
		if run.Tool == nil || run.Tool.Driver == nil || run.Tool.Driver.Name == "" {
			bad("runs[%d].tool.driver.name missing", i)
			continue
		}
		rules := map[string]int{}
		for j, r := range run.Tool.Driver.Rules {
			if r.ID == "" {
				bad("rule %d: no id", j)
			}
			if _, dup := rules[r.ID]; dup {
				bad("rule %s twice", r.ID)
			}
			rules[r.ID] = j
			if r.ShortDescription == nil || r.ShortDescription.Text == "" {
				bad("rule %s: no shortDescription.text", r.ID)
			}
			if r.DefaultConfiguration != nil && !sarifLevels[r.DefaultConfiguration.Level] {
				bad("rule %s: level %q", r.ID, r.DefaultConfiguration.Level)
			}
			if r.HelpURI != "" {
				if u, err := url.Parse(r.HelpURI); err != nil || !u.IsAbs() {
					bad("rule %s: helpUri %q is not an absolute URI", r.ID, r.HelpURI)
				}
			}
			s, _ := r.Properties["security-severity"].(string)
			if f, err := strconv.ParseFloat(s, 64); err != nil || f < 0 || f > 10 {
				bad("rule %s: security-severity %q", r.ID, s)
			}
		}
		if run.Results == nil {
			bad("runs[%d].results missing", i)
			continue
		}
		for j, res := range *run.Results {
			idx, ok := rules[res.RuleID]
			if !ok {
				bad("result %d: ruleId %q names no rule", j, res.RuleID)
			}
			if res.RuleIndex != nil && *res.RuleIndex != idx {
				bad("result %d: ruleIndex %d, rule %q is at %d", j, *res.RuleIndex, res.RuleID, idx)
			}
			if !sarifLevels[res.Level] {
				bad("result %d: level %q", j, res.Level)
			}
			if res.Message == nil || res.Message.Text == "" {
				bad("result %d: empty message.text", j)
			}
			if len(res.Locations) == 0 {
				bad("result %d: no location", j)
			}
			for _, l := range res.Locations {
				if l.PhysicalLocation != nil && l.PhysicalLocation.ArtifactLocation.URI == "" {
					bad("result %d: empty artifactLocation.uri", j)
				}
				if l.PhysicalLocation == nil && len(l.LogicalLocations) == 0 {
					bad("result %d: empty location", j)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func TestSARIF(t *testing.T) {
	data := checkGolden(t, "report.sarif", WriteSARIF)
	if err := validateSARIF(data); err != nil {
		t.Fatalf("invalid SARIF:\n%v", err)
	}
	log := SARIFFromReport(goldenReport())
	run := log.Runs[0]
	if run.Tool.Driver.Name != "drydock" || run.Tool.Driver.Version == "" {
		t.Errorf("driver %+v", run.Tool.Driver)
	}
	if len(run.Tool.Driver.Rules) != 2 || len(run.Results) != 2 {
		t.Fatalf("%d rules, %d results", len(run.Tool.Driver.Rules), len(run.Results))
	}
	r0 := run.Tool.Driver.Rules[0]
	if r0.ID != "CVE-2023-0286" || r0.ShortDescription.Text != "X.400 address type confusion in X.509 GeneralName" ||
		r0.HelpURI != "https://security-tracker.debian.org/tracker/CVE-2023-0286" || r0.Properties.SecuritySeverity != "8.0" {
		t.Errorf("rule %+v", r0)
	}
	for _, res := range run.Results {
		want := map[string]string{"CVE-2023-0286": "error", "CVE-2024-9999": "note"}[res.RuleID]
		if res.Level != want {
			t.Errorf("%s: level %q, want %q", res.RuleID, res.Level, want)
		}
		loc := res.Locations[0]
		if loc.PhysicalLocation.ArtifactLocation.URI != "var/lib/dpkg/status" || loc.LogicalLocations[0].Name != "bullseye-nginx-curl" ||
			!strings.Contains(loc.LogicalLocations[0].FullyQualifiedName, "sha256:aaaa") {
			t.Errorf("%s: location %+v", res.RuleID, loc)
		}
	}
	if m := run.Results[0].Message.Text; !strings.Contains(m, "libssl1.1") || !strings.Contains(m, "1.1.1n-0+deb11u3") || !strings.Contains(m, "1.1.1n-0+deb11u4") {
		t.Errorf("message %q does not name package, installed and fixed version", m)
	}
	for level, sev := range map[string]string{"error": "CRITICAL", "warning": "MEDIUM", "note": "UNKNOWN"} {
		r := goldenReport()
		r.Findings = r.Findings[:1]
		r.Findings[0].Severity = vulndb.Severity(sev)
		if got := SARIFFromReport(r).Runs[0].Results[0].Level; got != level {
			t.Errorf("%s: level %q, want %q", sev, got, level)
		}
	}
}

// TestSARIFValidatorFails shows the validator rejects broken logs.
func TestSARIFValidatorFails(t *testing.T) {
	for name, mutate := range map[string]func(*SARIFLog){
		"version":       func(l *SARIFLog) { l.Version = "2.0.0" },
		"schema":        func(l *SARIFLog) { l.Schema = "" },
		"driver name":   func(l *SARIFLog) { l.Runs[0].Tool.Driver.Name = "" },
		"missing rule":  func(l *SARIFLog) { l.Runs[0].Tool.Driver.Rules = l.Runs[0].Tool.Driver.Rules[1:] },
		"level":         func(l *SARIFLog) { l.Runs[0].Results[0].Level = "high" },
		"empty message": func(l *SARIFLog) { l.Runs[0].Results[1].Message.Text = "" },
		"severity":      func(l *SARIFLog) { l.Runs[0].Tool.Driver.Rules[0].Properties.SecuritySeverity = "HIGH" },
		"rule index":    func(l *SARIFLog) { l.Runs[0].Results[0].RuleIndex = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			l := SARIFFromReport(goldenReport())
			mutate(&l)
			data, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateSARIF(data); err == nil {
				t.Error("validator accepted a broken log")
			}
		})
	}
}

func TestSARIFStatus(t *testing.T) {
	r := goldenReport()
	r.Status, r.StatusReason, r.Findings = StatusUnsupported, "fedora 41 is not supported", nil
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, r); err != nil {
		t.Fatal(err)
	}
	if err := validateSARIF(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	run := SARIFFromReport(r).Runs[0]
	if len(run.Results) != 0 || len(run.Invocations) != 1 || len(run.Invocations[0].ToolExecutionNotifications) != 1 ||
		!strings.Contains(run.Invocations[0].ToolExecutionNotifications[0].Message.Text, "fedora 41") {
		t.Errorf("unsupported run %+v", run)
	}
}
