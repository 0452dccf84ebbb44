package archive

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
)

// realImage is a test image read through rootfs, with the archive cache.
type realImage struct {
	*apttest.Image
	cache string
}

func requireMirror(t *testing.T, suite string) testimage.MirrorInfo {
	return apttest.RequireMirror(t, suite)
}

// openReal builds (or reuses) spec and reads its OS and packages.
func openReal(t *testing.T, spec testimage.Spec) *realImage {
	t.Helper()
	cache, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return &realImage{Image: apttest.Open(t, spec), cache: cache}
}

// checkAgainstTestimage compares candidates with the pending security
// updates testimage computes on its own: every one is a candidate, at that
// version unless another suite has a higher one, and every candidate from
// the security suite is one of them.
func checkAgainstTestimage(t *testing.T, ri *realImage, got []Update) {
	t.Helper()
	want, err := ri.Test.PendingSecurityUpdates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	security := ri.Test.Spec.Suite + "-security"
	nsec := 0
	for _, u := range got {
		if u.Candidate.Suite == security {
			nsec++
		}
	}
	t.Logf("%s: %d installed packages, %d candidates (%d from %s), testimage: %d pending security updates",
		ri.Test.Spec.Name, len(ri.Installed), len(got), nsec, security, len(want))
	byName := map[string]Update{}
	for _, u := range got {
		byName[u.Name] = u
	}
	wantNames := map[string]bool{}
	for _, w := range want {
		wantNames[w.Name] = true
		u, ok := byName[w.Name]
		switch {
		case !ok:
			t.Errorf("no candidate for %s (%s has %s)", w.Name, security, w.NewVersion)
		case u.Candidate.Suite == security && u.Candidate.Version != w.NewVersion:
			t.Errorf("%s: candidate %s from %s, testimage says %s", w.Name, u.Candidate.Version, security, w.NewVersion)
		}
	}
	for _, u := range got {
		if u.Candidate.Suite == security && !wantNames[u.Name] {
			t.Errorf("candidate %s %s from %s that testimage does not list", u.Name, u.Candidate.Version, security)
		}
		if u.Candidate.URL() == "" || u.Candidate.Size <= 0 || len(u.Candidate.SHA256) != 64 {
			t.Errorf("candidate %s: incomplete %+v", u.Name, u.Candidate)
		}
	}
}

