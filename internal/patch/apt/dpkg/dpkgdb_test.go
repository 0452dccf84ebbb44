package dpkg

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/testimage"
)

func TestParseStanza(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []rawField
	}{
		{"single field", "Package: foo", []rawField{{"Package", "foo"}}},
		{"trailing newlines", "Package: foo\n\n\n", []rawField{{"Package", "foo"}}},
		{"no space after colon", "Package:foo", []rawField{{"Package", "foo"}}},
		{"several spaces and a tab", "Package: \t  foo", []rawField{{"Package", "foo"}}},
		{"trailing space kept", "Package: foo ", []rawField{{"Package", "foo "}}},
		{"colon in value", "Maintainer: A <a@b>: x", []rawField{{"Maintainer", "A <a@b>: x"}}},
		{"empty value", "Conffiles:", []rawField{{"Conffiles", ""}}},
		{"empty value then continuation", "Conffiles:\n /etc/a 0123\n /etc/b 4567 obsolete",
			[]rawField{{"Conffiles", "\n /etc/a 0123\n /etc/b 4567 obsolete"}}},
		{"description continuation and dot line", "Package: foo\nDescription: short\n long line\n .\n more\nHomepage: https://x",
			[]rawField{{"Package", "foo"}, {"Description", "short\n long line\n .\n more"}, {"Homepage", "https://x"}}},
		{"tab continuation", "A: 1\n\tcont", []rawField{{"A", "1\n\tcont"}}},
		{"whitespace-only continuation", "A: 1\n ", []rawField{{"A", "1\n "}}},
		{"comments skipped", "# head\nA: 1\n# mid\nB: 2", []rawField{{"A", "1"}, {"B", "2"}}},
		{"comment between value and continuation", "A: 1\n# c\n x", []rawField{{"A", "1\n x"}}},
		{"duplicate fields kept in order", "A: 1\nA: 2", []rawField{{"A", "1"}, {"A", "2"}}},
		{"order kept", "Z: 1\nA: 2\nM: 3", []rawField{{"Z", "1"}, {"A", "2"}, {"M", "3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStanza(tt.in)
			if err != nil {
				t.Fatalf("parseStanza(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("parseStanza(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseStanzaErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty input", "", "empty line"},
		{"only newlines", "\n\n", "empty line"},
		{"only comments", "# a\n# b", "empty stanza"},
		{"empty line inside", "A: 1\n\nB: 2", "line 2: empty line inside a stanza"},
		{"leading empty line", "\nA: 1", "line 1: empty line"},
		{"continuation first", " x\nA: 1", "line 1: continuation line before the first field"},
		{"tab continuation first", "\tx", "continuation line before the first field"},
		{"continuation after only comments", "# c\n x", "line 2: continuation line"},
		{"no colon", "A: 1\nnot a field", `line 2: "not a field" is not a field`},
		{"empty name", ": value", "is not a field"},
		{"field name with space", "Field Name: x", "is not a field"},
		{"field name with tab", "Field\tName: x", "is not a field"},
		{"long line truncated", "x" + strings.Repeat("y", 100), `"x` + strings.Repeat("y", 59) + `..." is not a field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStanza(tt.in)
			if err == nil {
				t.Fatalf("parseStanza(%q) = %q, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseStanza(%q) error %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestFieldValue(t *testing.T) {
	fields := []rawField{{"Package", "foo"}, {"Description", "short\n long"}, {"Multi-Arch", "same "}, {"Package", "second"}}
	for _, tt := range []struct{ name, want string }{
		{"Package", "foo"}, // the first occurrence
		{"package", "foo"}, // case-insensitive
		{"MULTI-ARCH", "same"},
		{"Description", "short\n long"},
		{"Missing", ""},
	} {
		if got := fieldValue(fields, tt.name); got != tt.want {
			t.Errorf("fieldValue(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// stanzaOf returns the stanza of package name in a status file text.
func stanzaOf(t *testing.T, status, name string) string {
	t.Helper()
	sf, err := parseStatusFile([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	i := sf.find(name, "amd64")
	if i < 0 {
		t.Fatalf("%s not in the status file", name)
	}
	return sf.stanzas[i].text
}

// controlLike rebuilds the control file a status stanza came from: Status
// and Conffiles dropped, the fields in the .deb's order (order lists the
// names as the .deb's control file has them).
func controlLike(t *testing.T, stanza string, order []string) []rawField {
	t.Helper()
	fields, err := parseStanza(stanza)
	if err != nil {
		t.Fatal(err)
	}
	var out []rawField
	for _, name := range order {
		i := slices.IndexFunc(fields, func(f rawField) bool { return f.name == name })
		if i < 0 {
			t.Fatalf("stanza has no %s field", name)
		}
		out = append(out, fields[i])
	}
	for _, f := range fields {
		if f.name != "Status" && f.name != "Conffiles" && !slices.Contains(order, f.name) {
			t.Fatalf("order lacks field %s", f.name)
		}
	}
	return out
}

// TestStatusStanzaMatchesDpkg checks that the stanza drydock writes for a
// package is the one dpkg wrote: the status stanza of version X equals
// statusStanza(control file of X, conffiles of X).
func TestStatusStanzaMatchesDpkg(t *testing.T) {
	t.Run("nginx-common from its real control file", func(t *testing.T) {
		// The image has 1.22.1-9+deb12u9; the control file is deb12u11's,
		// which differs only in Version and Installed-Size.
		want := stanzaOf(t, realStatusNginx, "nginx-common")
		control := strings.Replace(realControlNginxCommon, "Version: 1.22.1-9+deb12u11", "Version: 1.22.1-9+deb12u9", 1)
		control = strings.Replace(control, "Installed-Size: 333", "Installed-Size: 332", 1)
		fields, err := parseStanza(control)
		if err != nil {
			t.Fatal(err)
		}
		conffiles := parseConffiles(want)
		if len(conffiles) != 17 {
			t.Fatalf("parseConffiles found %d conffiles, want 17", len(conffiles))
		}
		if got := statusStanza(fields, conffiles, false); got != want {
			t.Errorf("statusStanza:\n%s\nwant (dpkg):\n%s", got, want)
		}
	})
	t.Run("libssl3 from its real control file", func(t *testing.T) {
		control := strings.Replace(realControlLibssl3, "Version: 3.0.22-1~deb12u2", "Version: 3.0.20-1~deb12u2", 1)
		control = strings.Replace(control, "Installed-Size: 6042", "Installed-Size: 6030", 1)
		fields, err := parseStanza(control)
		if err != nil {
			t.Fatal(err)
		}
		if got := statusStanza(fields, nil, false); got != realStatusLibssl3 {
			t.Errorf("statusStanza:\n%s\nwant (dpkg):\n%s", got, realStatusLibssl3)
		}
	})
	// Field orders of the packages' real control files
	// (/DEBIAN/control of the .debs).
	for _, tt := range []struct {
		pkg   string
		order []string
	}{
		{"openssl", []string{"Package", "Version", "Architecture", "Maintainer", "Installed-Size", "Depends", "Suggests", "Section", "Priority", "Multi-Arch", "Homepage", "Description"}},
		{"perl-base", []string{"Package", "Source", "Version", "Architecture", "Essential", "Maintainer", "Installed-Size", "Pre-Depends", "Suggests", "Conflicts", "Breaks", "Replaces", "Provides", "Section", "Priority", "Homepage", "Description"}},
		{"nginx", []string{"Package", "Version", "Architecture", "Maintainer", "Installed-Size", "Depends", "Breaks", "Replaces", "Provides", "Section", "Priority", "Homepage", "Description"}},
		{"nginx-light", []string{"Package", "Source", "Version", "Architecture", "Maintainer", "Installed-Size", "Depends", "Section", "Priority", "Homepage", "Description"}},
		{"passwd", []string{"Package", "Source", "Version", "Architecture", "Maintainer", "Installed-Size", "Depends", "Recommends", "Section", "Priority", "Multi-Arch", "Homepage", "Description"}},
	} {
		t.Run(tt.pkg, func(t *testing.T) {
			want := stanzaOf(t, realStatusNginx, tt.pkg)
			control := controlLike(t, want, tt.order)
			if got := statusStanza(control, parseConffiles(want), false); got != want {
				t.Errorf("statusStanza:\n%s\nwant (dpkg):\n%s", got, want)
			}
		})
	}
}

func TestStatusStanzaDistroless(t *testing.T) {
	// distroless writes the control file as is with Status after Package.
	control := strings.Replace(realControlLibssl3, "Version: 3.0.22-1~deb12u2", "Version: 3.0.20-1~deb12u2", 1)
	control = strings.Replace(control, "Installed-Size: 6042", "Installed-Size: 6030", 1)
	fields, err := parseStanza(control)
	if err != nil {
		t.Fatal(err)
	}
	if got := statusStanza(fields, nil, true); got != realDistrolessLibssl3 {
		t.Errorf("statusStanza(distroless):\n%s\nwant (distroless image):\n%s", got, realDistrolessLibssl3)
	}
	// Conffiles are not recorded in status.d, and a Status of the
	// control file is replaced.
	fields = append([]rawField{{"Status", "deinstall ok config-files"}}, fields...)
	got := statusStanza(fields, []Conffile{{Path: "/etc/x", MD5: strings.Repeat("0", 32)}}, true)
	if got != realDistrolessLibssl3 {
		t.Errorf("statusStanza(distroless) with Status and conffiles:\n%s", got)
	}
}

func TestStatusStanzaSynthetic(t *testing.T) {
	md5a, md5b := strings.Repeat("a", 32), strings.Repeat("b", 32)
	control := []rawField{
		{"Package", "foo"},
		{"X-Custom", "one"},
		{"Version", "1.0-1"},
		{"Status", "purge ok not-installed"},   // replaced
		{"Conffiles", "\n /etc/stale " + md5b}, // replaced
		{"Description", "short\n long"},
		{"Architecture", "amd64"},
		{"Built-Using", "gcc (= 12)"},
		{"Essential", "yes"},
	}
	conffiles := []Conffile{{Path: "/etc/foo.conf", MD5: md5a}, {Path: "/etc/old.conf", MD5: md5b, Obsolete: true}}
	want := "Package: foo\nEssential: yes\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n" +
		"Conffiles:\n /etc/foo.conf " + md5a + "\n /etc/old.conf " + md5b + " obsolete\n" +
		"Description: short\n long\nX-Custom: one\nBuilt-Using: gcc (= 12)\n"
	if got := statusStanza(control, conffiles, false); got != want {
		t.Errorf("statusStanza:\n%s\nwant:\n%s", got, want)
	}
	// The control slice is not modified.
	if control[3].name != "Status" || len(control) != 9 {
		t.Errorf("statusStanza modified its input: %q", control)
	}
	// No conffiles: no Conffiles field; an empty value is written without
	// a trailing space.
	got := statusStanza([]rawField{{"package", "bar"}, {"Empty", ""}}, nil, false)
	if want := "package: bar\nStatus: install ok installed\nEmpty:\n"; got != want {
		t.Errorf("statusStanza = %q, want %q", got, want)
	}
	// The written stanza parses back to the same fields.
	fields, err := parseStanza(statusStanza(control, conffiles, false))
	if err != nil {
		t.Fatal(err)
	}
	if v := fieldValue(fields, "Conffiles"); !strings.Contains(v, "/etc/old.conf "+md5b+" obsolete") {
		t.Errorf("Conffiles = %q", v)
	}
	if got := parseConffiles(statusStanza(control, conffiles, false)); !slices.Equal(got, conffiles) {
		t.Errorf("parseConffiles(statusStanza) = %+v, want %+v", got, conffiles)
	}
}

func TestStatusFileRoundTrip(t *testing.T) {
	sf, err := parseStatusFile([]byte(realStatusNginx))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range sf.stanzas {
		names = append(names, e.name+":"+e.arch)
	}
	want := []string{"nginx:amd64", "nginx-common:all", "nginx-light:all", "openssl:amd64", "passwd:amd64", "perl-base:amd64"}
	if !slices.Equal(names, want) {
		t.Errorf("stanzas %q, want %q", names, want)
	}
	if !sf.isSorted() {
		t.Error("isSorted() = false for dpkg's sorted status file")
	}
	for _, sorted := range []bool{true, false} {
		if got := sf.bytes(sorted); string(got) != realStatusNginx {
			t.Errorf("bytes(%v) differs from the file parsed:\n%s", sorted, got)
		}
	}
	// Replacing a stanza by itself changes nothing.
	i := sf.find("openssl", "amd64")
	sf.set("openssl", "amd64", sf.stanzas[i].text)
	if got := sf.bytes(true); string(got) != realStatusNginx {
		t.Error("set of an unchanged stanza changed the file")
	}
}

// TestStatusFileRoundTripImage checks the round trip on the whole status
// file of the real bookworm-nginx test image (built, or reused, from
// $DRYDOCK_CACHE by testimage); the stanzas must be the packages testimage's
// own parser reads from it.
func TestStatusFileRoundTripImage(t *testing.T) {
	img, err := testimage.Require(t, testimage.BookwormNginx).Open()
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := testimage.ReadFile(img, DpkgStatus)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := testimage.InstalledPackages(img)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := parseStatusFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 50 || len(sf.stanzas) != len(pkgs) {
		t.Errorf("%d stanzas, testimage reads %d installed packages", len(sf.stanzas), len(pkgs))
	}
	for _, p := range pkgs {
		if sf.find(p.Name, p.Arch) < 0 {
			t.Errorf("no stanza for %s:%s", p.Name, p.Arch)
		}
	}
	if !sf.isSorted() {
		t.Fatal("isSorted() = false")
	}
	if got := sf.bytes(true); !bytes.Equal(got, data) {
		t.Error("bytes(true) differs from the real status file")
	}
}

func TestParseStatusFileNormalizes(t *testing.T) {
	tests := []struct {
		name, in, want string
		n              int
	}{
		{"CRLF", "Package: a\r\nVersion: 1\r\n\r\nPackage: b\r\n", "Package: a\nVersion: 1\n\nPackage: b\n\n", 2},
		{"extra blank lines", "\n\nPackage: a\n\n\n\nPackage: b", "Package: a\n\nPackage: b\n\n", 2},
		{"no final newline", "Package: a", "Package: a\n\n", 1},
		{"empty file", "", "", 0},
		{"blank lines only", "\n\n\n", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sf, err := parseStatusFile([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(sf.stanzas) != tt.n {
				t.Errorf("%d stanzas, want %d", len(sf.stanzas), tt.n)
			}
			if got := string(sf.bytes(false)); got != tt.want {
				t.Errorf("bytes = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseStatusFileErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Package: a\n\n continuation\n", "stanza 2: line 1: continuation line"},
		{"Package: a\n\nPackage: b\nbroken\n", `stanza 2: line 2: "broken" is not a field`},
		{"# just a comment\n", "stanza 1: empty stanza"},
	} {
		_, err := parseStatusFile([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), DpkgStatus) {
			t.Errorf("parseStatusFile(%q) error %v, want one naming %s and %q", tt.in, err, DpkgStatus, tt.want)
		}
	}
}

func TestStatusFileFind(t *testing.T) {
	sf := &statusFile{stanzas: []statusEntry{
		{name: "libc6", arch: "amd64"},
		{name: "libc6", arch: "i386"},
		{name: "tzdata", arch: "all"},
		{name: "libfoo", arch: "i386"},
		{name: "bar", arch: "amd64"},
	}}
	tests := []struct {
		name, arch string
		want       int
	}{
		{"libc6", "amd64", 0},
		{"libc6", "i386", 1},
		{"libc6", "arm64", -1},
		{"libc6", "all", 0}, // "all" is the native namespace: the first one
		{"tzdata", "amd64", 2},
		{"tzdata", "all", 2},
		{"libfoo", "amd64", -1}, // a foreign-architecture package only
		{"libfoo", "i386", 3},
		{"bar", "all", 4},
		{"baz", "amd64", -1},
		{"", "amd64", -1},
		{"LIBC6", "amd64", -1}, // names are case-sensitive
	}
	for _, tt := range tests {
		if got := sf.find(tt.name, tt.arch); got != tt.want {
			t.Errorf("find(%q, %q) = %d, want %d", tt.name, tt.arch, got, tt.want)
		}
	}
}

func TestStatusFileSetAndOrder(t *testing.T) {
	in := "Package: b\nArchitecture: amd64\n\nPackage: a\nArchitecture: all\n\n"
	sf, err := parseStatusFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if sf.isSorted() {
		t.Error("isSorted() = true for b before a")
	}
	// A package moving from Architecture: all to amd64 replaces its entry.
	sf.set("a", "amd64", "Package: a\nArchitecture: amd64\n")
	sf.set("c", "amd64", "Package: c\nArchitecture: amd64\n")
	// Another architecture of a package that is no longer "all" is a
	// second instance (Multi-Arch: same).
	sf.set("a", "i386", "Package: a\nArchitecture: i386\n")
	if len(sf.stanzas) != 4 {
		t.Fatalf("%d stanzas, want 4: %+v", len(sf.stanzas), sf.stanzas)
	}
	unsorted := "Package: b\nArchitecture: amd64\n\nPackage: a\nArchitecture: amd64\n\nPackage: c\nArchitecture: amd64\n\nPackage: a\nArchitecture: i386\n\n"
	if got := string(sf.bytes(false)); got != unsorted {
		t.Errorf("bytes(false) = %q, want %q", got, unsorted)
	}
	sorted := "Package: a\nArchitecture: amd64\n\nPackage: a\nArchitecture: i386\n\nPackage: b\nArchitecture: amd64\n\nPackage: c\nArchitecture: amd64\n\n"
	if got := string(sf.bytes(true)); got != sorted {
		t.Errorf("bytes(true) = %q, want %q", got, sorted)
	}
	// bytes does not reorder the stanzas themselves.
	if sf.stanzas[0].name != "b" {
		t.Error("bytes(true) sorted the stanzas in place")
	}
	// Same name: sorted by architecture.
	sf = &statusFile{stanzas: []statusEntry{{name: "x", arch: "i386", text: "X2\n"}, {name: "x", arch: "amd64", text: "X1\n"}}}
	if got := string(sf.bytes(true)); got != "X1\n\nX2\n\n" {
		t.Errorf("bytes(true) = %q", got)
	}
}

func TestParseConffiles(t *testing.T) {
	a, b, c := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	tests := []struct {
		name, stanza string
		want         []Conffile
	}{
		{"none", "Package: x\nVersion: 1\n", nil},
		{"empty field", "Package: x\nConffiles:\n", nil},
		{"entries", "Package: x\nConffiles:\n /etc/a " + a + "\n /etc/b " + b + " obsolete\nDescription: d\n",
			[]Conffile{{"/etc/a", a, false}, {"/etc/b", b, true}}},
		{"remove-on-upgrade flag is not obsolete", "Package: x\nConffiles:\n /etc/a " + a + " remove-on-upgrade\n",
			[]Conffile{{"/etc/a", a, false}}},
		{"both flags", "Package: x\nConffiles:\n /etc/a " + a + " obsolete remove-on-upgrade\n",
			[]Conffile{{"/etc/a", a, true}}},
		{"newconffile placeholder hash", "Package: x\nConffiles:\n /etc/a newconffile\n",
			[]Conffile{{"/etc/a", "newconffile", false}}},
		{"malformed lines skipped", "Package: x\nConffiles:\n /etc/a\n relative " + a + "\n \n /etc/c " + c + "\n",
			[]Conffile{{"/etc/c", c, false}}},
		{"tab continuation", "Package: x\nConffiles:\n\t/etc/a " + a + "\n", []Conffile{{"/etc/a", a, false}}},
		{"field name case", "Package: x\nconffiles:\n /etc/a " + a + "\n", []Conffile{{"/etc/a", a, false}}},
		{"value on the first line", "Package: x\nConffiles: /etc/a " + a + "\n", []Conffile{{"/etc/a", a, false}}},
		{"malformed stanza", " continuation first\nConffiles:\n /etc/a " + a + "\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseConffiles(tt.stanza); !slices.Equal(got, tt.want) {
				t.Errorf("parseConffiles = %+v, want %+v", got, tt.want)
			}
		})
	}
	// The real nginx-common stanza.
	got := parseConffiles(stanzaOf(t, realStatusNginx, "nginx-common"))
	if len(got) != 17 || got[0] != (Conffile{"/etc/default/nginx", "596fbc1f5712caaa02e8c799a4e2a01f", false}) ||
		got[16] != (Conffile{"/etc/ufw/applications.d/nginx", "3e24def79cf627acc2ab1b1bdfbc645c", false}) {
		t.Errorf("parseConffiles(nginx-common) = %+v", got)
	}
}

func TestParseMD5sums(t *testing.T) {
	h1, h2 := "b0bca1f87f9bfc8e6eb8c040c35365b2", "d48e89dce3415f9b95a28346d3a0bf62"
	tests := []struct {
		name, in string
		want     map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"two spaces", h1 + "  usr/lib/x/afalg.so\n", map[string]string{"usr/lib/x/afalg.so": h1}},
		{"binary marker", h1 + " *usr/bin/x\n", map[string]string{"usr/bin/x": h1}},
		{"single space", h1 + " usr/bin/x", map[string]string{"usr/bin/x": h1}},
		{"leading slash", h1 + "  /etc/x\n", map[string]string{"etc/x": h1}},
		{"CRLF", h1 + "  a\r\n" + h2 + "  b\r\n", map[string]string{"a": h1, "b": h2}},
		{"space in path", h1 + "  usr/share/doc/a b.txt\n", map[string]string{"usr/share/doc/a b.txt": h1}},
		{"later line wins", h1 + "  a\n" + h2 + "  a\n", map[string]string{"a": h2}},
		{"junk", "junk\n\n" + "short  a\n" + h1 + "\n" + h1 + "  \n" + h1 + "x  toolong\n" + h2 + "  ok\n",
			map[string]string{"ok": h2}},
		{"no final newline", h1 + "  a", map[string]string{"a": h1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseMD5sums([]byte(tt.in))
			if len(got) != len(tt.want) {
				t.Fatalf("parseMD5sums = %q, want %q", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("parseMD5sums = %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestInfoName(t *testing.T) {
	for _, tt := range []struct{ name, arch, ma, want string }{
		{"libssl3", "amd64", "same", "libssl3:amd64"},
		{"libc6", "i386", "same", "libc6:i386"},
		{"openssl", "amd64", "foreign", "openssl"},
		{"python3", "amd64", "allowed", "python3"},
		{"tzdata", "all", "", "tzdata"},
		{"x", "amd64", "Same", "x"}, // dpkg's value is lower case
	} {
		if got := InfoName(tt.name, tt.arch, tt.ma); got != tt.want {
			t.Errorf("InfoName(%q, %q, %q) = %q, want %q", tt.name, tt.arch, tt.ma, got, tt.want)
		}
	}
}

func TestReadOptional(t *testing.T) {
	fsys := apttest.MemFS{Files: map[string]string{"a": "x"}}
	if data, err := ReadOptional(fsys, "a"); err != nil || string(data) != "x" {
		t.Errorf("ReadOptional(a) = %q, %v", data, err)
	}
	if data, err := ReadOptional(fsys, "missing"); err != nil || data != nil {
		t.Errorf("ReadOptional(missing) = %q, %v", data, err)
	}
}

// FuzzParseStanza checks that parseStanza never panics and that the
// fields it returns write back (as statusStanza's writeField does) to a
// stanza that parses to the same fields.
func FuzzParseStanza(f *testing.F) {
	for _, s := range []string{
		realControlNginxCommon, realControlLibssl3, realDistrolessLibssl3, realStatusLibssl3,
		"Package: a", "A:\n b", "# c\nA: 1", " x", "A: 1\n\nB: 2", "no colon", "A B: c", ":", "A:\t\tb\n\tc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := parseStanza(s)
		if err != nil {
			return
		}
		if len(fields) == 0 {
			t.Fatal("no fields and no error")
		}
		var b strings.Builder
		for _, fl := range fields {
			if fl.name == "" || strings.ContainsAny(fl.name, " \t\n:") {
				t.Fatalf("bad field name %q", fl.name)
			}
			writeField(&b, fl)
		}
		again, err := parseStanza(b.String())
		if err != nil {
			t.Fatalf("written stanza %q does not parse: %v", b.String(), err)
		}
		if !slices.Equal(again, fields) {
			t.Fatalf("re-parse of %q: %q, want %q", b.String(), again, fields)
		}
	})
}

// FuzzParseStatusFile checks that parseStatusFile never panics and that a
// parsed file written back parses to the same stanzas.
func FuzzParseStatusFile(f *testing.F) {
	for _, s := range []string{
		realStatusNginx, realStatusLibssl3 + "\n" + realStatusNginx, "", "\n\n", "Package: a\r\n\r\nPackage: b\r\n",
		"Package: a\n\n\n\nPackage: b", "# x\n", "Package: b\nArchitecture: i386\n\nPackage: b\nArchitecture: amd64\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := parseStatusFile(data)
		if err != nil {
			return
		}
		for _, sorted := range []bool{false, true} {
			out := sf.bytes(sorted)
			again, err := parseStatusFile(out)
			if err != nil {
				t.Fatalf("bytes(%v) = %q does not parse: %v", sorted, out, err)
			}
			want := slices.Clone(sf.stanzas)
			if sorted {
				slices.SortStableFunc(want, func(a, b statusEntry) int {
					return strings.Compare(a.name+"\x00"+a.arch, b.name+"\x00"+b.arch)
				})
				if !again.isSorted() {
					t.Fatalf("bytes(true) is not sorted: %q", out)
				}
			}
			if !slices.Equal(again.stanzas, want) {
				t.Fatalf("bytes(%v) re-parses to\n%q\nwant\n%q", sorted, again.stanzas, want)
			}
			if !bytes.Equal(again.bytes(sorted), out) {
				t.Fatalf("bytes(%v) is not stable", sorted)
			}
		}
	})
}

// FuzzParseMD5sums checks that parseMD5sums never panics and returns only
// 32-character sums and relative, non-empty paths.
func FuzzParseMD5sums(f *testing.F) {
	h := "b0bca1f87f9bfc8e6eb8c040c35365b2"
	for _, s := range []string{"", h + "  a", h + " *b\r\n", h + "  /c\n" + h + "  d", "junk\n", h, h + "  ", h + "  *"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for p, sum := range parseMD5sums(data) {
			if len(sum) != 32 || p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\n") {
				t.Fatalf("parseMD5sums(%q): entry %q -> %q", data, p, sum)
			}
		}
	})
}

// TestRegression_ParseMD5sumsRootPath: a line whose path is "/" (or "//x") keeps
// an empty (or absolute) key after parseMD5sums trims one leading slash:
// "<md5> /" gives the entry "" -> md5. Callers treat keys as relative
// paths of files (the distroless file list, ownership lookups). Want no
// entry for "/" and "x" for "//x".
func TestRegression_ParseMD5sumsRootPath(t *testing.T) {
	h := strings.Repeat("0", 32)
	got := parseMD5sums([]byte(h + " /\n" + h + "  //x\n"))
	if _, ok := got[""]; ok {
		t.Errorf("parseMD5sums(%q) has an empty path: %q", h+" /", got)
	}
	if _, ok := got["/x"]; ok {
		t.Errorf("parseMD5sums(%q) has an absolute path: %q", h+"  //x", got)
	}
}
