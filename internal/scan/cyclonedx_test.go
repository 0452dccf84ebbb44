package scan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/drydock-project/drydock/internal/testenv"
)

// cdxSchemaURL is the $id of the published CycloneDX 1.6 JSON schema.
const cdxSchemaURL = "http://cyclonedx.org/schema/bom-1.6.schema.json"

var cdxSchemaOnce = sync.OnceValues(loadCDXSchema)

// loadCDXSchema compiles the published CycloneDX 1.6 JSON schema (with
// the SPDX and JSF schemas it references) from the copies the
// cyclonedx-go module ships in its schema/ directory, found in the module
// cache with "go list -m".
func loadCDXSchema() (*jsonschema.Schema, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		return nil, fmt.Errorf("locating the cyclonedx-go module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for file, id := range map[string]string{
		"bom-1.6.schema.json":   cdxSchemaURL,
		"spdx.schema.json":      "http://cyclonedx.org/schema/spdx.schema.json",
		"jsf-0.82.schemax.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			return nil, fmt.Errorf("opening CycloneDX schema: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading CycloneDX schema %s: %w", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("adding CycloneDX schema %s: %w", file, err)
		}
	}
	sch, err := c.Compile(cdxSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("compiling the CycloneDX 1.6 schema: %w", err)
	}
	return sch, nil
}

