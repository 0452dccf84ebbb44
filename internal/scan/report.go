package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// Report is the result of scanning one image (or root filesystem).
//
// Its JSON form (WriteJSON) is drydock's stable report schema,
// schemaVersion 1. Fields are only ever added within a schema version:
//
//	{
//	  "schemaVersion": 1,
//	  "artifact": {"name", "digest", "imageID", "diffIDs": [], "repoDigests": [], "platform"},
//	  "os": {"family", "id", "name", "prettyName", "version", "codename", "release", "distroless", "eosl"},
//	  "status": "ok" | "end_of_life" | "unsupported",
//	  "statusReason": "why, when not ok",
//	  "support": {"state": "supported|lts|elts|ended|unknown", "until": RFC 3339, "codename", "publicSupportEnded"},
//	  "scannedAt": RFC 3339,
//	  "db": {"path", "schemaVersion", "builtAt", "age" (ns), "stale", "sources": [{"name", "dataAsOf"}]},
//	  "filters": {"ignoreUnfixed", "severities": []},
//	  "packages": N, "sourcePackages": N,
//	  "findings": [{"vulnerabilityID", "pkgName", "pkgArch", "installedVersion", "srcName",
//	                "srcVersion", "ecosystem", "fixedVersion", "status", "severity",
//	                "severitySource", "title", "description", "references": [],
//	                "fixedBy": [], "dataSource"}],
//	  "packageSupport": [{"srcName", "binaries": [], "kind": "ended|limited",
//	                      "lastVersion", "endDate", "details", "source"}],
//	  "warnings": []
//	}
//
// Empty optional fields are omitted; findings is always present (an empty
// list on a clean or unsupported scan: read status before findings).
type Report struct {
	SchemaVersion  int       `json:"schemaVersion"`
	Artifact       Artifact  `json:"artifact"`
	OS             OS        `json:"os"`
	Status         Status    `json:"status"`
	StatusReason   string    `json:"statusReason,omitempty"`
	Support        Support   `json:"support,omitzero"`
	ScannedAt      time.Time `json:"scannedAt"`
	DB             DBInfo    `json:"db"`
	Filters        Filters   `json:"filters"`
	Packages       int       `json:"packages"`
	SourcePackages int       `json:"sourcePackages"`
	// InventoryCached is true when the packages came from the inventory
	// stored for this manifest digest, without reading the image's layers.
	InventoryCached bool                 `json:"inventoryCached,omitempty"`
	Findings        []Finding            `json:"findings"`
	PackageSupport  []PackageSupportNote `json:"packageSupport,omitempty"`
	Warnings        []string             `json:"warnings,omitempty"`
}

// Artifact identifies what was scanned.
type Artifact struct {
	// Name is how the user named it (set by the caller).
	Name string `json:"name,omitempty"`
	// Digest is the manifest digest, ImageID the config digest.
	Digest      string         `json:"digest,omitempty"`
	ImageID     string         `json:"imageID,omitempty"`
	DiffIDs     []string       `json:"diffIDs,omitempty"`
	RepoDigests []string       `json:"repoDigests,omitempty"`
	Platform    string         `json:"platform,omitempty"`
	Config      *v1.ConfigFile `json:"-"`
}

// OS is the detected operating system.
type OS struct {
	Family     string `json:"family,omitempty"`
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	PrettyName string `json:"prettyName,omitempty"`
	// Version is the full version ("11.11" from etc/debian_version).
	Version  string `json:"version,omitempty"`
	Codename string `json:"codename,omitempty"`
	// Release is the DB's release key ("11").
	Release    string `json:"release,omitempty"`
	Distroless bool   `json:"distroless,omitempty"`
	// EOSL is set when the release is end-of-life.
	EOSL bool `json:"eosl,omitempty"`
}

// Support is the release's support state at scan time.
type Support struct {
	State    string    `json:"state,omitempty"`
	Until    time.Time `json:"until,omitzero"`
	Codename string    `json:"codename,omitempty"`
	// PublicSupportEnded is, for an end-of-life release, the last day of
	// public security support (LTS included; paid ELTS/ESM excluded).
	PublicSupportEnded time.Time `json:"publicSupportEnded,omitzero"`
}

