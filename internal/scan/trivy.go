package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// The types below mirror the subset of Trivy's report schema
// (github.com/aquasecurity/trivy pkg/types/report.go, vulnerability.go and
// pkg/fanal/types) that drydock fills, field names and JSON tags included,
// so that tools reading Trivy reports (Copa's -r reads
// Results[].Vulnerabilities[].{PkgName, InstalledVersion, FixedVersion}
// and Metadata.OS) read drydock's.

// TrivyReport is Trivy's Report, SchemaVersion 2.
type TrivyReport struct {
	SchemaVersion int           `json:",omitempty"`
	ArtifactName  string        `json:",omitempty"`
	ArtifactType  string        `json:",omitempty"`
	Metadata      TrivyMetadata `json:",omitzero"`
	Results       []TrivyResult `json:",omitempty"`
}

// TrivyMetadata is Trivy's Metadata.
type TrivyMetadata struct {
	OS          *TrivyOS      `json:",omitempty"`
	ImageID     string        `json:",omitempty"`
	DiffIDs     []string      `json:",omitempty"`
	RepoDigests []string      `json:",omitempty"`
	ImageConfig v1.ConfigFile `json:",omitzero"`
}

// TrivyOS is Trivy's fanal OS.
type TrivyOS struct {
	Family string
	Name   string
	EOSL   bool `json:",omitempty"`
}

// TrivyResult is Trivy's Result.
type TrivyResult struct {
	Target          string
	Class           string              `json:",omitempty"`
	Type            string              `json:",omitempty"`
	Vulnerabilities []TrivyDetectedVuln `json:",omitempty"`
}

// TrivyDetectedVuln is Trivy's DetectedVulnerability with its embedded
// Vulnerability fields (Title, Description, Severity, References) inline.
type TrivyDetectedVuln struct {
	VulnerabilityID  string           `json:",omitempty"`
	VendorIDs        []string         `json:",omitempty"`
	PkgID            string           `json:",omitempty"`
	PkgName          string           `json:",omitempty"`
	InstalledVersion string           `json:",omitempty"`
	FixedVersion     string           `json:",omitempty"`
	Status           string           `json:",omitempty"`
	SeveritySource   string           `json:",omitempty"`
	PrimaryURL       string           `json:",omitempty"`
	DataSource       *TrivyDataSource `json:",omitempty"`
	Title            string           `json:",omitempty"`
	Description      string           `json:",omitempty"`
	Severity         string           `json:",omitempty"`
	References       []string         `json:",omitempty"`
}

// TrivyDataSource is trivy-db's DataSource.
type TrivyDataSource struct {
	ID   string `json:",omitempty"`
	Name string `json:",omitempty"`
	URL  string `json:",omitempty"`
}

// trivyStatus maps vendor statuses to trivy-db's Status strings as
// trivy-db maps the Debian tracker's: no-dsa and ignored are
// will_not_fix, postponed is fix_deferred, undetermined is affected (the
// Debian statuses Trivy documents: fixed, affected, will_not_fix,
// fix_deferred, end_of_life). drydock's own formats keep the finer status.
func trivyStatus(s vulndb.Status) string {
	switch s {
	case vulndb.StatusFixed:
		return "fixed"
	case vulndb.StatusAffected, vulndb.StatusUndetermined:
		return "affected"
	case vulndb.StatusWillNotFix, vulndb.StatusNoDSA:
		return "will_not_fix"
	case vulndb.StatusPostponed:
		return "fix_deferred"
	case vulndb.StatusEndOfLife:
		return "end_of_life"
	case vulndb.StatusNotAffected:
		return "not_affected"
	}
	return "unknown"
}

var dataSources = map[string]TrivyDataSource{
	"debian-tracker": {ID: "debian", Name: "Debian Security Tracker", URL: "https://salsa.debian.org/security-tracker-team/security-tracker"},
	"osv":            {ID: "osv", Name: "OSV", URL: "https://osv.dev"},
	"alpine-secdb":   {ID: "alpine", Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/"},
}

// TrivyFromReport converts r to Trivy's report schema. An unsupported OS
// has no Results (Trivy's own behaviour); an end-of-life one sets
// Metadata.OS.EOSL.
func TrivyFromReport(r *Report) TrivyReport {
	t := TrivyReport{
		SchemaVersion: 2,
		ArtifactName:  r.Artifact.Name,
		ArtifactType:  "container_image",
		Metadata: TrivyMetadata{
			ImageID:     r.Artifact.ImageID,
			DiffIDs:     r.Artifact.DiffIDs,
			RepoDigests: r.Artifact.RepoDigests,
		},
	}
	if r.Artifact.Config != nil {
		t.Metadata.ImageConfig = *r.Artifact.Config
	}
	if r.OS.ID != "" {
		t.Metadata.OS = &TrivyOS{Family: r.OS.ID, Name: r.OS.Version, EOSL: r.OS.EOSL}
	}
	if r.Status == StatusUnsupported {
		return t
	}
	res := TrivyResult{Target: r.Target(), Class: "os-pkgs", Type: r.OS.ID}
	for _, f := range r.Findings {
		v := TrivyDetectedVuln{
			VulnerabilityID:  f.VulnerabilityID,
			VendorIDs:        f.FixedBy,
			PkgID:            f.PkgName + "@" + f.InstalledVersion,
			PkgName:          f.PkgName,
			InstalledVersion: f.InstalledVersion,
			FixedVersion:     f.FixedVersion,
			Status:           trivyStatus(f.Status),
			SeveritySource:   trivySeveritySource(f.SeveritySource),
			Title:            f.Title,
			Description:      f.Description,
			Severity:         string(f.Severity),
			References:       f.References,
		}
		if len(f.References) > 0 {
			v.PrimaryURL = f.References[0]
		}
		if ds, ok := dataSources[f.DataSource]; ok {
			v.DataSource = &ds
		} else if f.DataSource != "" {
			v.DataSource = &TrivyDataSource{ID: f.DataSource, Name: f.DataSource}
		}
		res.Vulnerabilities = append(res.Vulnerabilities, v)
	}
	t.Results = []TrivyResult{res}
	return t
}

// WriteTrivyJSON writes r in Trivy's JSON report schema (SchemaVersion 2).
func WriteTrivyJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(TrivyFromReport(r)); err != nil {
		return fmt.Errorf("writing Trivy JSON report: %w", err)
	}
	return nil
}

// Writer writes a report in one format.
type Writer func(w io.Writer, r *Report) error

// Formats maps format names to their writers: table, json, trivy-json.
func Formats() map[string]Writer {
	return map[string]Writer{
		"table": WriteTable, "json": WriteJSON, "trivy-json": WriteTrivyJSON,
		"sarif": WriteSARIF, "cyclonedx": WriteCycloneDX, "openvex": WriteOpenVEX,
	}
}

// trivySeveritySource maps where a severity came from to Trivy's source
// IDs ("debian", "ubuntu", "nvd"...): drydock's own JSON says which feed
// field it was ("debian urgency", "ubuntu priority", "osv cvss_v3").
func trivySeveritySource(s string) string {
	switch {
	case s == "":
		return ""
	case strings.HasPrefix(s, "debian"):
		return "debian"
	case strings.HasPrefix(s, "ubuntu"):
		return "ubuntu"
	case strings.HasPrefix(s, "alpine"):
		return "alpine"
	case strings.HasPrefix(s, "osv"):
		return "osv"
	}
	return s
}
