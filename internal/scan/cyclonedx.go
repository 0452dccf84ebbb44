package scan

import (
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// CycloneDXSpec is the CycloneDX version WriteCycloneDX writes.
const CycloneDXSpec = cdx.SpecVersion1_6

// pkgRef identifies one installed binary package of a report.
type pkgRef struct {
	name, arch, version, ecosystem, src, srcVersion string
}

// reportPackages returns the installed packages named by r's findings,
// unique and sorted by purl. The report carries no full inventory, so
// these are the vulnerable packages only.
func reportPackages(r *Report) []pkgRef {
	seen := map[pkgRef]bool{}
	var out []pkgRef
	for _, f := range r.Findings {
		p := pkgOf(f)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b pkgRef) int { return strings.Compare(packageURL(r, a), packageURL(r, b)) })
	return out
}

func pkgOf(f Finding) pkgRef {
	return pkgRef{name: f.PkgName, arch: f.PkgArch, version: f.InstalledVersion, ecosystem: f.Ecosystem, src: f.SrcName, srcVersion: f.SrcVersion}
}

// packageURL is the package URL (purl) of an OS package, as Trivy writes
// them: pkg:deb/debian/nginx-light@1.22.1-9?arch=amd64&distro=debian-12,
// pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.21,
// pkg:rpm/rocky/bash@5.1.8-9.el9?arch=x86_64&distro=rocky-9; an epoch
// moves to the epoch qualifier.
func packageURL(r *Report, p pkgRef) string {
	typ := cmp.Or(p.ecosystem, "deb")
	ns := cmp.Or(r.OS.ID, r.OS.Family)
	version := p.version
	var epoch string
	if e, rest, ok := strings.Cut(version, ":"); ok && e != "" && strings.Trim(e, "0123456789") == "" {
		epoch, version = e, rest
	}
	var q []string
	if p.arch != "" {
		q = append(q, "arch="+purlEscape(p.arch))
	}
	if ns != "" {
		q = append(q, "distro="+purlEscape(ns+"-"+cmp.Or(r.OS.Release, r.OS.Version)))
	}
	if epoch != "" && epoch != "0" {
		q = append(q, "epoch="+epoch)
	}
	s := "pkg:" + typ + "/"
	if ns != "" {
		s += purlEscape(ns) + "/"
	}
	s += purlEscape(p.name)
	if version != "" {
		s += "@" + purlEscape(version)
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

// imagePURL is the image's pkg:oci purl (name@digest, with the
// repository_url of its first repo digest), or "" without a digest.
func imagePURL(r *Report) string {
	d := r.Artifact.Digest
	if d == "" {
		return ""
	}
	repo := ""
	if len(r.Artifact.RepoDigests) > 0 {
		repo, _, _ = strings.Cut(r.Artifact.RepoDigests[0], "@")
	}
	name := cmp.Or(repo, r.Artifact.Name)
	// Drop a transport (oci:, docker-archive:), a tag or digest, and the path.
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i:], "/") {
		name = name[:i]
	}
	name, _, _ = strings.Cut(name, "@")
	name = name[strings.LastIndexAny(name, "/:")+1:]
	name = strings.ToLower(cmp.Or(name, "image"))
	s := "pkg:oci/" + purlEscape(name) + "@" + purlEscape(d)
	if repo != "" {
		s += "?repository_url=" + purlEscape(repo)
	}
	return s
}

// purlEscape percent-encodes everything but unreserved characters.
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// uuidNamespaceURL is RFC 4122's name space ID for URLs.
var uuidNamespaceURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// reportUUID is a name-based (version 5, RFC 4122) UUID of what
// identifies a report: the image, the scan time, the database and the
// findings (in any order), so that the same scan gives the same serial
// number and document ID.
func reportUUID(r *Report) string {
	keys := make([]string, 0, len(r.Findings))
	for _, f := range r.Findings {
		keys = append(keys, f.VulnerabilityID+"/"+f.PkgName+"/"+f.PkgArch+"/"+f.InstalledVersion)
	}
	slices.Sort(keys)
	name := sha256.New()
	fmt.Fprintf(name, "%s\x00%s\x00%s\x00%s", r.Artifact.Name, r.Artifact.Digest,
		r.ScannedAt.UTC().Format(time.RFC3339Nano), r.DB.BuiltAt.UTC().Format(time.RFC3339Nano))
	for _, k := range keys {
		fmt.Fprintf(name, "\x00%s", k)
	}
	return uuidV5(fmt.Sprintf("%s/report/%x", drydockURI, name.Sum(nil)))
}

// nameUUID is a name-based UUID of an SBOM's identity (see SBOM).
func nameUUID(identity string) string {
	return uuidV5(fmt.Sprintf("%s/sbom/%x", drydockURI, sha256.Sum256([]byte(identity))))
}

