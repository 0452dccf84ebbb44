package attest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/scan"
)

// What drydock signs about an image it patched: an SLSA v1 provenance
// statement, an OpenVEX document marking fixed each vulnerability the
// patch removed (keyed to the image digest), and a CycloneDX SBOM of the
// patched image, each an in-toto statement whose subject is the patched
// digest, attached as referrers and in cosign's .att tag (Write).
//
// They are built from a PatchRecord, drydock's own account of a patch;
// FromPatchResult (patchrecord.go) fills one from the patch engine's
// result, the only place that knows the engine's types.

// Predicate types, as cosign's --type names them (slsaprovenance1,
// openvex, cyclonedx).
const (
	PredicateSLSAProvenanceV1 = "https://slsa.dev/provenance/v1"
	PredicateOpenVEX          = "https://openvex.dev/ns"
	PredicateCycloneDX        = "https://cyclonedx.org/bom"
	// PatchBuildType is the SLSA build type of a drydock patch.
	PatchBuildType = "https://drydock-project.github.io/buildtypes/patch/v1"
)

// PatchRecord is what a patch of one image did.
type PatchRecord struct {
	// Name and Digest are the patched image (the subject).
	Name   string
	Digest digest.Digest
	// Original is the input image's digest, OriginalName how it was named.
	Original     digest.Digest
	OriginalName string
	Platform     string
	// Request is the patch request as given (mode, packages, ...).
	Request map[string]any
	// Packages are the package changes, with their archive URLs and
	// hashes.
	Packages []PatchedPackage
	// ReleaseFiles are the signed archive indexes the packages were
	// verified from (InRelease or Release, by URL and SHA-256).
	ReleaseFiles []ArchiveFile
	// Started and Finished time the patch.
	Started, Finished time.Time
}

// PatchedPackage is one package a patch installed.
type PatchedPackage struct {
	Name  string `json:"name"`
	From  string `json:"from,omitempty"`
	To    string `json:"to"`
	Suite string `json:"suite,omitempty"`
	URL   string `json:"url"`
	// SHA256 is the .deb's hash as the signed index gives it ("" when
	// the engine did not report it).
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// ArchiveFile is a file of a package archive by URL and hash.
type ArchiveFile struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256,omitempty"`
}

