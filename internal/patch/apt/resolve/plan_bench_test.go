package resolve

import (
	"testing"

	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/testimage"
)

// BenchmarkRealPlanBookwormNginx is what a warm plan of the real
// bookworm-nginx image costs in the Debian backend: open the image's
// sources, update them from the (warm) cache, list the candidates and
// resolve them all. Its allocation figures are the point: a patch of one
// image should decode only the index entries it touches.
func BenchmarkRealPlanBookwormNginx(b *testing.B) {
	apttest.RequireMirror(b, testimage.BookwormNginx.Suite)
	ri := apttest.Open(b, testimage.BookwormNginx)
	cache, err := archive.DefaultCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	plan := func() int {
		repo, err := archive.Open(b.Context(), ri.FS, ri.OS, ri.Test.Spec.Arch, archive.WithCacheDir(cache))
		if err != nil {
			b.Fatal(err)
		}
		defer repo.Close()
		if err := repo.Update(b.Context()); err != nil {
			b.Fatal(err)
		}
		var want []string
		for _, u := range repo.Candidates(ri.Installed) {
			want = append(want, u.Name)
		}
		res, err := ResolveCatalog(repo.Arch(), ri.Installed, repo, want)
		if err != nil {
			b.Fatal(err)
		}
		return len(res.Steps)
	}
	plan() // fill the caches
	// disk: each plan reads and checks the parsed indexes from the cache
	// directory, as one `drydock patch` process does; memory: they stay
	// loaded in the process, as in a server running a workflow.
	for _, mode := range []struct {
		name   string
		memory int64
	}{{"disk", 0}, {"memory", archive.DefaultParsedIndexMemory}} {
		b.Run(mode.name, func(b *testing.B) {
			archive.SetParsedIndexMemory(mode.memory)
			defer archive.SetParsedIndexMemory(archive.DefaultParsedIndexMemory)
			plan()
			b.ReportAllocs()
			for b.Loop() {
				plan()
			}
		})
	}
}