// uuidV5 is the version 5 UUID of name in the URL name space.
func uuidV5(name string) string {
	h := sha1.New()
	h.Write(uuidNamespaceURL[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	x := hex.EncodeToString(u)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// cdxSeverity maps a severity to CycloneDX's.
func cdxSeverity(s vulndb.Severity) cdx.Severity {
	switch s {
	case vulndb.SeverityCritical:
		return cdx.SeverityCritical
	case vulndb.SeverityHigh:
		return cdx.SeverityHigh
	case vulndb.SeverityMedium:
		return cdx.SeverityMedium
	case vulndb.SeverityLow:
		return cdx.SeverityLow
	}
	return cdx.SeverityUnknown
}

// cdxAnalysis is the analysis a vendor status implies, or nil for a plain
// fixable finding: an update is the response; a vendor decision not to fix
// (will_not_fix, no_dsa), an end of support or an undecided status is
// said, with the status in the detail.
func cdxAnalysis(f Finding) *cdx.VulnerabilityAnalysis {
	a := &cdx.VulnerabilityAnalysis{Detail: fmt.Sprintf("vendor status: %s", f.Status)}
	switch {
	case f.Fixable():
		a.Response = &[]cdx.ImpactAnalysisResponse{cdx.IARUpdate}
		a.Detail = fmt.Sprintf("fixed in %s %s", f.SrcName, f.FixedVersion)
	case f.Status == vulndb.StatusWillNotFix || f.Status == vulndb.StatusNoDSA:
		a.Response = &[]cdx.ImpactAnalysisResponse{cdx.IARWillNotFix}
	case f.Status == vulndb.StatusEndOfLife:
		a.Response = &[]cdx.ImpactAnalysisResponse{cdx.IARCanNotFix}
	case f.Status == vulndb.StatusUndetermined:
		a.State = cdx.IASInTriage
	}
	return a
}

// CycloneDXFromReport converts r to a CycloneDX BOM: the image as
// metadata.component (a container), its OS as a component, the vulnerable
// OS packages with purls, and one vulnerability per (ID, source package).
func CycloneDXFromReport(r *Report) *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + reportUUID(r)
	bom.Version = 1

	imageRef := cmp.Or(imagePURL(r), "image:"+imageName(r))
	image := cdx.Component{BOMRef: imageRef, Type: cdx.ComponentTypeContainer, Name: imageName(r), Version: r.Artifact.Digest,
		PackageURL: imagePURL(r)}
	var imgProps []cdx.Property
	addProp := func(ps *[]cdx.Property, name, value string) {
		if value != "" {
			*ps = append(*ps, cdx.Property{Name: name, Value: value})
		}
	}
	addProp(&imgProps, "drydock:ImageID", r.Artifact.ImageID)
	for _, d := range r.Artifact.DiffIDs {
		addProp(&imgProps, "drydock:DiffID", d)
	}
	for _, d := range r.Artifact.RepoDigests {
		addProp(&imgProps, "drydock:RepoDigest", d)
	}
	addProp(&imgProps, "drydock:Platform", r.Artifact.Platform)
	addProp(&imgProps, "drydock:ScanStatus", string(r.Status))
	addProp(&imgProps, "drydock:ScanStatusReason", r.StatusReason)
	if len(imgProps) > 0 {
		image.Properties = &imgProps
	}
	info := buildinfo.Get()
	bom.Metadata = &cdx.Metadata{
		Timestamp: r.ScannedAt.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "drydock",
			Group: "drydock-project", Version: info.Version}}},
		Component: &image,
	}
	var metaProps []cdx.Property
	addProp(&metaProps, "drydock:DBPath", r.DB.Path)
	if !r.DB.BuiltAt.IsZero() {
		addProp(&metaProps, "drydock:DBBuiltAt", r.DB.BuiltAt.UTC().Format(time.RFC3339))
	}
	if len(metaProps) > 0 {
		bom.Metadata.Properties = &metaProps
	}

	components := []cdx.Component{}
	var deps []cdx.Dependency
	if r.OS.ID != "" {
		osRef := "os:" + r.OS.ID + "-" + r.OS.Version
		components = append(components, cdx.Component{BOMRef: osRef, Type: cdx.ComponentTypeOS, Name: r.OS.ID, Version: r.OS.Version})
		var pkgRefs []string
		for _, p := range reportPackages(r) {
			purl := packageURL(r, p)
			c := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: p.name, Version: p.version, PackageURL: purl}
			var props []cdx.Property
			addProp(&props, "drydock:SrcName", p.src)
			addProp(&props, "drydock:SrcVersion", p.srcVersion)
			addProp(&props, "drydock:PkgType", p.ecosystem)
			if len(props) > 0 {
				c.Properties = &props
			}
			components = append(components, c)
			pkgRefs = append(pkgRefs, purl)
		}
		deps = append(deps, cdx.Dependency{Ref: imageRef, Dependencies: &[]string{osRef}})
		if len(pkgRefs) > 0 {
			deps = append(deps, cdx.Dependency{Ref: osRef, Dependencies: &pkgRefs})
		}
	}
	bom.Components = &components
	if len(deps) > 0 {
		bom.Dependencies = &deps
	}
	vulns := cdxVulnerabilities(r)
	bom.Vulnerabilities = &vulns
	return bom
}

