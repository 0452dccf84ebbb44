package archive

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/cache"
)

var bookwormOS = osinfo.OS{ID: "debian", Family: osinfo.FamilyDebian, VersionCodename: "bookworm"}

// testArchive serves bookworm (libssl3 1.0-1, tzdata 2024a-1),
// bookworm-updates (tzdata 2025a-0+deb12u1) and, in the "-security" sibling,
// bookworm-security (libssl3 1.0-1+deb12u1, libfoo for arm64 only).
type testArchive struct {
	*fakeArchive
	url, deb string
	key      *openpgp.Entity
}

func newTestArchive(t *testing.T, secExtra string) *testArchive {
	key := newKey(t, "archive")
	deb := []byte("!<arch>\nfake libssl3 deb")
	a := &testArchive{fakeArchive: &fakeArchive{files: map[string][]byte{}, hits: map[string]int{}}, key: key}
	a.url = newServer(t, a.fakeArchive)
	a.deb = "pool/main/o/openssl/libssl3_1.0-1+deb12u1_amd64.deb"
	maps.Copy(a.files, suiteFiles(t, key, "/debian", "bookworm",
		stanzaFor("libssl3", "1.0-1", "amd64", "pool/main/o/openssl/libssl3_1.0-1_amd64.deb", []byte("old"))+
			stanzaFor("tzdata", "2024a-1", "all", "pool/main/t/tzdata/tzdata_2024a-1_all.deb", []byte("tz")), ""))
	maps.Copy(a.files, suiteFiles(t, key, "/debian", "bookworm-updates",
		stanzaFor("tzdata", "2025a-0+deb12u1", "all", "pool/main/t/tzdata/tzdata_2025a-0+deb12u1_all.deb", []byte("tz2")), ""))
	maps.Copy(a.files, suiteFiles(t, key, "/debian-security", "bookworm-security",
		stanzaFor("libssl3", "1.0-1+deb12u1", "amd64", a.deb, deb)+
			stanzaFor("libssl3", "1.0-1~older", "amd64", "pool/main/o/openssl/libssl3_older.deb", []byte("x"))+
			stanzaFor("libfoo", "9", "arm64", "pool/main/f/libfoo_9_arm64.deb", []byte("foo")), secExtra))
	a.files["/debian-security/"+a.deb] = deb
	return a
}

// image is a root filesystem naming only the archive's main suite, with
// keyring as its Signed-By file.
func (a *testArchive) image(t *testing.T, keyring []byte) fstest.MapFS {
	return fstest.MapFS{
		"etc/apt/sources.list.d/debian.sources": {Data: []byte("Types: deb\nURIs: " + a.url + "/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/test.gpg\n")},
		"usr/share/keyrings/test.gpg":           {Data: keyring},
	}
}

var testInstalled = []inventory.Package{
	{Name: "libssl3", Version: "1.0-1", Arch: "amd64", Ecosystem: "deb"},
	{Name: "tzdata", Version: "2024a-1", Arch: "all", Ecosystem: "deb"},
	{Name: "libfoo", Version: "1", Arch: "amd64", Ecosystem: "deb"},
	{Name: "busybox", Version: "1", Arch: "amd64", Ecosystem: "deb"},
}