// DBInfo says which database the scan used.
type DBInfo struct {
	Path          string        `json:"path,omitempty"`
	SchemaVersion int           `json:"schemaVersion,omitempty"`
	BuiltAt       time.Time     `json:"builtAt"`
	Age           time.Duration `json:"age"`
	// DataAsOf is the newest record's date (zero when no source dates
	// its records) and DataAge the data's age: since DataAsOf, else since
	// the build. Stale compares DataAge with the limit.
	DataAsOf time.Time     `json:"dataAsOf,omitzero"`
	DataAge  time.Duration `json:"dataAge"`
	Stale    bool          `json:"stale"`
	Sources  []DBSource    `json:"sources,omitempty"`
}

// DBSource is one feed the database was built from.
type DBSource struct {
	Name     string    `json:"name"`
	DataAsOf time.Time `json:"dataAsOf,omitzero"`
}

// Filters are the filters applied to the findings.
type Filters struct {
	IgnoreUnfixed bool              `json:"ignoreUnfixed"`
	Severities    []vulndb.Severity `json:"severities,omitempty"`
}

// Finding is one vulnerability in one installed binary package.
type Finding struct {
	VulnerabilityID  string `json:"vulnerabilityID"`
	PkgName          string `json:"pkgName"` // binary package
	PkgArch          string `json:"pkgArch,omitempty"`
	InstalledVersion string `json:"installedVersion"` // binary package version
	SrcName          string `json:"srcName"`
	SrcVersion       string `json:"srcVersion"` // compared with FixedVersion
	Ecosystem        string `json:"ecosystem"`
	// FixedVersion is set for fixable findings only.
	FixedVersion   string          `json:"fixedVersion,omitempty"`
	Status         vulndb.Status   `json:"status"`
	Severity       vulndb.Severity `json:"severity"`
	SeveritySource string          `json:"severitySource,omitempty"`
	Title          string          `json:"title,omitempty"`
	Description    string          `json:"description,omitempty"`
	References     []string        `json:"references,omitempty"`
	// FixedBy lists the advisories (DSA, DLA, ALSA) that shipped the fix.
	FixedBy []string `json:"fixedBy,omitempty"`
	// DataSource is the feed the advisory came from.
	DataSource string `json:"dataSource,omitempty"`
}

// Fixable reports whether a fixed version exists.
func (f Finding) Fixable() bool { return f.FixedVersion != "" }

// PackageSupportNote flags an installed source package whose security
// support is limited or has ended (debian-security-support).
type PackageSupportNote struct {
	SrcName     string    `json:"srcName"`
	Binaries    []string  `json:"binaries,omitempty"`
	Kind        string    `json:"kind"`
	LastVersion string    `json:"lastVersion,omitempty"`
	EndDate     time.Time `json:"endDate,omitzero"`
	Details     string    `json:"details,omitempty"`
	Source      string    `json:"source,omitempty"`
}

// Clean reports whether the report is a pass: a supported OS and no
// finding. An end-of-life or unsupported OS is never clean.
func (r *Report) Clean() bool { return r.Status == StatusOK && len(r.Findings) == 0 }

// Counts returns the number of findings per severity.
func (r *Report) Counts() map[vulndb.Severity]int {
	m := make(map[vulndb.Severity]int, len(Severities))
	for _, s := range Severities {
		m[s] = 0
	}
	for _, f := range r.Findings {
		m[f.Severity]++
	}
	return m
}

// Target is the report's target line, Trivy's form:
// "NAME (debian 11.11)".
func (r *Report) Target() string {
	name := r.Artifact.Name
	if name == "" {
		name = r.Artifact.Digest
	}
	if r.OS.ID == "" {
		return name
	}
	return fmt.Sprintf("%s (%s %s)", name, r.OS.ID, r.OS.Version)
}

// WriteJSON writes r in drydock's JSON schema (see Report), indented.
func WriteJSON(w io.Writer, r *Report) error {
	out := *r
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("writing JSON report: %w", err)
	}
	return nil
}
