package gatekeeper

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	realdb.Remove()
	os.Exit(code)
}

// writeImage writes img to repo:tag of the fixture's registry.
func (f *fixture) writeImage(img v1.Image, repo, tag string) digest.Digest {
	f.t.Helper()
	ref, err := name.NewTag(registry.InternalHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(f.reg.Transport()), remote.WithContext(f.t.Context())); err != nil {
		f.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		f.t.Fatal(err)
	}
	return digest.Digest(d.String())
}

// fixedBetween scans orig and patched apart from the gate, and returns
// the vulnerabilities found before and not after.
func fixedBetween(t testing.TB, f *fixture, orig, patched v1.Image) []string {
	t.Helper()
	db, err := vulndb.Open(f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The keeper's inventory cache, as the workflow's scans share it.
	scanner, err := scan.New(db, scan.WithClock(f.clock.Now), scan.WithInventoryCache(f.k.cache))
	if err != nil {
		t.Fatal(err)
	}
	before, err := scanner.Image(t.Context(), orig)
	if err != nil {
		t.Fatal(err)
	}
	after, err := scanner.Image(t.Context(), patched)
	if err != nil {
		t.Fatal(err)
	}
	still := map[string]bool{}
	for _, fd := range after.Findings {
		still[fd.VulnerabilityID] = true
	}
	var want []string
	for _, fd := range before.Findings {
		if !still[fd.VulnerabilityID] {
			want = append(want, fd.VulnerabilityID)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if len(want) == 0 {
		t.Fatalf("the scenario fixes nothing: %d findings before, %d after", len(before.Findings), len(after.Findings))
	}
	return want
}

// TestSignPatch: a patch the server ran is signed by the gate with the
// real data: the original (the distroless image with an older OpenSSL)
// and the patched image (the current one) are scanned by the gate; the
// patched digest gets drydock's signature, provenance naming the original
// and the packages, an OpenVEX listing exactly the vulnerabilities found
// before and not after (scanned here apart), and an SBOM of the patched
// image's packages; the image was promoted before the signing, and what
// was attached follows it to live/; a second call adds nothing.
func TestSignPatch(t *testing.T) {
	ctx := t.Context()
	key, _ := attest.GenerateKey(t0)
	f := newFixture(t, fixtureOptions{key: key, policy: "version: v1\nmaxSeverity: CRITICAL\n", cache: newCache(t)})
	f.clock.Set(realdb.DataDate)
	realdb.Copy(t, f.dbPath)
	ti := testimage.Require(t, testimage.DistrolessBookworm)
	patched, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := testimage.DowngradedTo(patched, map[string]string{"libssl3": "3.0.11-1~deb12u2"})
	if err != nil {
		t.Fatal(err)
	}
	od := f.writeImage(orig, "quarantine/app", "1")
	// The patch engine's lineage annotation names the original.
	patched = mutate.Annotations(patched, map[string]string{ocispec.AnnotationBaseImageDigest: od.String()}).(v1.Image)
	pd := f.writeImage(patched, "quarantine/app", "1-patched")
	f.putScan("quarantine/app", pd.String())
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1-patched"}); err != nil {
		t.Fatal(err)
	}

	want := fixedBetween(t, f, orig, patched)

	pw := attest.PatchWritten{Repository: "quarantine/app", Tag: "1-patched", Digest: pd, OriginalRepository: "quarantine/app",
		OriginalName: "quarantine/app:1", Request: map[string]any{"mode": "update-all"},
		Plans: []patch.Plan{{Platform: "linux/amd64", Changes: []patch.Change{{Package: "libssl3", From: "3.0.11-1~deb12u2",
			To: "3.0.15-1~deb12u1", Suite: "bookworm-security", URL: "http://archive.invalid/libssl3.deb"}}}},
		Started: f.clock.Now(), Finished: f.clock.Now()}
	res, err := f.k.SignPatch(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Fixed, want) || len(res.Subjects) != 1 || res.Subjects[0] != pd || res.Already {
		t.Errorf("signed %+v, want fixed %v", res, want)
	}
	for _, repo := range []string{"quarantine/app", "live/app"} {
		rep := f.verifyIn(repo, pd, key)
		if !rep.SignedBy(key.ID()) {
			t.Errorf("%s: the patched digest is not signed by drydock's key: %+v", repo, rep.Signatures)
		}
		statement := func(typ string) *attest.Statement {
			a := rep.Attestation(typ, key.ID())
			if a == nil {
				t.Fatalf("%s: no verified %s attestation: %+v", repo, typ, rep.Signatures)
			}
			return a.Statement
		}
		prov := string(statement(attest.PredicateSLSAProvenanceV1).Predicate)
		if !strings.Contains(prov, od.Encoded()) || !strings.Contains(prov, "libssl3.deb") {
			t.Errorf("%s: the provenance lacks the original or the package: %s", repo, prov)
		}
		var vex scan.VEXDocument
		if err := json.Unmarshal(statement(attest.PredicateOpenVEX).Predicate, &vex); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range vex.Statements {
			got = append(got, s.Vulnerability.Name)
			if s.Status != scan.VEXFixed || s.Products[0].Hashes["sha-256"] != pd.Encoded() {
				t.Errorf("%s: VEX statement %+v", repo, s)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the VEX lists %v, want %v", repo, got, want)
		}
		var bom struct {
			Components []struct{ Type, Name, Version string } `json:"components"`
		}
		if err := json.Unmarshal(statement(attest.PredicateCycloneDX).Predicate, &bom); err != nil {
			t.Fatal(err)
		}
		var sb, inv []string
		for _, c := range bom.Components {
			if c.Type == "library" {
				sb = append(sb, c.Name+"="+c.Version)
			}
		}
		pkgs, err := testimage.InstalledPackages(patched)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			inv = append(inv, p.Name+"="+p.Version)
		}
		slices.Sort(sb)
		slices.Sort(inv)
		if !slices.Equal(sb, inv) {
			t.Errorf("%s: SBOM packages\n%v\nwant\n%v", repo, sb, inv)
		}
	}
	again, err := f.k.SignPatch(ctx, pw)
	if err != nil || !again.Already {
		t.Errorf("signed twice: %+v, %v", again, err)
	}
	n := 0
	for _, s := range f.verifyIn("quarantine/app", pd, key).Signatures {
		if s.Verified && s.PredicateType == attest.PredicateSLSAProvenanceV1 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d provenance attestations, want 2 (a referrer and a layer of the .att tag)", n)
	}
}

// TestSignPatchIndex: a patched two-platform index whose amd64 image
// changed: that image gets the signature, provenance, OpenVEX and SBOM;
// the index gets the signature, the provenance and the OpenVEX keyed to
// the index digest; the unchanged platform gets nothing.
func TestSignPatchIndex(t *testing.T) {
	ctx := t.Context()
	key, _ := attest.GenerateKey(t0)
	f := newFixture(t, fixtureOptions{key: key, cache: newCache(t)})
	f.clock.Set(realdb.DataDate)
	realdb.Copy(t, f.dbPath)
	patched, err := testimage.Require(t, testimage.DistrolessBookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := testimage.DowngradedTo(patched, map[string]string{"libssl3": "3.0.11-1~deb12u2"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := testimage.Require(t, testimage.Bookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	index := func(amd64 v1.Image) v1.ImageIndex {
		return mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	}
	od := f.writeIndex(index(orig), "quarantine/app", "1")
	pd := f.writeIndex(index(patched), "quarantine/app", "1-patched")
	child, _ := patched.Digest()
	od2, _ := other.Digest()
	want := fixedBetween(t, f, orig, patched)
	f.writeImage(other, "quarantine/app", "1") // what the tag names now is not the original
	res, err := f.k.SignPatch(ctx, attest.PatchWritten{Repository: "quarantine/app", Tag: "1-patched", Digest: pd,
		OriginalRepository: "quarantine/app", Original: od,
		Plans: []patch.Plan{{Platform: "linux/amd64", Changes: []patch.Change{{Package: "libssl3", From: "3.0.11-1~deb12u2",
			To: "3.0.15-1~deb12u1", URL: "http://archive.invalid/libssl3.deb"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Subjects, []digest.Digest{digest.Digest(child.String()), pd}) || !slices.Equal(res.Fixed, want) {
		t.Errorf("signed %+v, want the amd64 image and the index, fixed %v", res, want)
	}
	types := func(d digest.Digest) []string {
		rep := f.verifyIn("quarantine/app", d, key)
		var out []string
		for _, s := range rep.Signatures {
			if s.Verified && s.Form == attest.FormReferrer {
				out = append(out, s.Format+" "+s.PredicateType)
			}
		}
		slices.Sort(out)
		return out
	}
	if got := types(digest.Digest(child.String())); !slices.Equal(got, []string{"cosign ", "dsse " + attest.PredicateCycloneDX,
		"dsse " + attest.PredicateOpenVEX, "dsse " + attest.PredicateSLSAProvenanceV1}) {
		t.Errorf("the amd64 image: %v", got)
	}
	if got := types(pd); !slices.Equal(got, []string{"cosign ", "dsse " + attest.PredicateOpenVEX, "dsse " + attest.PredicateSLSAProvenanceV1}) {
		t.Errorf("the index: %v", got)
	}
	if got := types(digest.Digest(od2.String())); len(got) != 0 {
		t.Errorf("the unchanged platform: %v", got)
	}
	// Without the original's digest, an index's original is what its
	// name names.
	od3 := f.writeIndex(index(orig), "quarantine/web", "1")
	pd3 := f.writeIndex(index(patched), "quarantine/web", "1-patched")
	res3, err := f.k.SignPatch(ctx, attest.PatchWritten{Repository: "quarantine/web", Tag: "1-patched", Digest: pd3,
		OriginalRepository: "quarantine/web", OriginalName: "quarantine/web:1",
		Plans: []patch.Plan{{Platform: "linux/amd64"}}})
	if err != nil || !slices.Equal(res3.Fixed, want) {
		t.Errorf("signing by the original's name: %+v, %v", res3, err)
	}
	if prov := f.verifyIn("quarantine/web", pd3, key).Attestation(attest.PredicateSLSAProvenanceV1, key.ID()); prov == nil ||
		!strings.Contains(string(prov.Statement.Predicate), od3.Encoded()) {
		t.Errorf("the index's provenance does not name its original %s", od3)
	}
	vex := f.verifyIn("quarantine/app", pd, key).Attestation(attest.PredicateOpenVEX, key.ID())
	var doc scan.VEXDocument
	if err := json.Unmarshal(vex.Statement.Predicate, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Statements) != len(want) || doc.Statements[0].Products[0].Hashes["sha-256"] != pd.Encoded() {
		t.Errorf("the index's VEX: %+v", doc.Statements)
	}
}

func newCache(t testing.TB) scan.InventoryCache {
	t.Helper()
	c, err := scan.NewFileCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeIndex writes idx to repo:tag of the fixture's registry.
func (f *fixture) writeIndex(idx v1.ImageIndex, repo, tag string) digest.Digest {
	f.t.Helper()
	ref, err := name.NewTag(registry.InternalHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithTransport(f.reg.Transport()), remote.WithContext(f.t.Context())); err != nil {
		f.t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		f.t.Fatal(err)
	}
	return digest.Digest(d.String())
}

// BenchmarkSignPatch is what the gate's signing adds to a patch the
// server ran: the scans of the original and the patched image (their
// inventories cached, as the workflow's own scans leave them), the
// provenance, OpenVEX and SBOM statements, the signatures, and their
// writes in both forms on the registry. cold-ms is the first call, with
// nothing cached.
func BenchmarkSignPatch(b *testing.B) {
	key, _ := attest.GenerateKey(t0)
	cache, err := scan.NewFileCache(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	f := newFixture(b, fixtureOptions{key: key, cache: cache})
	f.clock.Set(realdb.DataDate)
	realdb.Copy(b, f.dbPath)
	patched, err := testimage.Require(b, testimage.DistrolessBookworm).Open()
	if err != nil {
		b.Fatal(err)
	}
	orig, err := testimage.DowngradedTo(patched, map[string]string{"libssl3": "3.0.11-1~deb12u2"})
	if err != nil {
		b.Fatal(err)
	}
	plans := []patch.Plan{{Platform: "linux/amd64", Changes: []patch.Change{{Package: "libssl3", From: "3.0.11-1~deb12u2", To: "3.0.15-1~deb12u1", URL: "http://archive.invalid/libssl3.deb"}}}}
	var cold time.Duration
	sign := func(i int) {
		repo := fmt.Sprintf("quarantine/app%d", i)
		od := f.writeImage(orig, repo, "1")
		pd := f.writeImage(patched, repo, "1-patched")
		start := time.Now()
		b.StartTimer()
		res, err := f.k.SignPatch(b.Context(), attest.PatchWritten{Repository: repo, Tag: "1-patched", Digest: pd,
			OriginalRepository: repo, Original: od, Plans: plans, Finished: f.clock.Now()})
		b.StopTimer()
		if err != nil || len(res.Fixed) == 0 {
			b.Fatalf("%+v %v", res, err)
		}
		if i == 0 {
			cold = time.Since(start)
		}
	}
	b.StopTimer()
	sign(0)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		sign(i)
	}
	b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
}
