package attest_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/attest/attesttest"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	realdb.Remove()
	os.Exit(code)
}

// TestPatchedImageAttestations is #20's patched-image acceptance, with the
// real patch engine, scanner, data and cosign: the distroless image,
// recorded with the OpenSSL of an older point release so that the
// vulnerability data's fixes show, is patched from the Debian mirror; its
// provenance, OpenVEX and SBOM are signed and attached; cosign
// verify-attestation --type slsaprovenance1, openvex and cyclonedx accept
// them with the public key; the VEX lists exactly the vulnerabilities
// whose findings the patch removed (the scans before and after, compared
// here), and the SBOM's packages are the patched image's inventory.
func TestPatchedImageAttestations(t *testing.T) {
	cosign := attesttest.Cosign(t)
	if testing.Short() {
		t.Skip("network test")
	}
	m, err := testimage.Mirror()
	if err == nil {
		err = testimage.MirrorReachable(t.Context(), m, testimage.DistrolessBookworm.Suite)
	}
	if err != nil {
		testenv.Missing(t, "no Debian mirror: %v", err)
	}
	if _, err := os.Stat(apt.DebianArchiveKeyring); err != nil {
		testenv.Missing(t, "no host archive keyring: %v", err)
	}
	ctx := t.Context()
	ti := testimage.Require(t, testimage.DistrolessBookworm)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	if img, err = testimage.DowngradedTo(img, map[string]string{"libssl3": "3.0.11-1~deb12u2"}); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(realdb.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scanner, err := scan.New(db, scan.WithClock(func() time.Time { return realdb.DataDate }))
	if err != nil {
		t.Fatal(err)
	}
	before, _, err := scanner.ImageInventory(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/usr/share/distro-info/debian.csv")
	if err != nil {
		testenv.Missing(t, "no distro-info-data: %v", err)
	}
	rels, err := osinfo.ParseDistroInfo(f, "debian")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	res, err := patch.Build(ctx, img, nil, patch.Request{Mode: patch.UpdateAll,
		Repositories: patch.Repositories{Mirror: m.URI, SecurityMirror: m.SecurityURI, HostKeyring: apt.DebianArchiveKeyring}},
		patch.WithReleases(rels), patch.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Close)
	if res.Image == nil {
		t.Fatalf("nothing patched: %s", res.Platforms[0].Plan.Reason)
	}
	after, snap, err := scanner.ImageInventory(ctx, res.Image)
	if err != nil {
		t.Fatal(err)
	}

	reg, host := attesttest.Registry(t)
	ref, _ := name.ParseReference(host+"/quarantine/app:1-patched", name.Insecure)
	if err := remote.Write(ref, res.Image, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	pd, _ := res.Image.Digest()
	od, _ := img.Digest()
	subject, err := reg.Resolve(ctx, "quarantine/app", pd.String())
	if err != nil {
		t.Fatal(err)
	}
	key, err := attest.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := attest.PatchRecord{Name: "quarantine/app:1-patched", OriginalName: "quarantine/app:1", Original: digest.Digest(od.String()),
		Platform: "linux/amd64", Request: map[string]any{"mode": string(patch.UpdateAll)}, Packages: attest.PackagesFromPlan(res.Platforms[0].Plan),
		Started: started, Finished: time.Now()}
	if _, _, err := attest.AttestPatch(ctx, reg, "quarantine/app", subject, key, rec, before, after, snap, time.Now()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	pub := filepath.Join(dir, "drydock.pub")
	if err := os.WriteFile(pub, key.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	target := host + "/quarantine/app@" + pd.String()
	statement := func(typ string) attest.Statement {
		out := attesttest.Run(t, true, dir, []string{"COSIGN_PASSWORD="}, cosign, "verify-attestation", "--insecure-ignore-tlog=true",
			"--allow-insecure-registry", "--key", pub, "--type", typ, target)
		for _, line := range strings.Split(out, "\n") {
			var env struct{ Payload string }
			if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			var st attest.Statement
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			return st
		}
		t.Fatalf("cosign verify-attestation --type %s printed no statement:\n%s", typ, out)
		return attest.Statement{}
	}
	prov := statement("slsaprovenance1")
	if !strings.Contains(string(prov.Predicate), od.Hex) || !strings.Contains(string(prov.Predicate), "libssl3") {
		t.Errorf("provenance lacks the original digest or the package: %s", prov.Predicate)
	}

	// The VEX: exactly the vulnerabilities found before and not after.
	still := map[string]bool{}
	for _, f := range after.Findings {
		still[f.VulnerabilityID] = true
	}
	var want []string
	for _, f := range before.Findings {
		if !still[f.VulnerabilityID] && !slices.Contains(want, f.VulnerabilityID) {
			want = append(want, f.VulnerabilityID)
		}
	}
	slices.Sort(want)
	if len(want) == 0 {
		t.Fatalf("the scenario fixed nothing: %d findings before, %d after", len(before.Findings), len(after.Findings))
	}
	var vex scan.VEXDocument
	if err := json.Unmarshal(statement("openvex").Predicate, &vex); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range vex.Statements {
		got = append(got, s.Vulnerability.Name)
		if s.Status != "fixed" || s.Products[0].Hashes["sha-256"] != pd.Hex {
			t.Errorf("VEX statement %+v", s)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("VEX fixed %v, want %v", got, want)
	}
	t.Logf("the patch fixed %d vulnerabilities: %v", len(want), want)

	// The SBOM: the patched image's packages, as the test image's own
	// parser of the dpkg database reads them.
	var bom struct {
		Components []struct{ Type, Name, Version string } `json:"components"`
	}
	if err := json.Unmarshal(statement("cyclonedx").Predicate, &bom); err != nil {
		t.Fatal(err)
	}
	var sb, inv []string
	for _, c := range bom.Components {
		if c.Type == "library" {
			sb = append(sb, c.Name+"="+c.Version)
		}
	}
	pkgs, err := testimage.InstalledPackages(res.Image)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		inv = append(inv, p.Name+"="+p.Version)
	}
	slices.Sort(sb)
	slices.Sort(inv)
	if !slices.Equal(sb, inv) || len(sb) != len(snap.Packages) {
		t.Errorf("SBOM packages\n%v\nwant the inventory\n%v", sb, inv)
	}
}
