package attest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/scan"
)

func finding(id, pkg, ver string) scan.Finding {
	return scan.Finding{VulnerabilityID: id, PkgName: pkg, PkgArch: "amd64", InstalledVersion: ver, SrcName: pkg, SrcVersion: ver,
		Ecosystem: "deb", FixedVersion: ver + "+fix", Status: "fixed", Severity: "HIGH"}
}

// TestPatchStatements: the VEX lists exactly the vulnerabilities whose
// findings the patch removed, keyed to the patched digest; the SBOM's
// packages are the inventory's; the provenance names the original and
// every package by URL and hash.
func TestPatchStatements(t *testing.T) {
	orig := digest.FromString("original")
	patched := digest.FromString("patched")
	before := &scan.Report{Artifact: scan.Artifact{Digest: orig.String(), Name: "quarantine/app:1"},
		OS: scan.OS{ID: "debian", Release: "12", Version: "12.1"},
		Findings: []scan.Finding{finding("CVE-2024-1", "libssl3", "3.0.1"), finding("CVE-2024-1", "openssl", "3.0.1"),
			finding("CVE-2024-2", "zlib1g", "1.2"), finding("CVE-2024-3", "libc6", "2.36")}}
	after := &scan.Report{Artifact: scan.Artifact{Digest: patched.String(), Name: "quarantine/app:1-patched"},
		OS: before.OS, Findings: []scan.Finding{finding("CVE-2024-3", "libc6", "2.36")}}
	snap := &scan.Snapshot{OS: osinfo.OS{ID: "debian", VersionID: "12", DebianVersion: "12.1"}, Packages: []inventory.Package{
		{Name: "zlib1g", Version: "1:1.2+fix", Arch: "amd64", Ecosystem: "deb", SourceName: "zlib"},
		{Name: "libssl3", Version: "3.0.1+fix", Arch: "amd64", Ecosystem: "deb", SourceName: "openssl"},
		{Name: "libc6", Version: "2.36", Arch: "amd64", Ecosystem: "deb", SourceName: "glibc"},
	}}
	rec := PatchRecord{Name: "quarantine/app:1-patched", Digest: patched, Original: orig, OriginalName: "quarantine/app:1",
		Platform: "linux/amd64", Request: map[string]any{"mode": "update-all"},
		Packages: []PatchedPackage{{Name: "zlib1g", From: "1.2", To: "1:1.2+fix", URL: "http://deb/pool/z.deb", SHA256: strings.Repeat("a", 64)},
			{Name: "libssl3", From: "3.0.1", To: "3.0.1+fix", URL: "http://deb/pool/l.deb", SHA256: strings.Repeat("b", 64)}},
		ReleaseFiles: []ArchiveFile{{URL: "http://deb/dists/bookworm/InRelease", SHA256: strings.Repeat("c", 64)}}, Started: t0, Finished: t0}
	sts, fixed, err := PatchStatements(rec, before, after, snap)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fixed, []string{"CVE-2024-1", "CVE-2024-2"}) {
		t.Errorf("fixed %v", fixed)
	}
	for _, st := range sts {
		if !st.About(patched) || st.About(orig) {
			t.Errorf("%s: subject %v", st.PredicateType, st.SubjectDigests())
		}
	}
	var vex scan.VEXDocument
	if err := json.Unmarshal(sts[1].Predicate, &vex); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range vex.Statements {
		ids = append(ids, s.Vulnerability.Name)
		if s.Status != scan.VEXFixed || len(s.Products) != 1 || s.Products[0].Hashes["sha-256"] != patched.Encoded() ||
			!strings.Contains(s.Products[0].ID, patched.Encoded()) {
			t.Errorf("VEX statement %+v", s)
		}
	}
	if !slices.Equal(ids, fixed) {
		t.Errorf("VEX lists %v, want %v", ids, fixed)
	}
	var bom struct {
		Components []struct {
			Type, Name, Version string
		} `json:"components"`
	}
	if err := json.Unmarshal(sts[2].Predicate, &bom); err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, c := range bom.Components {
		if c.Type == "library" {
			got = append(got, c.Name+"="+c.Version)
		}
	}
	for _, p := range snap.Packages {
		want = append(want, p.Name+"="+p.Version)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("SBOM packages %v, want the inventory %v", got, want)
	}
	prov := string(sts[0].Predicate)
	for _, s := range []string{orig.Encoded(), "http://deb/pool/z.deb", strings.Repeat("a", 64), "InRelease", strings.Repeat("c", 64), PatchBuildType} {
		if !strings.Contains(prov, s) {
			t.Errorf("provenance lacks %q: %s", s, prov)
		}
	}
	if sts[0].PredicateType != PredicateSLSAProvenanceV1 || sts[1].PredicateType != PredicateOpenVEX || sts[2].PredicateType != PredicateCycloneDX {
		t.Errorf("predicate types %s %s %s", sts[0].PredicateType, sts[1].PredicateType, sts[2].PredicateType)
	}
}
