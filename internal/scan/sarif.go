package scan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// SARIF 2.1.0 (OASIS), the subset drydock writes. The shape follows
// Trivy's SARIF output (pkg/report/sarif.go): one rule per vulnerability
// ID with a CVSS-like properties.security-severity (GitHub code scanning
// reads it), one result per finding.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	// drydockURI is the project's home, the SARIF driver's informationUri.
	drydockURI = "https://github.com/drydock-project/drydock"
)

// SARIFLog is a SARIF log (sarifLog).
type SARIFLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []SARIFRun `json:"runs"`
}

// SARIFRun is one run of one tool.
type SARIFRun struct {
	Tool               SARIFTool                   `json:"tool"`
	Invocations        []SARIFInvocation           `json:"invocations,omitempty"`
	OriginalURIBaseIDs map[string]SARIFArtifactLoc `json:"originalUriBaseIds,omitempty"`
	Results            []SARIFResult               `json:"results"`
	Properties         map[string]any              `json:"properties,omitempty"`
}

// SARIFTool is a run's tool.
type SARIFTool struct {
	Driver SARIFDriver `json:"driver"`
}

// SARIFDriver is the tool component that ran.
type SARIFDriver struct {
	Name           string      `json:"name"`
	FullName       string      `json:"fullName,omitempty"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []SARIFRule `json:"rules"`
}

// SARIFRule is a reportingDescriptor: one vulnerability.
type SARIFRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name,omitempty"`
	ShortDescription     SARIFText         `json:"shortDescription"`
	FullDescription      *SARIFText        `json:"fullDescription,omitempty"`
	DefaultConfiguration SARIFRuleConfig   `json:"defaultConfiguration"`
	HelpURI              string            `json:"helpUri,omitempty"`
	Help                 *SARIFHelp        `json:"help,omitempty"`
	Properties           SARIFRuleProperty `json:"properties"`
}

// SARIFText is a message or description (text only).
type SARIFText struct {
	Text string `json:"text"`
}

// SARIFHelp is a rule's help, as text and Markdown.
type SARIFHelp struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

// SARIFRuleConfig is a rule's default configuration.
type SARIFRuleConfig struct {
	Level string `json:"level"`
}

// SARIFRuleProperty is a rule's property bag.
type SARIFRuleProperty struct {
	Precision        string   `json:"precision"`
	SecuritySeverity string   `json:"security-severity"`
	Tags             []string `json:"tags"`
}

// SARIFInvocation reports the run's status notes (end-of-life,
// unsupported OS, warnings).
type SARIFInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []SARIFNotification `json:"toolExecutionNotifications,omitempty"`
}

// SARIFNotification is one notification of an invocation.
type SARIFNotification struct {
	Level   string    `json:"level"`
	Message SARIFText `json:"message"`
}

// SARIFResult is one finding.
type SARIFResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             SARIFText         `json:"message"`
	Locations           []SARIFLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints,omitempty"`
	Properties          map[string]string `json:"properties,omitempty"`
}

// SARIFLocation is where a finding is: the package database file in the
// image (physical) and the image and package (logical).
type SARIFLocation struct {
	PhysicalLocation *SARIFPhysical         `json:"physicalLocation,omitempty"`
	LogicalLocations []SARIFLogicalLocation `json:"logicalLocations,omitempty"`
}

// SARIFPhysical is a physical location: an artifact and a region in it.
type SARIFPhysical struct {
	ArtifactLocation SARIFArtifactLoc `json:"artifactLocation"`
	Region           *SARIFRegion     `json:"region,omitempty"`
}

// SARIFRegion is a region of an artifact. drydock points at the start of
// the package database, as Trivy does for image findings: code-scanning
// services (GitHub's) want a region on every result.
type SARIFRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
	EndLine     int `json:"endLine"`
	EndColumn   int `json:"endColumn"`
}

// SARIFArtifactLoc is an artifactLocation.
type SARIFArtifactLoc struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

