package scan_test

import (
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/sandbox"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestRealFixableAfterPatch patches the real test images with every
// update their release offers and rescans them at the data's date: no
// fixable finding may remain for a package the patch updated (the patched
// versions come from the live archive, newer than the feed data).
func TestRealFixableAfterPatch(t *testing.T) {
	db := openRealDB(t)
	sb, err := sandbox.New(patch.SandboxAuto)
	if err == nil {
		err = sb.Available(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	}
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	for _, spec := range []testimage.Spec{testimage.BullseyeNginxCurl, testimage.BookwormNginx} {
		t.Run(spec.Name, func(t *testing.T) {
			ti, _, before := realScan(t, db, spec)
			out := t.TempDir()
			res, err := patch.Run(t.Context(), patch.Request{Image: "oci:" + ti.LayoutDir + ":" + ti.Ref,
				Output: "oci:" + out + ":patched", Mode: patch.UpdateAll, AllowEOL: true}, patch.WithTempDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest == "" {
				t.Fatalf("nothing patched: %s", res.Platforms[0].Plan.Reason)
			}
			updated := map[string]bool{}
			for _, c := range res.Platforms[0].Plan.Changes {
				updated[c.Package] = true
			}
			art, err := oci.Open(t.Context(), "oci:"+out+":patched")
			if err != nil {
				t.Fatal(err)
			}
			defer art.Close()
			after, err := scan.Scan(t.Context(), art.Image, db, scan.WithClock(func() time.Time { return dataDate }))
			if err != nil {
				t.Fatal(err)
			}
			fixable := func(r *scan.Report) (all, ofUpdated int) {
				for _, f := range r.Findings {
					if f.Fixable() {
						all++
						if updated[f.PkgName] {
							ofUpdated++
						}
					}
				}
				return
			}
			b, bu := fixable(before)
			a, au := fixable(after)
			t.Logf("fixable findings: %d before (%d in packages the patch updated), %d after (%d in updated packages); %d packages updated",
				b, bu, a, au, len(updated))
			if au != 0 {
				for _, f := range after.Findings {
					if f.Fixable() && updated[f.PkgName] {
						t.Errorf("still fixable after the patch: %s in %s %s (fixed in %s)", f.VulnerabilityID, f.PkgName, f.InstalledVersion, f.FixedVersion)
					}
				}
			}
			if spec.Name == testimage.BullseyeNginxCurl.Name && bu == 0 {
				t.Error("bullseye had no fixable finding in the packages patched: the test proves nothing")
			}
		})
	}
}