// validateCycloneDXSchema validates data against the published CycloneDX
// 1.6 JSON schema; it skips t when the schema cannot be found (no go
// command or module cache, e.g. a vendored build), and fails under CI=true.
func validateCycloneDXSchema(t testing.TB, data []byte) error {
	t.Helper()
	sch, err := cdxSchemaOnce()
	if err != nil {
		testenv.Missing(t, "CycloneDX schema unavailable: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("decoding CycloneDX: %w", err)
	}
	return sch.Validate(inst)
}

var (
	serialRE = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	purlRE   = regexp.MustCompile(`^pkg:[a-z][a-z0-9.+-]*/[^@?#]+(@[^?#]+)?(\?[a-z_]+=[^&#]+(&[a-z_]+=[^&#]+)*)?$`)
)

var (
	cdxSeverities = map[cdx.Severity]bool{cdx.SeverityCritical: true, cdx.SeverityHigh: true, cdx.SeverityMedium: true,
		cdx.SeverityLow: true, cdx.SeverityInfo: true, cdx.SeverityNone: true, cdx.SeverityUnknown: true}
	cdxStates = map[cdx.ImpactAnalysisState]bool{"": true, cdx.IASResolved: true, cdx.IASResolvedWithPedigree: true,
		cdx.IASExploitable: true, cdx.IASInTriage: true, cdx.IASFalsePositive: true, cdx.IASNotAffected: true}
	cdxResponses = map[cdx.ImpactAnalysisResponse]bool{cdx.IARCanNotFix: true, cdx.IARWillNotFix: true, cdx.IARUpdate: true,
		cdx.IARRollback: true, cdx.IARWorkaroundAvailable: true}
	cdxStatuses = map[cdx.VulnerabilityStatus]bool{cdx.VulnerabilityStatusAffected: true, cdx.VulnerabilityStatusNotAffected: true,
		cdx.VulnerabilityStatusUnknown: true}
)

// validateCycloneDX decodes data with cyclonedx-go and checks what the
// CycloneDX 1.6 schema requires of the parts drydock writes: bomFormat,
// specVersion, a urn:uuid serialNumber, a container metadata.component,
// components with type and name and a well-formed purl, bom-refs unique
// across the BOM, dependency and affects refs that resolve, vulnerability
// ids, rating severities, affected-version entries with exactly one of
// version or range and a status from the enum, analysis enums.
func validateCycloneDX(data []byte) error {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return fmt.Errorf("decoding CycloneDX: %w", err)
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if bom.BOMFormat != cdx.BOMFormat {
		bad("bomFormat %q", bom.BOMFormat)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 {
		bad("specVersion %v, want 1.6", bom.SpecVersion)
	}
	if !strings.Contains(bom.JSONSchema, "bom-1.6.schema.json") {
		bad("$schema %q", bom.JSONSchema)
	}
	if !serialRE.MatchString(bom.SerialNumber) {
		bad("serialNumber %q", bom.SerialNumber)
	}
	if bom.Version < 1 {
		bad("version %d", bom.Version)
	}
	refs := map[string]bool{}
	addRef := func(ref string) {
		if ref == "" {
			return
		}
		if refs[ref] {
			bad("bom-ref %q not unique", ref)
		}
		refs[ref] = true
	}
	checkComponent := func(c cdx.Component) {
		if c.Type == "" || c.Name == "" {
			bad("component %q: no type or name", c.BOMRef)
		}
		if c.PackageURL != "" && !purlRE.MatchString(c.PackageURL) {
			bad("component %q: malformed purl %q", c.BOMRef, c.PackageURL)
		}
		addRef(c.BOMRef)
	}
	if bom.Metadata == nil || bom.Metadata.Component == nil || bom.Metadata.Component.Type != cdx.ComponentTypeContainer {
		bad("metadata.component is not a container")
	} else {
		checkComponent(*bom.Metadata.Component)
	}
	if bom.Metadata != nil && bom.Metadata.Timestamp == "" {
		bad("no metadata.timestamp")
	}
	components := map[string]bool{}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			checkComponent(c)
			components[c.BOMRef] = true
		}
	}
	if bom.Dependencies != nil {
		for _, d := range *bom.Dependencies {
			if !refs[d.Ref] {
				bad("dependency ref %q resolves to nothing", d.Ref)
			}
			if d.Dependencies != nil {
				for _, on := range *d.Dependencies {
					if !refs[on] {
						bad("dependsOn %q resolves to nothing", on)
					}
				}
			}
		}
	}
	if bom.Vulnerabilities != nil {
		for _, v := range *bom.Vulnerabilities {
			addRef(v.BOMRef)
			if v.ID == "" {
				bad("vulnerability without id")
			}
			if v.Ratings != nil {
				for _, r := range *v.Ratings {
					if !cdxSeverities[r.Severity] {
						bad("%s: severity %q", v.ID, r.Severity)
					}
				}
			}
			if v.Analysis != nil {
				if !cdxStates[v.Analysis.State] {
					bad("%s: analysis state %q", v.ID, v.Analysis.State)
				}
				if v.Analysis.Response != nil {
					for _, r := range *v.Analysis.Response {
						if !cdxResponses[r] {
							bad("%s: analysis response %q", v.ID, r)
						}
					}
				}
			}
			if v.Affects == nil || len(*v.Affects) == 0 {
				bad("%s: affects nothing", v.ID)
				continue
			}
			for _, a := range *v.Affects {
				if !components[a.Ref] {
					bad("%s: affects ref %q is not a component", v.ID, a.Ref)
				}
				if a.Range == nil {
					continue
				}
				for _, av := range *a.Range {
					if (av.Version == "") == (av.Range == "") {
						bad("%s: affected version needs exactly one of version or range: %+v", v.ID, av)
					}
					if av.Range != "" && !strings.HasPrefix(av.Range, "vers:") {
						bad("%s: range %q is not a vers", v.ID, av.Range)
					}
					if !cdxStatuses[av.Status] {
						bad("%s: status %q", v.ID, av.Status)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

func TestCycloneDX(t *testing.T) {
	data := checkGolden(t, "report.cdx.json", WriteCycloneDX)
	if err := validateCycloneDX(data); err != nil {
		t.Fatalf("invalid CycloneDX:\n%v", err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	img := bom.Metadata.Component
	t.Run("schema", func(t *testing.T) {
		if err := validateCycloneDXSchema(t, data); err != nil {
			t.Errorf("not valid by the CycloneDX 1.6 schema:\n%v", err)
		}
		r := goldenReport()
		r.Status, r.StatusReason, r.Findings = StatusUnsupported, "fedora 41 is not supported", nil
		var buf bytes.Buffer
		if err := WriteCycloneDX(&buf, r); err != nil {
			t.Fatal(err)
		}
		if err := validateCycloneDXSchema(t, buf.Bytes()); err != nil {
			t.Errorf("unsupported-OS BOM not valid by the CycloneDX 1.6 schema:\n%v", err)
		}
	})
	if img.Name != "bullseye-nginx-curl" || img.PackageURL != "pkg:oci/nginx@sha256%3A"+strings.Repeat("a", 64)+"?repository_url=example.com%2Fnginx" {
		t.Errorf("image component %+v", img)
	}
	var purls []string
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeLibrary {
			purls = append(purls, c.PackageURL)
		}
	}
	want := []string{"pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11", "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11"}
	if strings.Join(purls, " ") != strings.Join(want, " ") {
		t.Errorf("package purls %q, want %q", purls, want)
	}
	vulns := *bom.Vulnerabilities
	if len(vulns) != 2 || vulns[0].ID != "CVE-2023-0286" || (*vulns[0].Ratings)[0].Severity != cdx.SeverityHigh ||
		(*vulns[0].Affects)[0].Ref != want[0] || vulns[0].Source == nil || vulns[0].Source.Name != "debian" {
		t.Fatalf("vulnerabilities %+v", vulns)
	}
	if a := vulns[1].Analysis; a == nil || a.Response == nil || (*a.Response)[0] != cdx.IARWillNotFix || !strings.Contains(a.Detail, "no_dsa") {
		t.Errorf("no_dsa analysis %+v", a)
	}
}

func TestCycloneDXValidatorFails(t *testing.T) {
	for name, mutate := range map[string]func(*cdx.BOM){
		"affects ref": func(b *cdx.BOM) { (*(*b.Vulnerabilities)[0].Affects)[0].Ref = "pkg:deb/debian/nope@1" },
		"duplicate ref": func(b *cdx.BOM) {
			(*b.Components)[2].BOMRef = (*b.Components)[1].BOMRef
		},
		"serial":   func(b *cdx.BOM) { b.SerialNumber = "42" },
		"severity": func(b *cdx.BOM) { (*(*b.Vulnerabilities)[0].Ratings)[0].Severity = "HIGH" },
		"purl":     func(b *cdx.BOM) { (*b.Components)[1].PackageURL = "deb/libssl" },
		"not a container": func(b *cdx.BOM) {
			b.Metadata.Component.Type = cdx.ComponentTypeApplication
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := CycloneDXFromReport(goldenReport())
			mutate(b)
			var buf bytes.Buffer
			if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).EncodeVersion(b, CycloneDXSpec); err != nil {
				t.Fatal(err)
			}
			if err := validateCycloneDX(buf.Bytes()); err == nil {
				t.Error("validator accepted a broken BOM")
			}
			if name == "severity" || name == "serial" {
				if err := validateCycloneDXSchema(t, buf.Bytes()); err == nil {
					t.Error("the schema accepted a broken BOM")
				}
			}
		})
	}
}

func TestPackageURL(t *testing.T) {
	for _, tc := range []struct {
		os   OS
		pkg  pkgRef
		want string
	}{
		{OS{ID: "debian", Version: "12.8", Release: "12"}, pkgRef{name: "nginx-light", arch: "amd64", version: "1.22.1-9", ecosystem: "deb"},
			"pkg:deb/debian/nginx-light@1.22.1-9?arch=amd64&distro=debian-12"},
		{OS{ID: "debian", Version: "12.8", Release: "12"}, pkgRef{name: "libc6", arch: "amd64", version: "1:2.36-9+deb12u9", ecosystem: "deb"},
			"pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12&epoch=1"},
		{OS{ID: "alpine", Version: "3.21.0", Release: "3.21"}, pkgRef{name: "musl", arch: "x86_64", version: "1.2.5-r8", ecosystem: "apk"},
			"pkg:apk/alpine/musl@1.2.5-r8?arch=x86_64&distro=alpine-3.21"},
		{OS{ID: "rocky", Version: "9.5", Release: "9"}, pkgRef{name: "bash", arch: "x86_64", version: "0:5.1.8-9.el9", ecosystem: "rpm"},
			"pkg:rpm/rocky/bash@5.1.8-9.el9?arch=x86_64&distro=rocky-9"},
	} {
		if got := packageURL(&Report{OS: tc.os}, tc.pkg); got != tc.want {
			t.Errorf("packageURL(%+v) = %s, want %s", tc.pkg, got, tc.want)
		}
		if !purlRE.MatchString(tc.want) {
			t.Errorf("purl pattern rejects %s", tc.want)
		}
	}
}

func TestFormatsDeterministic(t *testing.T) {
	for name, w := range map[string]Writer{"sarif": WriteSARIF, "cyclonedx": WriteCycloneDX, "openvex": WriteOpenVEX} {
		var a, b bytes.Buffer
		r := goldenReport()
		if err := w(&a, r); err != nil {
			t.Fatal(err)
		}
		// Findings in another order give the same document.
		r.Findings[0], r.Findings[1] = r.Findings[1], r.Findings[0]
		if err := w(&b, r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: output depends on the findings' order", name)
		}
	}
}
