package resolve

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/testimage"
)

// realRepo opens the real bookworm-nginx image's sources and updates them
// (from the machine's cache when warm).
func realRepo(t testing.TB, ri *apttest.Image) *archive.Repo {
	t.Helper()
	cache, err := archive.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := archive.Open(t.Context(), ri.FS, ri.OS, ri.Test.Spec.Arch, archive.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	if err := repo.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	return repo
}

// lazyWants are package sets resolved both ways on the real indexes:
// upgrades, new packages with deep dependencies, virtual packages met by
// Provides (versioned and not: awk, mail-transport-agent, perlapi-*,
// python3-numpy-abi*), Conflicts and Breaks between providers (postfix
// against exim4), Multi-Arch qualifiers (:any of perl and python3), and
// names the index lacks.
var lazyWants = [][]string{
	nil,
	{"nginx"},
	{"libssl3", "openssl", "tzdata", "libpam0g"},
	{"postfix"},
	{"exim4-daemon-light", "bsd-mailx"},
	{"git", "perl", "python3"},
	{"python3-pip", "python3-numpy"},
	{"gcc", "make", "libc6-dev"},
	{"gawk", "mawk"},
	{"libdbd-mysql-perl", "libapache2-mod-perl2"},
	{"default-mta"},
	{"mail-transport-agent"}, // virtual only: not wantable
	{"no-such-package-here"},
}

// TestRealCatalogMatchesIndex: on the real bookworm-nginx indexes, the
// resolver over the Repo (which decodes only what it looks at) gives
// exactly what it gives over every entry decoded up front, for every
// package set of lazyWants and for all the image's candidates, errors
// included.
func TestRealCatalogMatchesIndex(t *testing.T) {
	apttest.RequireMirror(t, testimage.BookwormNginx.Suite)
	ri := apttest.Open(t, testimage.BookwormNginx)
	var all []string
	for _, u := range realRepo(t, ri).Candidates(ri.Installed) {
		all = append(all, u.Name)
	}
	if len(all) == 0 {
		t.Fatal("no candidates: the comparison of all of them would be empty")
	}
	eager := realRepo(t, ri)
	index := eager.Index()
	for _, want := range append(lazyWants, all) {
		t.Run(fmt.Sprint(want), func(t *testing.T) {
			lazy := realRepo(t, ri) // a fresh Repo: nothing decoded yet
			got, gerr := ResolveCatalog(lazy.Arch(), ri.Installed, lazy, want)
			exp, eerr := ResolveIndex(eager.Arch(), ri.Installed, index, want)
			if fmt.Sprint(gerr) != fmt.Sprint(eerr) {
				t.Fatalf("errors differ:\nlazy:  %v\neager: %v", gerr, eerr)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("steps differ:\nlazy:  %v\neager: %v", stepsOf(got), stepsOf(exp))
			}
			if gerr == nil {
				t.Logf("%d steps", len(got.Steps))
			}
		})
	}
}

// TestRealCatalogDirectories: for every name and every virtual name of
// the real indexes, Named lists exactly the entries of that name and
// Providing at least those whose parsed Provides names it, in Index's
// order.
func TestRealCatalogDirectories(t *testing.T) {
	apttest.RequireMirror(t, testimage.BookwormNginx.Suite)
	ri := apttest.Open(t, testimage.BookwormNginx)
	repo := realRepo(t, ri)
	index := repo.Index()
	byName := map[string][]*archive.IndexPackage{}
	provBy := map[string][]*archive.IndexPackage{}
	for _, p := range index {
		byName[p.Package] = append(byName[p.Package], p)
		rels, err := ParseRelations(p.Provides, repo.Arch())
		if err != nil {
			continue
		}
		for _, alts := range rels {
			for _, v := range alts {
				if l := provBy[v.Name]; len(l) == 0 || l[len(l)-1] != p {
					provBy[v.Name] = append(l, p)
				}
			}
		}
	}
	if len(provBy) < 1000 {
		t.Fatalf("only %d virtual names in the real indexes", len(provBy))
	}
	for name, want := range byName {
		if got := repo.Named(name); !slices.Equal(got, want) {
			t.Fatalf("Named(%q): %d entries, want %d", name, len(got), len(want))
		}
	}
	for virtual, want := range provBy {
		got := repo.Providing(virtual)
		i := 0
		for _, p := range got {
			if i < len(want) && p == want[i] {
				i++
			}
		}
		if i != len(want) {
			t.Fatalf("Providing(%q) lacks entries or orders them differently: %d of %d found", virtual, i, len(want))
		}
	}
}

// TestRealCatalogConcurrent: Repos in several goroutines share the
// process's parsed indexes and resolve the same plan as one alone (run
// under -race, this is the check that sharing them is safe).
func TestRealCatalogConcurrent(t *testing.T) {
	apttest.RequireMirror(t, testimage.BookwormNginx.Suite)
	ri := apttest.Open(t, testimage.BookwormNginx)
	plan := func(t testing.TB) (*Resolution, error) {
		// Each Repo's entries are its own: scribbling on another's does
		// not reach this plan.
		for _, p := range realRepo(t, ri).Named("nginx") {
			p.Depends = "no-such-package"
		}
		repo := realRepo(t, ri)
		var want []string
		for _, u := range repo.Candidates(ri.Installed) {
			want = append(want, u.Name)
		}
		return ResolveCatalog(repo.Arch(), ri.Installed, repo, append(want, "postfix"))
	}
	repo := realRepo(t, ri)
	var want []string
	for _, u := range repo.Candidates(ri.Installed) {
		want = append(want, u.Name)
	}
	exp, err := ResolveCatalog(repo.Arch(), ri.Installed, repo, append(want, "postfix"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := plan(t)
			if err == nil && !reflect.DeepEqual(got, exp) {
				err = errors.New("a different plan")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		// nginx's Depends, scribbled on by every goroutine in another
		// Repo, would make the plan fail if it were shared.
		t.Errorf("goroutine %d: %v", i, err)
	}
}