func TestRepoUpdateAndCandidates(t *testing.T) {
	a := newTestArchive(t, "Valid-Until: "+testNow.Add(time.Hour).Format(time.RFC1123)+"\n")
	cache := t.TempDir()
	repo, err := Open(t.Context(), a.image(t, publicKeyring(t, false, a.key)), bookwormOS, "amd64", WithCacheDir(cache), WithClock(fixedClock(testNow)))
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, s := range repo.Sources() {
		srcs = append(srcs, strings.TrimPrefix(s.String(), a.url)+" "+s.Origin)
	}
	if want := "/debian bookworm main /etc/apt/sources.list.d/debian.sources:1|/debian bookworm-updates main added|/debian-security bookworm-security main added"; strings.Join(srcs, "|") != strings.ReplaceAll(want, "/etc/", "etc/") {
		t.Errorf("sources %q", srcs)
	}
	if err := repo.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := repo.Candidates(testInstalled)
	var s []string
	for _, u := range got {
		s = append(s, u.Name+" "+u.Installed+" -> "+u.Candidate.Version+" "+u.Candidate.Suite)
	}
	if want := "libssl3 1.0-1 -> 1.0-1+deb12u1 bookworm-security|tzdata 2024a-1 -> 2025a-0+deb12u1 bookworm-updates"; strings.Join(s, "|") != want {
		t.Errorf("candidates %q, want %q", s, want)
	}
	p, err := repo.FetchDeb(t.Context(), &got[0].Candidate)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(p); err != nil || string(data) != string(a.files["/debian-security/"+a.deb]) {
		t.Errorf("fetched %q, %v", data, err)
	}

	// The gzip index is fetched, not the xz one (it decodes five times
	// faster).
	if n := a.hitCount("/debian/dists/bookworm/main/binary-amd64/Packages.xz"); n != 0 || a.hitCount("/debian/dists/bookworm/main/binary-amd64/Packages.gz") == 0 {
		t.Errorf("Packages.xz fetched %d times with Packages.gz listed", n)
	}
	// A second Update reads the indexes from the cache.
	before := a.hitCount("/debian/dists/bookworm/main/binary-amd64/Packages.gz")
	if err := repo.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := a.hitCount("/debian/dists/bookworm/main/binary-amd64/Packages.gz"); after != before {
		t.Errorf("index fetched again: %d -> %d", before, after)
	}

	// A damaged cached .deb is detected and fetched again.
	if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	debHits := a.hitCount("/debian-security/" + a.deb)
	p2, err := repo.FetchDeb(t.Context(), &got[0].Candidate)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p2); string(data) != string(a.files["/debian-security/"+a.deb]) || a.hitCount("/debian-security/"+a.deb) != debHits+1 {
		t.Errorf("damaged cache entry: read %q, %d fetches", data, a.hitCount("/debian-security/"+a.deb)-debHits)
	}

	// A .deb whose bytes differ from the index is refused and not kept.
	repo.Close()
	a.files["/debian-security/"+a.deb] = []byte("evil")
	store := filepath.Join(cache, "store")
	os.RemoveAll(filepath.Join(store, "deb-"+got[0].Candidate.SHA256))
	var hm *HashMismatchError
	if _, err := repo.FetchDeb(t.Context(), &got[0].Candidate); !errors.As(err, &hm) || !strings.Contains(err.Error(), a.deb) {
		t.Fatalf("tampered deb: %v", err)
	}
	left, _ := os.ReadDir(store)
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "deb-") || strings.HasPrefix(e.Name(), "tmp-") {
			t.Errorf("left in the cache: %s", e.Name())
		}
	}
}