// TestRealBookwormNginx reads the sources and keyring of the real
// bookworm-nginx image, fetches and verifies the real bookworm,
// bookworm-updates and bookworm-security indexes, checks the candidates
// against testimage's pending security updates, and downloads one.
func TestRealBookwormNginx(t *testing.T) {
	requireMirror(t, testimage.BookwormNginx.Suite)
	ri := openReal(t, testimage.BookwormNginx)
	ctx := t.Context()
	repo, err := Open(ctx, ri.FS, ri.OS, ri.Test.Spec.Arch, WithCacheDir(ri.cache))
	if err != nil {
		t.Fatal(err)
	}
	suites := map[string]bool{}
	for _, s := range repo.Sources() {
		suites[s.Suite] = true
		if s.Origin == "added" {
			t.Errorf("source %s was added: the image names all three suites", s)
		}
	}
	for _, want := range []string{"bookworm", "bookworm-updates", "bookworm-security"} {
		if !suites[want] {
			t.Errorf("no source for %s in %v", want, repo.Sources())
		}
	}
	start := time.Now()
	if err := repo.Update(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched and verified %d sources in %s", len(repo.Sources()), time.Since(start).Round(time.Millisecond))
	for _, s := range repo.Sources() {
		rel, ok := repo.Release(s)
		if !ok || rel.Signer == "" || (rel.Codename != "bookworm" && rel.Codename != s.Suite) {
			t.Errorf("release of %s: %+v", s, rel)
			continue
		}
		t.Logf("%s: signed by %s, dated %s", s.Suite, rel.Signer, rel.Date.Format(time.RFC3339))
	}
	got := repo.Candidates(ri.Installed)
	checkAgainstTestimage(t, ri, got)

	// Download the smallest candidate and check it landed verified. When
	// the mirror offers no update today, the download is of an installed
	// version (the image is built from the mirror's main suite).
	if len(got) == 0 {
		t.Log("no candidates today: downloading installed versions instead")
		for _, ip := range ri.Installed {
			if p, ok := repo.Lookup(ip.Name, ip.Version); ok {
				got = append(got, Update{Name: ip.Name, Arch: ip.Arch, Installed: ip.Version, Candidate: *p})
			}
		}
		if len(got) == 0 {
			t.Fatal("the mirror has none of the image's installed versions")
		}
	}
	small := got[0]
	for _, u := range got {
		if u.Candidate.Size < small.Candidate.Size {
			small = u
		}
	}
	p, err := repo.FetchDeb(ctx, &small.Candidate)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Size() != small.Candidate.Size {
		t.Fatalf("fetched %s to %s: %v, %v", small.Name, p, st, err)
	}
	t.Logf("fetched %s %s (%d bytes) from %s", small.Name, small.Candidate.Version, st.Size(), small.Candidate.Suite)

	// A wrong hash is refused and leaves nothing in the cache.
	bad := small.Candidate
	bad.SHA256 = "00" + bad.SHA256[2:]
	var hm *HashMismatchError
	if _, err := repo.FetchDeb(ctx, &bad); !errors.Is(err, ErrHashMismatch) || !errors.As(err, &hm) || hm.GotSHA256 != small.Candidate.SHA256 {
		t.Fatalf("FetchDeb with a wrong hash: %v, want a HashMismatchError", err)
	}
	entries, _ := os.ReadDir(filepath.Join(ri.cache, "debs"))
	for _, e := range entries {
		if e.Name() == bad.SHA256+".deb" || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left in the cache after a mismatch: %s", e.Name())
		}
	}
}

// TestRealDistroless updates a distroless image, which has neither apt
// sources nor a keyring: only with an explicit mirror and the host's archive
// keyring.
func TestRealDistroless(t *testing.T) {
	m := requireMirror(t, testimage.DistrolessBookworm.Suite)
	if _, err := os.Stat(DebianArchiveKeyring); err != nil {
		testenv.Missing(t, "no host archive keyring (apt-get install debian-archive-keyring): %v", err)
	}
	ri := openReal(t, testimage.DistrolessBookworm)
	ctx, arch := t.Context(), ri.Test.Spec.Arch
	if _, err := Open(ctx, ri.FS, ri.OS, arch, WithCacheDir(ri.cache)); !errors.Is(err, ErrNoSources) {
		t.Fatalf("Open without a mirror: %v, want ErrNoSources", err)
	}
	mirror := []Option{WithCacheDir(ri.cache), WithMirror(m.URI), WithSecurityMirror(m.SecurityURI)}
	if _, err := Open(ctx, ri.FS, ri.OS, arch, mirror...); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("Open without a keyring: %v, want ErrNoKeyring", err)
	}
	repo, err := Open(ctx, ri.FS, ri.OS, arch, append(mirror, WithHostKeyring(DebianArchiveKeyring))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Update(ctx); err != nil {
		t.Fatal(err)
	}
	checkAgainstTestimage(t, ri, repo.Candidates(ri.Installed))
}

// TestRealTrixie verifies trixie's suites with the image's own keyring
// (debian-archive-keyring.pgp, named by deb822 Signed-By).
func TestRealTrixie(t *testing.T) {
	requireMirror(t, testimage.Trixie.Suite)
	ri := openReal(t, testimage.Trixie)
	repo, err := Open(t.Context(), ri.FS, ri.OS, ri.Test.Spec.Arch, WithCacheDir(ri.cache))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAgainstTestimage(t, ri, repo.Candidates(ri.Installed))
}
