package attest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
)

// benchRegistry is a registry on the filesystem driver, as drydock serve
// runs by default, and a count of its storage writes.
func benchRegistry(b *testing.B) (*registry.Registry, *countingDriver) {
	drv, err := filesystem.FromParameters(map[string]any{"rootdirectory": b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	cd := &countingDriver{StorageDriver: drv}
	reg, err := registry.New(b.Context(), cd)
	if err != nil {
		b.Fatal(err)
	}
	return reg, cd
}

// countingDriver counts the files written under the registry: on the
// filesystem driver each is a synced file (fsync of the file and of its
// directory), and they, not the CPU, are where a signing's time goes.
type countingDriver struct {
	storagedriver.StorageDriver
	puts atomic.Int64
}

func (d *countingDriver) PutContent(ctx context.Context, p string, content []byte) error {
	d.puts.Add(1)
	return d.StorageDriver.PutContent(ctx, p, content)
}

func benchImage(b *testing.B, reg *registry.Registry, repo string, i int) ocispec.Descriptor {
	c, err := reg.PutBlob(b.Context(), repo, fmt.Appendf(nil, `{"seed":%d}`, i))
	if err != nil {
		b.Fatal(err)
	}
	c.MediaType = ocispec.MediaTypeImageConfig
	body := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`,
		ocispec.MediaTypeImageManifest, c.MediaType, c.Digest, c.Size)
	d, err := reg.PutManifest(b.Context(), repo, ocispec.MediaTypeImageManifest, body, fmt.Sprint("t", i))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkAttestPatch is what signing and attaching everything adds to a
// patch of one image: provenance, OpenVEX and SBOM statements for a
// Debian-sized inventory (120 packages, 40 findings fixed of 60), signed,
// attached as referrers and in .att, plus the image's signature in both
// forms, on the filesystem driver. (The scans before and after are the
// patch's own verification and are not counted.)
func BenchmarkAttestPatch(b *testing.B) {
	reg, cd := benchRegistry(b)
	var writes int64
	k, _ := GenerateKey(t0)
	snap := &scan.Snapshot{OS: osinfo.OS{ID: "debian", VersionID: "12"}}
	for i := range 120 {
		snap.Packages = append(snap.Packages, inventory.Package{Name: fmt.Sprint("pkg", i), Version: "1.0-1", Arch: "amd64", Ecosystem: "deb"})
	}
	before := &scan.Report{OS: scan.OS{ID: "debian", Release: "12"}}
	after := &scan.Report{OS: before.OS}
	for i := range 60 {
		f := finding(fmt.Sprintf("CVE-2024-%04d", i), fmt.Sprint("pkg", i), "1.0-1")
		before.Findings = append(before.Findings, f)
		if i >= 40 {
			after.Findings = append(after.Findings, f)
		}
	}
	var pkgs []PatchedPackage
	for i := range 40 {
		pkgs = append(pkgs, PatchedPackage{Name: fmt.Sprint("pkg", i), From: "1.0-1", To: "1.0-2", URL: "http://deb/pool/p.deb"})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		subj := benchImage(b, reg, "quarantine/app", i)
		rec := PatchRecord{Name: "quarantine/app:1-patched", Original: digest.FromString("o"), OriginalName: "quarantine/app:1", Packages: pkgs}
		n := cd.puts.Load()
		b.StartTimer()
		if _, _, err := AttestPatch(b.Context(), reg, "quarantine/app", subj, k, rec, before, after, snap, t0); err != nil {
			b.Fatal(err)
		}
		writes += cd.puts.Load() - n
	}
	b.ReportMetric(float64(writes)/float64(b.N), "files-written/op")
}

// BenchmarkSignPromotion is what the gate's signing adds to a promotion:
// a cosign signature (both forms), a Notary Project signature and the
// promotion attestation (both forms), on the filesystem driver.
func BenchmarkSignPromotion(b *testing.B) {
	reg, cd := benchRegistry(b)
	var writes int64
	k, _ := GenerateKey(t0)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		subj := benchImage(b, reg, "live/app", i)
		n := cd.puts.Load()
		b.StartTimer()
		st, err := VerdictStatement("live/app", subj.Digest, VerdictPredicate{Source: "quarantine/app:1", Target: "live/app:1",
			PromotedAt: time.Now(), Verdict: VerdictState{State: "pass"}, Policy: PolicyRef{SHA256: "x"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Write(b.Context(), reg, "live/app", subj, k, WriteRequest{Ref: "live/app", Signature: true, Notary: true,
			NotaryMetadata: map[string]string{"dev.drydock.verdict": "pass"}, Statements: []*Statement{st}, Now: t0}); err != nil {
			b.Fatal(err)
		}
		writes += cd.puts.Load() - n
	}
	b.ReportMetric(float64(writes)/float64(b.N), "files-written/op")
}
