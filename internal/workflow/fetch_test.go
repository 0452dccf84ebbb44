package workflow_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestFetchesOncePerRelease: three images of one release (debootstrap,
// nginx, distroless), evaluated with a cold archive cache, fetch each of
// the release's Release files and package indexes once, not once per
// image.
func TestFetchesOncePerRelease(t *testing.T) {
	specs := map[string]testimage.Spec{"debian:12": testimage.Bookworm, "nginx:1.27.1": testimage.BookwormNginx, "base:12": testimage.DistrolessBookworm}
	cold := t.TempDir()
	h := newHarness(t, true, withMirror(t), func(o *workflow.Options) {
		p := o.Patcher.(*workflow.LibraryPatcher)
		p.Options = append(p.Options, patch.WithCacheDir(cold))
	})
	h.start()
	var repos []string
	for _, image := range slices.Sorted(func(yield func(string) bool) {
		for k := range specs {
			if !yield(k) {
				return
			}
		}
	}) {
		img, err := openImage(t, specs[image]).Open()
		if err != nil {
			t.Fatal(err)
		}
		h.push(img, "quarantine/"+image)
		name, tag, _ := strings.Cut(image, ":")
		repos = append(repos, `{"repository":"`+name+`","tags":["`+tag+`"]}`)
	}
	res, err := h.eng.Create(t.Context(), workflow.CreateRequest{Config: `{"version":"v1","repositories":[` + strings.Join(repos, ",") + `]}`,
		Schedule: "1d", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DryRun.Images) != len(specs) {
		t.Fatalf("the dry run evaluated %d images, want %d: %+v", len(res.DryRun.Images), len(specs), res.DryRun.Images)
	}
	for _, im := range res.DryRun.Images {
		if im.Action != workflow.ActionPatch {
			t.Errorf("%s: %s %q, want a patch for the security suite (the test needs each image to read the archive)", im.Image, im.Action, im.Reason)
		}
	}
	var release, indexes int
	for u, n := range res.DryRun.Fetches {
		if !strings.Contains(u, "/dists/") {
			continue
		}
		if strings.HasSuffix(u, "/InRelease") || strings.HasSuffix(u, "/Release") {
			release++
		} else {
			indexes++
		}
		if n != 1 {
			t.Errorf("fetched %d times for %d images of one release: %s", n, len(specs), u)
		}
	}
	if release == 0 || indexes == 0 {
		t.Errorf("the run fetched %d Release files and %d indexes with a cold cache: %v", release, indexes, res.DryRun.Fetches)
	}
	t.Logf("fetches: %v", res.DryRun.Fetches)
}