// TestParsedIndexCache: parsed indexes are reused by the hash the signed
// Release gives; a changed index (another hash) is parsed anew, never
// served from the cache; a damaged cached parse is detected and redone.
func TestParsedIndexCache(t *testing.T) {
	a := newTestArchive(t, "")
	cache := t.TempDir()
	open := func() *Repo {
		t.Helper()
		repo, err := Open(t.Context(), a.image(t, publicKeyring(t, false, a.key)), bookwormOS, "amd64", WithCacheDir(cache), WithClock(fixedClock(testNow)))
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { repo.Close() })
		return repo
	}
	parsed := func() []string {
		es, _ := os.ReadDir(filepath.Join(cache, "store"))
		var out []string
		for _, e := range es {
			if strings.HasPrefix(e.Name(), parsedFormat) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	tzdata := func(r *Repo) string {
		for _, u := range r.Candidates(testInstalled) {
			if u.Name == "tzdata" {
				return u.Candidate.Version
			}
		}
		return ""
	}
	open()
	first := parsed()
	if len(first) != 3 {
		t.Fatalf("%d parsed indexes cached, want 3 (one per suite)", len(first))
	}
	// A second Update: no index fetched again, nothing parsed anew.
	hits := a.hitCount("/debian/dists/bookworm-updates/main/binary-amd64/Packages.gz")
	if v := tzdata(open()); v != "2025a-0+deb12u1" {
		t.Errorf("tzdata candidate %q from the cache", v)
	}
	if a.hitCount("/debian/dists/bookworm-updates/main/binary-amd64/Packages.gz") != hits {
		t.Error("a cached index was fetched again")
	}

	// The mirror publishes a new bookworm-updates: another hash, another
	// entry; the old parse is not reused.
	maps.Copy(a.files, suiteFiles(t, a.key, "/debian", "bookworm-updates",
		stanzaFor("tzdata", "2025b-0+deb12u1", "all", "pool/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb", []byte("tz3")), ""))
	if v := tzdata(open()); v != "2025b-0+deb12u1" {
		t.Errorf("after the mirror changed, tzdata candidate %q, want 2025b-0+deb12u1", v)
	}
	if n := len(parsed()); n != 4 {
		t.Errorf("%d parsed indexes cached after the change, want 4", n)
	}

	// A damaged parse is detected and redone from the index (once the
	// process's copies are forgotten).
	for _, e := range parsed() {
		parsedIndexes.drop(filepath.Join(cache, "store") + "\x00" + e)
		f := filepath.Join(cache, "store", e, "packages")
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if v := tzdata(open()); v != "2025b-0+deb12u1" {
		t.Errorf("with damaged parses, tzdata candidate %q", v)
	}
	intact := 0
	for _, e := range parsed() {
		if _, err := cacheReadFile(filepath.Join(cache, "store", e, "packages")); err == nil {
			intact++
		}
	}
	if intact < 3 {
		t.Errorf("%d parsed indexes intact after an Update, want the 3 it used", intact)
	}
}

func TestRepoRefuses(t *testing.T) {
	expired := "Valid-Until: " + testNow.Add(-time.Minute).Format(time.RFC1123) + "\n"
	opts := func(t *testing.T, extra ...Option) []Option {
		return append([]Option{WithCacheDir(t.TempDir()), WithClock(fixedClock(testNow))}, extra...)
	}
	t.Run("expired", func(t *testing.T) {
		a := newTestArchive(t, expired)
		repo, err := Open(t.Context(), a.image(t, publicKeyring(t, true, a.key)), bookwormOS, "amd64", opts(t)...)
		if err != nil {
			t.Fatal(err)
		}
		var re *ReleaseError
		if err := repo.Update(t.Context()); !errors.Is(err, ErrExpired) || !errors.As(err, &re) || !strings.HasSuffix(re.URL, "bookworm-security/InRelease") {
			t.Fatalf("Update: %v, want ErrExpired naming the security InRelease", err)
		}
		// Explicitly insecure, it goes through.
		var log bytes.Buffer
		repo, err = Open(t.Context(), a.image(t, publicKeyring(t, true, a.key)), bookwormOS, "amd64",
			opts(t, WithInsecureSkipVerify(), WithLogger(slog.New(slog.NewTextHandler(&log, nil))))...)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); err != nil {
			t.Fatalf("insecure Update: %v", err)
		}
		if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "INSECURE") {
			t.Errorf("insecure acceptance not logged loudly: %q", log.String())
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		a := newTestArchive(t, "")
		repo, err := Open(t.Context(), a.image(t, publicKeyring(t, false, newKey(t, "other"))), bookwormOS, "amd64", opts(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Update: %v, want ErrBadSignature", err)
		}
	})
	t.Run("replayed Release of another suite", func(t *testing.T) {
		a := newTestArchive(t, "")
		a.files["/debian/dists/bookworm-updates/InRelease"] = a.files["/debian/dists/bookworm/InRelease"]
		repo, err := Open(t.Context(), a.image(t, publicKeyring(t, false, a.key)), bookwormOS, "amd64", opts(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); !errors.Is(err, ErrWrongSuite) {
			t.Fatalf("Update: %v, want ErrWrongSuite", err)
		}
	})
	t.Run("tampered index", func(t *testing.T) {
		a := newTestArchive(t, "")
		a.files["/debian/dists/bookworm-updates/main/binary-amd64/Packages.gz"] = gzData(t, []byte("Package: evil\n"))
		repo, err := Open(t.Context(), a.image(t, publicKeyring(t, false, a.key)), bookwormOS, "amd64", opts(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), "bookworm-updates/main/binary-amd64/Packages.gz") {
			t.Fatalf("Update: %v, want ErrHashMismatch naming the index", err)
		}
	})
	t.Run("Release.gpg fallback and unsigned", func(t *testing.T) {
		a := newTestArchive(t, "")
		// Replace bookworm's InRelease by Release + Release.gpg.
		in := a.files["/debian/dists/bookworm/InRelease"]
		delete(a.files, "/debian/dists/bookworm/InRelease")
		plain, _, err := VerifyInRelease(in, openpgp.EntityList{a.key}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		a.files["/debian/dists/bookworm/Release"] = plain
		a.files["/debian/dists/bookworm/Release.gpg"] = detachSign(t, a.key, plain)
		img := a.image(t, publicKeyring(t, false, a.key))
		repo, err := Open(t.Context(), img, bookwormOS, "amd64", opts(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); err != nil {
			t.Fatalf("Release + Release.gpg: %v", err)
		}
		delete(a.files, "/debian/dists/bookworm/Release.gpg")
		if err := repo.Update(t.Context()); !errors.Is(err, ErrUnsigned) {
			t.Fatalf("Release without Release.gpg: %v, want ErrUnsigned", err)
		}
	})
	t.Run("distroless", func(t *testing.T) {
		a := newTestArchive(t, "")
		img := fstest.MapFS{"var/lib/dpkg/status.d/libssl3": {Data: []byte("Package: libssl3\n")}}
		if _, err := Open(t.Context(), img, bookwormOS, "amd64", opts(t)...); !errors.Is(err, ErrNoSources) {
			t.Fatalf("no sources, no mirror: %v", err)
		}
		if _, err := Open(t.Context(), img, bookwormOS, "amd64", opts(t, WithMirror(a.url+"/debian"))...); !errors.Is(err, ErrNoKeyring) {
			t.Fatalf("no keyring: %v, want ErrNoKeyring", err)
		}
		host := filepath.Join(t.TempDir(), "archive.gpg")
		if err := os.WriteFile(host, publicKeyring(t, false, a.key), 0o644); err != nil {
			t.Fatal(err)
		}
		repo, err := Open(t.Context(), img, bookwormOS, "amd64", opts(t, WithMirror(a.url+"/debian"), WithHostKeyring(host))...)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := repo.Candidates(testInstalled); len(got) != 2 {
			t.Errorf("candidates %+v", got)
		}
	})
}

func TestTrustedKeys(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	fsys := fstest.MapFS{
		"etc/apt/trusted.gpg":              {Data: publicKeyring(t, false, a)},
		"etc/apt/trusted.gpg.d/b.asc":      {Data: publicKeyring(t, true, b)},
		"etc/apt/trusted.gpg.d/README.txt": {Data: []byte("not a key")},
	}
	el, err := ReadTrustedKeys(t.Context(), fsys)
	if err != nil || len(el) != 2 {
		t.Fatalf("ReadTrustedKeys: %d keys, %v", len(el), err)
	}
	fsys["etc/apt/trusted.gpg.d/bad.gpg"] = &fstest.MapFile{Data: []byte("garbage")}
	if _, err := ReadTrustedKeys(t.Context(), fsys); err == nil || !strings.Contains(err.Error(), "etc/apt/trusted.gpg.d/bad.gpg") {
		t.Errorf("bad keyring: %v", err)
	}
}

func cacheReadFile(p string) ([]byte, error) { return cache.ReadFile(p) }

// openCounter counts the opens of each file of an fs.FS.
type openCounter struct {
	fs.FS
	opens map[string]int
}

func (c *openCounter) Open(name string) (fs.File, error) {
	c.opens[name]++
	return c.FS.Open(name)
}

// TestSharedKeyringReadOnce: the three sources of a release (its suite,
// updates and security) name one Signed-By keyring; Open reads and parses
// it once, and every source is verified with its keys (Update checks each
// source's signed Release with them).
func TestSharedKeyringReadOnce(t *testing.T) {
	a := newTestArchive(t, "")
	fsys := &openCounter{FS: a.image(t, publicKeyring(t, false, a.key)), opens: map[string]int{}}
	repo, err := Open(t.Context(), fsys, bookwormOS, "amd64", WithCacheDir(t.TempDir()), WithClock(fixedClock(testNow)))
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	if n := len(repo.Sources()); n != 3 {
		t.Fatalf("%d sources, want 3", n)
	}
	for i, keys := range repo.keys {
		if len(keys) != 1 || repo.keyDesc[i] != "/usr/share/keyrings/test.gpg" {
			t.Errorf("source %d: %d keys from %q", i, len(keys), repo.keyDesc[i])
		}
	}
	if n := fsys.opens["usr/share/keyrings/test.gpg"]; n != 1 {
		t.Errorf("the shared keyring was opened %d times, want 1", n)
	}
	if err := repo.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
}