// cdxVulnerabilities groups r's findings by (vulnerability ID, source
// package): the packages of one source share the vendor status, severity
// and fixed version. Sorted by ID, then source package.
func cdxVulnerabilities(r *Report) []cdx.Vulnerability {
	type key struct{ id, src string }
	groups := map[key][]Finding{}
	var keys []key
	for _, f := range r.Findings {
		k := key{f.VulnerabilityID, f.SrcName}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], f)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.id, b.id), strings.Compare(a.src, b.src)) })
	out := []cdx.Vulnerability{}
	for _, k := range keys {
		fs := groups[k]
		f := fs[0]
		v := cdx.Vulnerability{ID: f.VulnerabilityID, Description: f.Description, Detail: f.Title}
		if ds, ok := dataSources[f.DataSource]; ok {
			v.Source = &cdx.Source{Name: ds.ID, URL: ds.URL}
		} else if f.DataSource != "" {
			v.Source = &cdx.Source{Name: f.DataSource}
		}
		rating := cdx.VulnerabilityRating{Severity: cdxSeverity(f.Severity), Method: cdx.ScoringMethodOther}
		if f.SeveritySource != "" {
			rating.Source = &cdx.Source{Name: f.SeveritySource}
		}
		v.Ratings = &[]cdx.VulnerabilityRating{rating}
		var adv []cdx.Advisory
		for _, ref := range f.References {
			adv = append(adv, cdx.Advisory{URL: ref})
		}
		for _, id := range f.FixedBy {
			adv = append(adv, cdx.Advisory{Title: id, URL: advisoryURL(id)})
		}
		if len(adv) > 0 {
			v.Advisories = &adv
		}
		if f.Fixable() {
			v.Recommendation = fmt.Sprintf("Upgrade %s to %s or later", f.SrcName, f.FixedVersion)
		}
		v.Analysis = cdxAnalysis(f)
		var affects []cdx.Affects
		seen := map[string]bool{}
		for _, g := range fs {
			ref := packageURL(r, pkgOf(g))
			if seen[ref] {
				continue
			}
			seen[ref] = true
			versions := []cdx.AffectedVersions{{Version: g.InstalledVersion, Status: cdx.VulnerabilityStatusAffected}}
			if g.Fixable() {
				versions = append(versions, cdx.AffectedVersions{Range: "vers:" + cmp.Or(g.Ecosystem, "deb") + "/>=" + g.FixedVersion,
					Status: cdx.VulnerabilityStatusNotAffected})
			}
			affects = append(affects, cdx.Affects{Ref: ref, Range: &versions})
		}
		slices.SortFunc(affects, func(a, b cdx.Affects) int { return strings.Compare(a.Ref, b.Ref) })
		v.Affects = &affects
		var props []cdx.Property
		addVulnProp := func(name, value string) {
			if value != "" {
				props = append(props, cdx.Property{Name: name, Value: value})
			}
		}
		addVulnProp("drydock:SrcName", f.SrcName)
		addVulnProp("drydock:Status", string(f.Status))
		addVulnProp("drydock:FixedVersion", f.FixedVersion)
		if len(props) > 0 {
			v.Properties = &props
		}
		out = append(out, v)
	}
	return out
}

// advisoryURL is the Debian security tracker page of a DSA/DLA, or the
// Alpine/other advisory id as a urn when there is no page.
func advisoryURL(id string) string {
	if strings.HasPrefix(id, "DSA-") || strings.HasPrefix(id, "DLA-") || strings.HasPrefix(id, "DTSA-") {
		return "https://security-tracker.debian.org/tracker/" + id
	}
	return "urn:advisory:" + id
}

// WriteCycloneDX writes r as a CycloneDX 1.6 JSON BOM with vulnerabilities.
func WriteCycloneDX(w io.Writer, r *Report) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(CycloneDXFromReport(r), CycloneDXSpec); err != nil {
		return fmt.Errorf("writing CycloneDX report: %w", err)
	}
	return nil
}
