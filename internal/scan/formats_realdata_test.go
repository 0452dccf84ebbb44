package scan_test

import (
	"bytes"
	"testing"

	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestRealFormats writes the SARIF, CycloneDX and OpenVEX reports of a
// real scan (bullseye + nginx-light + curl, many findings) and validates
// each; it skips without vulndata or the test image.
func TestRealFormats(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real-data database (-short)")
	}
	db := openRealDB(t)
	ti, _, rep := realScan(t, db, testimage.BullseyeNginxCurl)
	rep.Artifact.Name = ti.OCIReference()
	if len(rep.Findings) == 0 {
		t.Fatal("no findings on bullseye: nothing to validate")
	}
	for name, tc := range map[string]struct {
		write    scan.Writer
		validate func([]byte) error
	}{
		"sarif":     {scan.WriteSARIF, scan.ValidateSARIF},
		"cyclonedx": {scan.WriteCycloneDX, scan.ValidateCycloneDX},
		"openvex":   {scan.WriteOpenVEX, scan.ValidateOpenVEX},
	} {
		t.Run(name, func(t *testing.T) {
			var a, b bytes.Buffer
			if err := tc.write(&a, rep); err != nil {
				t.Fatal(err)
			}
			if err := tc.validate(a.Bytes()); err != nil {
				t.Fatalf("invalid %s for %d findings:\n%v", name, len(rep.Findings), err)
			}
			if name == "cyclonedx" {
				if err := scan.ValidateCycloneDXSchema(t, a.Bytes()); err != nil {
					t.Fatalf("not valid by the CycloneDX 1.6 schema:\n%v", err)
				}
			}
			if err := tc.write(&b, rep); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Error("output is not deterministic")
			}
		})
	}
	// Every finding has a SARIF result, and every package a CycloneDX component.
	sarif := scan.SARIFFromReport(rep)
	if got := len(sarif.Runs[0].Results); got != len(rep.Findings) {
		t.Errorf("%d SARIF results for %d findings", got, len(rep.Findings))
	}
	pkgs := map[string]bool{}
	for _, f := range rep.Findings {
		pkgs[f.PkgName+"/"+f.PkgArch+"/"+f.InstalledVersion] = true
	}
	bom := scan.CycloneDXFromReport(rep)
	if got := len(*bom.Components) - 1; got != len(pkgs) { // minus the OS
		t.Errorf("%d package components for %d vulnerable packages", got, len(pkgs))
	}
}
