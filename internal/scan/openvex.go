package scan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/buildinfo"
)

// OpenVEX 0.2.0 (https://github.com/openvex/spec), the subset drydock
// writes. The types are drydock's own: github.com/openvex/go-vex pulls in
// in-toto, go-sarif and securesystemslib for what is a few structs here.
const (
	openVEXContext = "https://openvex.dev/ns/v0.2.0"
	// OpenVEX statuses.
	VEXNotAffected        = "not_affected"
	VEXAffected           = "affected"
	VEXFixed              = "fixed"
	VEXUnderInvestigation = "under_investigation"
)

// VEXDocument is an OpenVEX document.
type VEXDocument struct {
	Context    string         `json:"@context"`
	ID         string         `json:"@id"`
	Author     string         `json:"author"`
	AuthorRole string         `json:"role,omitempty"`
	Timestamp  time.Time      `json:"timestamp"`
	Version    int            `json:"version"`
	Tooling    string         `json:"tooling,omitempty"`
	Statements []VEXStatement `json:"statements"`
}

// VEXStatement says the status of one vulnerability in products.
type VEXStatement struct {
	Vulnerability   VEXVulnerability `json:"vulnerability"`
	Products        []VEXProduct     `json:"products"`
	Status          string           `json:"status"`
	StatusNotes     string           `json:"status_notes,omitempty"`
	Justification   string           `json:"justification,omitempty"`
	ImpactStatement string           `json:"impact_statement,omitempty"`
	ActionStatement string           `json:"action_statement,omitempty"`
}

// VEXVulnerability names a vulnerability.
type VEXVulnerability struct {
	ID          string   `json:"@id,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Aliases     []string `json:"aliases,omitempty"`
}

// VEXProduct is a product (the image) with the subcomponents (packages)
// the statement is about.
type VEXProduct struct {
	VEXComponent
	Subcomponents []VEXComponent `json:"subcomponents,omitempty"`
}

// VEXComponent is a product or subcomponent: an IRI and its identifiers.
type VEXComponent struct {
	ID          string            `json:"@id"`
	Identifiers map[string]string `json:"identifiers,omitempty"`
	Hashes      map[string]string `json:"hashes,omitempty"`
}

// OpenVEXFromReport converts r to an OpenVEX document: one statement per
// vulnerability and product (the image), with the affected packages as
// subcomponents. A fixable finding is affected with an action statement
// (update to the fixed version); an unfixed one is affected with the
// vendor's status in the notes. Packages of one vulnerability that differ
// in fixed version or status get a statement each. The timestamp is the
// report's scan time; the @id derives from the report.
func OpenVEXFromReport(r *Report) VEXDocument {
	doc := VEXDocument{
		Context:    openVEXContext,
		ID:         "urn:uuid:" + reportUUID(r),
		Author:     "drydock",
		AuthorRole: "Document Creator",
		Timestamp:  r.ScannedAt.UTC(),
		Version:    1,
		Tooling:    "drydock " + buildinfo.Get().Version,
		Statements: []VEXStatement{},
	}
	product := VEXComponent{ID: cmp.Or(imagePURL(r), imageName(r))}
	if p := imagePURL(r); p != "" {
		product.Identifiers = map[string]string{"purl": p}
	}
	if alg, hexd, ok := strings.Cut(r.Artifact.Digest, ":"); ok && alg == "sha256" {
		product.Hashes = map[string]string{"sha-256": hexd}
	}

	type key struct{ id, fixed, src, status string }
	groups := map[key][]Finding{}
	var keys []key
	for _, f := range r.Findings {
		k := key{f.VulnerabilityID, f.FixedVersion, f.SrcName, string(f.Status)}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], f)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(strings.Compare(a.id, b.id), strings.Compare(a.src, b.src), strings.Compare(a.fixed, b.fixed), strings.Compare(a.status, b.status))
	})
	for _, k := range keys {
		fs := groups[k]
		f := fs[0]
		st := VEXStatement{
			Vulnerability: VEXVulnerability{Name: f.VulnerabilityID, Description: cmp.Or(oneLine(f.Title), oneLine(f.Description))},
			Status:        VEXAffected,
		}
		if len(f.References) > 0 {
			st.Vulnerability.ID = f.References[0]
		}
		var subs []VEXComponent
		var names []string
		seen := map[string]bool{}
		for _, g := range fs {
			purl := packageURL(r, pkgOf(g))
			if seen[purl] {
				continue
			}
			seen[purl] = true
			subs = append(subs, VEXComponent{ID: purl, Identifiers: map[string]string{"purl": purl}})
			names = append(names, g.PkgName)
		}
		slices.SortFunc(subs, func(a, b VEXComponent) int { return strings.Compare(a.ID, b.ID) })
		slices.Sort(names)
		names = slices.Compact(names)
		st.Products = []VEXProduct{{VEXComponent: product, Subcomponents: subs}}
		source := ""
		if f.DataSource != "" {
			source = " (" + f.DataSource + ")"
		}
		if f.Fixable() {
			st.ActionStatement = fmt.Sprintf("Update %s (binary packages %s) to version %s or later.",
				f.SrcName, strings.Join(names, ", "), f.FixedVersion)
			st.StatusNotes = fmt.Sprintf("Fixed in source package %s %s%s", f.SrcName, f.FixedVersion, source)
			if len(f.FixedBy) > 0 {
				st.StatusNotes += " by " + strings.Join(f.FixedBy, ", ")
			}
			st.StatusNotes += "."
		} else {
			st.ActionStatement = fmt.Sprintf("No fixed version of %s is available; the vendor status is %s. Monitor for an update or mitigate.",
				f.SrcName, f.Status)
			st.StatusNotes = fmt.Sprintf("Vendor status%s: %s; no fixed version.", source, f.Status)
		}
		doc.Statements = append(doc.Statements, st)
	}
	return doc
}

// WriteOpenVEX writes r as an OpenVEX 0.2.0 document.
func WriteOpenVEX(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(OpenVEXFromReport(r)); err != nil {
		return fmt.Errorf("writing OpenVEX report: %w", err)
	}
	return nil
}
