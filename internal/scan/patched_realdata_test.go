package scan_test

import (
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt"
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
	if err := sandbox.Available("amd64"); err != nil {
		testenv.Missing(t, "%v", err)
	}
	cache, err := apt.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []testimage.Spec{testimage.BullseyeNginxCurl, testimage.BookwormNginx} {
		t.Run(spec.Name, func(t *testing.T) {
			_, img, before := realScan(t, db, spec)
			res, cleanup, err := patch.Image(t.Context(), img, false, patch.Options{
				Mode: patch.UpdateAll, AllowEOL: true, Sandbox: true, TempDir: t.TempDir(),
				Apt: []apt.Option{apt.WithCacheDir(cache)},
			})
			defer cleanup()
			if err != nil {
				t.Fatal(err)
			}
			if res.Image == nil {
				t.Fatalf("nothing patched: %s", res.Plan.Reason)
			}
			updated := map[string]bool{}
			for _, c := range res.Plan.Changes {
				updated[c.Package] = true
			}
			after, err := scan.Scan(t.Context(), res.Image, db, scan.WithClock(func() time.Time { return dataDate }))
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