// SARIFLogicalLocation is a logical location (the image, the package).
type SARIFLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName,omitempty"`
	Kind               string `json:"kind,omitempty"`
}

// sarifLevel maps a severity to a SARIF level: error for HIGH and
// CRITICAL, warning for MEDIUM, note otherwise.
func sarifLevel(s vulndb.Severity) string {
	switch s {
	case vulndb.SeverityCritical, vulndb.SeverityHigh:
		return "error"
	case vulndb.SeverityMedium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score Trivy gives each severity
// (pkg/report/sarif.go), which GitHub maps back to its levels.
func securitySeverity(s vulndb.Severity) string {
	switch s {
	case vulndb.SeverityCritical:
		return "9.5"
	case vulndb.SeverityHigh:
		return "8.0"
	case vulndb.SeverityMedium:
		return "5.5"
	case vulndb.SeverityLow:
		return "2.0"
	}
	return "0.0"
}

// pkgDBPath is the package database a finding's package was read from,
// relative to the image root.
func pkgDBPath(r *Report, f Finding) string {
	switch f.Ecosystem {
	case "apk":
		return "lib/apk/db/installed"
	case "rpm":
		return "var/lib/rpm"
	}
	if r.OS.Distroless {
		return "var/lib/dpkg/status.d/" + f.PkgName
	}
	return "var/lib/dpkg/status"
}

// imageName is the image as the report names it.
func imageName(r *Report) string {
	return cmp.Or(r.Artifact.Name, r.Artifact.Digest, "image")
}

// SARIFFromReport converts r to a SARIF 2.1.0 log with one run.
func SARIFFromReport(r *Report) SARIFLog {
	info := buildinfo.Get()
	run := SARIFRun{
		Tool: SARIFTool{Driver: SARIFDriver{Name: "drydock", FullName: "drydock container-image supply-chain guard",
			Version: info.Version, InformationURI: drydockURI, Rules: []SARIFRule{}}},
		OriginalURIBaseIDs: map[string]SARIFArtifactLoc{"ROOTPATH": {URI: "file:///"}},
		Results:            []SARIFResult{},
		Properties: map[string]any{
			"imageName": imageName(r), "imageDigest": r.Artifact.Digest, "imageID": r.Artifact.ImageID,
			"os": strings.TrimSpace(r.OS.ID + " " + r.OS.Version), "status": string(r.Status),
		},
	}
	inv := SARIFInvocation{ExecutionSuccessful: true}
	switch r.Status {
	case StatusEndOfLife:
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications,
			SARIFNotification{Level: "error", Message: SARIFText{Text: "end of life: " + r.StatusReason}})
	case StatusUnsupported:
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications,
			SARIFNotification{Level: "error", Message: SARIFText{Text: "unsupported OS, no vulnerabilities were checked: " + r.StatusReason}})
	}
	for _, w := range r.Warnings {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, SARIFNotification{Level: "warning", Message: SARIFText{Text: w}})
	}
	run.Invocations = []SARIFInvocation{inv}

	// Rules: one per vulnerability ID, sorted; the first finding of an ID
	// (in report order) describes it.
	byID := map[string]Finding{}
	for _, f := range r.Findings {
		if _, ok := byID[f.VulnerabilityID]; !ok {
			byID[f.VulnerabilityID] = f
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule(byID[id]))
	}

	findings := slices.Clone(r.Findings)
	SortFindings(findings)
	image := imageName(r)
	for _, f := range findings {
		imageFQN := image
		if r.Artifact.Digest != "" && !strings.Contains(image, r.Artifact.Digest) {
			imageFQN = image + "@" + r.Artifact.Digest
		}
		run.Results = append(run.Results, SARIFResult{
			RuleID:    f.VulnerabilityID,
			RuleIndex: index[f.VulnerabilityID],
			Level:     sarifLevel(f.Severity),
			Message:   SARIFText{Text: sarifMessage(image, f)},
			Locations: []SARIFLocation{{
				PhysicalLocation: &SARIFPhysical{ArtifactLocation: SARIFArtifactLoc{URI: pkgDBPath(r, f), URIBaseID: "ROOTPATH"},
					Region: &SARIFRegion{StartLine: 1, StartColumn: 1, EndLine: 1, EndColumn: 1}},
				LogicalLocations: []SARIFLogicalLocation{
					{Name: image, FullyQualifiedName: imageFQN, Kind: "module"},
					{Name: f.PkgName, FullyQualifiedName: imageFQN + "/" + f.PkgName + "@" + f.InstalledVersion, Kind: "package"},
				},
			}},
			PartialFingerprints: map[string]string{"drydock/v1": f.VulnerabilityID + "/" + f.PkgName + "/" + f.PkgArch + "@" + f.InstalledVersion},
			Properties: nonEmpty(map[string]string{
				"pkgName": f.PkgName, "installedVersion": f.InstalledVersion, "fixedVersion": f.FixedVersion,
				"srcName": f.SrcName, "srcVersion": f.SrcVersion, "status": string(f.Status), "severity": string(f.Severity),
			}),
		})
	}
	return SARIFLog{Schema: sarifSchema, Version: sarifVersion, Runs: []SARIFRun{run}}
}

