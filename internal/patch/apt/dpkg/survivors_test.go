package dpkg

import (
	"strings"
	"testing"
	"testing/fstest"
)

// Tests added for the mutants that survived `make mutate`
// (test/mutation/SURVIVORS.md, fifth pass); each fails on its mutant,
// planted by hand.

// TestParseStanzaQuotesBadLineUpTo60 checks how a line that is not a field
// is named in the error: whole up to 60 bytes, cut with "..." beyond.
// Mutant: `len(s) <= n` -> `<` in truncate (a 60-byte line cut).
func TestParseStanzaQuotesBadLineUpTo60(t *testing.T) {
	for _, n := range []int{59, 60, 61, 200} {
		line := strings.Repeat("x", n) // no colon: not a field
		_, err := parseStanza("Package: a\n" + line + "\n")
		if err == nil {
			t.Fatalf("%d-byte line accepted", n)
		}
		want := `line 2: "` + line + `" is not a field`
		if n > 60 {
			want = `line 2: "` + line[:60] + `..." is not a field`
		}
		if err.Error() != want {
			t.Errorf("%d-byte line: error %q, want %q", n, err, want)
		}
	}
}

// TestInstalledVersion reads a package's version from an image's status
// file (the maintainer-script runner asks it for dpkg's own version).
// Nothing in this package called it: `make mutate` listed its checks as
// not covered. The first stanza counts (mutant `i < 0` -> `<= 0`); a
// missing, unreadable or malformed status file and an absent package
// give "".
func TestInstalledVersion(t *testing.T) {
	status := "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\n\n" +
		"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9+deb12u9\n\n" +
		"Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n"
	img := fstest.MapFS{DpkgStatus: {Data: []byte(status)}}
	for _, c := range []struct{ name, arch, want string }{
		{"dpkg", "amd64", "1.21.22"}, // the first stanza
		{"libc6", "amd64", "2.36-9+deb12u9"},
		{"tzdata", "amd64", "2024a-0+deb12u1"}, // Architecture: all
		{"libc6", "arm64", ""},
		{"curl", "amd64", ""},
	} {
		if got := InstalledVersion(img, c.name, c.arch); got != c.want {
			t.Errorf("InstalledVersion(%s, %s) = %q, want %q", c.name, c.arch, got, c.want)
		}
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no status file":     {},
		"status a directory": {DpkgStatus + "/x": {Data: []byte("x")}},
		"malformed":          {DpkgStatus: {Data: []byte("Package: dpkg\nnot a field\n")}},
	} {
		if got := InstalledVersion(fsys, "dpkg", "amd64"); got != "" {
			t.Errorf("%s: InstalledVersion = %q, want \"\"", name, got)
		}
	}
}