// slsa is the SLSA v1 provenance predicate (the fields drydock fills).
type slsa struct {
	BuildDefinition struct {
		BuildType            string         `json:"buildType"`
		ExternalParameters   map[string]any `json:"externalParameters"`
		InternalParameters   map[string]any `json:"internalParameters,omitempty"`
		ResolvedDependencies []resourceDesc `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
		Metadata struct {
			StartedOn  time.Time `json:"startedOn,omitzero"`
			FinishedOn time.Time `json:"finishedOn,omitzero"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

type resourceDesc struct {
	URI         string            `json:"uri,omitempty"`
	Name        string            `json:"name,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// ProvenanceStatement is the SLSA v1 provenance of a patch: the patched
// digest as subject; as resolved dependencies the original image, every
// package installed (URL, SHA-256, versions) and the Release files.
func ProvenanceStatement(r PatchRecord) (*Statement, error) {
	var p slsa
	p.BuildDefinition.BuildType = PatchBuildType
	p.BuildDefinition.ExternalParameters = map[string]any{"image": r.OriginalName}
	for k, v := range r.Request {
		p.BuildDefinition.ExternalParameters[k] = v
	}
	if r.Platform != "" {
		p.BuildDefinition.InternalParameters = map[string]any{"platform": r.Platform}
	}
	deps := []resourceDesc{{Name: cmp.Or(r.OriginalName, "original"), URI: ociURI(r.OriginalName, r.Original),
		Digest: digestMap(r.Original), Annotations: map[string]any{"role": "original image"}}}
	pkgs := slices.Clone(r.Packages)
	slices.SortFunc(pkgs, func(a, b PatchedPackage) int { return strings.Compare(a.Name, b.Name) })
	for _, pk := range pkgs {
		d := resourceDesc{Name: pk.Name, URI: pk.URL, Annotations: map[string]any{"from": pk.From, "to": pk.To, "suite": pk.Suite}}
		if pk.SHA256 != "" {
			d.Digest = map[string]string{"sha256": pk.SHA256}
		}
		deps = append(deps, d)
	}
	for _, f := range r.ReleaseFiles {
		d := resourceDesc{URI: f.URL, Annotations: map[string]any{"role": "signed archive index"}}
		if f.SHA256 != "" {
			d.Digest = map[string]string{"sha256": f.SHA256}
		}
		deps = append(deps, d)
	}
	p.BuildDefinition.ResolvedDependencies = deps
	info := buildinfo.Get()
	p.RunDetails.Builder.ID = "https://drydock-project.github.io/builders/drydock-patch"
	p.RunDetails.Builder.Version = map[string]string{"drydock": info.Version}
	p.RunDetails.Metadata.StartedOn, p.RunDetails.Metadata.FinishedOn = r.Started.UTC(), r.Finished.UTC()
	return NewStatement(r.Name, r.Digest, PredicateSLSAProvenanceV1, p)
}

// Fixed lists the vulnerabilities whose findings a patch removed: found
// in the original's scan (before) and not in the patched image's (after),
// sorted.
func Fixed(before, after *scan.Report) []string {
	still := map[string]bool{}
	for _, f := range after.Findings {
		still[f.VulnerabilityID] = true
	}
	var out []string
	for _, f := range before.Findings {
		if !still[f.VulnerabilityID] {
			out = append(out, f.VulnerabilityID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// VEXStatement is the OpenVEX document of a patch: one statement marking
// fixed each vulnerability the patch removed (Fixed), whose product is the
// patched image by digest (pkg:oci purl and hash) and whose subcomponents
// are the packages the original had it in. It returns the vulnerabilities.
func VEXStatement(r PatchRecord, before, after *scan.Report) (*Statement, []string, error) {
	fixed := Fixed(before, after)
	isFixed := map[string]bool{}
	for _, id := range fixed {
		isFixed[id] = true
	}
	product := scan.VEXComponent{ID: imagePURL(r), Identifiers: map[string]string{"purl": imagePURL(r)},
		Hashes: map[string]string{"sha-256": r.Digest.Encoded()}}
	// The original report's own OpenVEX gives each finding's packages
	// with the purls drydock uses everywhere; keep the fixed ones.
	orig := scan.OpenVEXFromReport(before)
	doc := scan.VEXDocument{Context: "https://openvex.dev/ns/v0.2.0", ID: "urn:drydock:patch:" + r.Digest.String(),
		Author: "drydock", AuthorRole: "Document Creator", Timestamp: r.Finished.UTC(), Version: 1,
		Tooling: "drydock " + buildinfo.Get().Version, Statements: []scan.VEXStatement{}}
	seen := map[string]int{}
	for _, st := range orig.Statements {
		id := st.Vulnerability.Name
		if !isFixed[id] {
			continue
		}
		var subs []scan.VEXComponent
		for _, p := range st.Products {
			subs = append(subs, p.Subcomponents...)
		}
		if i, ok := seen[id]; ok {
			p := &doc.Statements[i].Products[0]
			p.Subcomponents = append(p.Subcomponents, subs...)
			continue
		}
		seen[id] = len(doc.Statements)
		doc.Statements = append(doc.Statements, scan.VEXStatement{
			Vulnerability: scan.VEXVulnerability{ID: st.Vulnerability.ID, Name: id, Description: st.Vulnerability.Description},
			Products:      []scan.VEXProduct{{VEXComponent: product, Subcomponents: subs}},
			Status:        scan.VEXFixed,
			StatusNotes:   fmt.Sprintf("Fixed by drydock's patch of %s: the packages were updated.", cmp.Or(r.OriginalName, r.Original.String())),
		})
	}
	st, err := NewStatement(r.Name, r.Digest, PredicateOpenVEX, doc)
	return st, fixed, err
}

// SBOMStatement is the CycloneDX SBOM of the patched image as an in-toto
// statement: every package of its inventory.
func SBOMStatement(r PatchRecord, art scan.Artifact, snap *scan.Snapshot) (*Statement, error) {
	if art.Name == "" {
		art.Name = r.Name
	}
	return NewStatement(r.Name, r.Digest, PredicateCycloneDX, scan.SBOM(art, snap, r.Finished))
}

// PatchStatements builds the three statements of a patch.
func PatchStatements(r PatchRecord, before, after *scan.Report, snap *scan.Snapshot) ([]*Statement, []string, error) {
	prov, err := ProvenanceStatement(r)
	if err != nil {
		return nil, nil, err
	}
	vex, fixed, err := VEXStatement(r, before, after)
	if err != nil {
		return nil, nil, err
	}
	sbom, err := SBOMStatement(r, after.Artifact, snap)
	if err != nil {
		return nil, nil, err
	}
	return []*Statement{prov, vex, sbom}, fixed, nil
}

func digestMap(d digest.Digest) map[string]string {
	if d == "" {
		return nil
	}
	return map[string]string{string(d.Algorithm()): d.Encoded()}
}

// imagePURL is the patched image's pkg:oci purl.
func imagePURL(r PatchRecord) string {
	name := r.Name[strings.LastIndex(r.Name, "/")+1:]
	name, _, _ = strings.Cut(name, ":")
	return "pkg:oci/" + strings.ToLower(cmp.Or(name, "image")) + "@" + strings.ReplaceAll(r.Digest.String(), ":", "%3A")
}

// ociURI names an image by reference and digest.
func ociURI(name string, d digest.Digest) string {
	if name == "" || d == "" {
		return ""
	}
	name, _, _ = strings.Cut(name, "@")
	return "oci://" + name + "@" + d.String()
}