// nonEmpty drops the empty values of m.
func nonEmpty(m map[string]string) map[string]string {
	maps.DeleteFunc(m, func(_, v string) bool { return v == "" })
	return m
}

// sarifRule describes the vulnerability of f.
func sarifRule(f Finding) SARIFRule {
	title := cmp.Or(oneLine(f.Title), f.VulnerabilityID)
	rule := SARIFRule{
		ID:                   f.VulnerabilityID,
		Name:                 "OsPackageVulnerability",
		ShortDescription:     SARIFText{Text: title},
		DefaultConfiguration: SARIFRuleConfig{Level: sarifLevel(f.Severity)},
		Properties: SARIFRuleProperty{Precision: "very-high", SecuritySeverity: securitySeverity(f.Severity),
			Tags: []string{"vulnerability", "security", string(f.Severity)}},
	}
	if f.Description != "" {
		rule.FullDescription = &SARIFText{Text: f.Description}
	}
	if len(f.References) > 0 {
		rule.HelpURI = f.References[0]
	}
	text := fmt.Sprintf("Vulnerability %s\nSeverity: %s\n%s", f.VulnerabilityID, f.Severity, title)
	md := fmt.Sprintf("**Vulnerability %s**\n| Severity | Title |\n| --- | --- |\n| %s | %s |", f.VulnerabilityID, f.Severity, title)
	if rule.HelpURI != "" {
		text += "\nLink: " + rule.HelpURI
		md += "\n\n[" + f.VulnerabilityID + "](" + rule.HelpURI + ")"
	}
	rule.Help = &SARIFHelp{Text: text, Markdown: md}
	return rule
}

// sarifMessage names the package, installed and fixed version.
func sarifMessage(image string, f Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nInstalled Version: %s\nVulnerability: %s\nSeverity: %s\n", f.PkgName, f.InstalledVersion, f.VulnerabilityID, f.Severity)
	if f.Fixable() {
		fmt.Fprintf(&b, "Fixed Version: %s\n", f.FixedVersion)
	} else {
		fmt.Fprintf(&b, "Fixed Version: none (vendor status: %s)\n", f.Status)
	}
	fmt.Fprintf(&b, "Source Package: %s %s\nImage: %s", f.SrcName, f.SrcVersion, image)
	if len(f.References) > 0 {
		fmt.Fprintf(&b, "\nLink: %s", f.References[0])
	}
	return b.String()
}

// WriteSARIF writes r as a SARIF 2.1.0 log (one run, tool drydock).
func WriteSARIF(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(SARIFFromReport(r)); err != nil {
		return fmt.Errorf("writing SARIF report: %w", err)
	}
	return nil
}
