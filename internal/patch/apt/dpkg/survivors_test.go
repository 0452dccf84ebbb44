package dpkg

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/testenv"
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

// TestUnpackHandsOnScripts checks what an upgrade hands the maintainer
// script runner: the installed version's scripts as dpkg keeps them under
// info/ (OldScripts: its prerm and postrm run during the upgrade), and the
// new version's control members but control and md5sums (Control: its
// preinst, postinst, triggers). Mutants: `data != nil` negated in readOld,
// `old != nil` negated in Install, and either comparison of the control
// member filter in the control callback.
func TestUnpackHandsOnScripts(t *testing.T) {
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	v2 := refPackage{name: "ddscripts", version: "2.0-1",
		files: map[string]string{"usr/share/ddscripts/file": "v2\n"},
		control: map[string]string{
			"preinst":  "#!/bin/sh\necho new preinst\n",
			"postinst": "#!/bin/sh\necho new postinst\n",
			"triggers": "interest-noawait /usr/share/ddscripts\n",
			"md5sums":  "0123456789abcdef0123456789abcdef  usr/share/ddscripts/file\n",
		}}
	deb2 := v2.build(t, dir)

	// Version 1 as an image holds it: its status entry and its info files,
	// with a prerm and a postrm but no preinst.
	root := dpkgRoot(t)
	status := "Package: ddscripts\nStatus: install ok installed\nPriority: optional\nSection: misc\nInstalled-Size: 1\n" +
		"Maintainer: drydock tests <tests@example.invalid>\nArchitecture: all\nVersion: 1.0-1\nDescription: dpkg comparison package\n a package built by the test\n"
	oldScripts := map[string]string{
		"prerm":  "#!/bin/sh\necho old prerm\n",
		"postrm": "#!/bin/sh\necho old postrm\n",
	}
	files := map[string]string{
		DpkgStatus:                           status,
		"var/lib/dpkg/info/ddscripts.list":   "/.\n/usr\n/usr/share\n/usr/share/ddscripts\n/usr/share/ddscripts/file\n",
		"usr/share/ddscripts/file":           "v1\n",
		"var/lib/dpkg/info/ddscripts.prerm":  oldScripts["prerm"],
		"var/lib/dpkg/info/ddscripts.postrm": oldScripts["postrm"],
	}
	for rel, data := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fsys := openImage(t, treeImage(t, root))

	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	u, err := NewUnpacker(fsys, "amd64", cs, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	res, err := u.Install(t.Context(), Install{Name: "ddscripts", Version: v2.version, From: "1.0-1", Deb: deb2})
	if err != nil {
		t.Fatal(err)
	}
	gotOld := map[string]string{}
	for k, v := range res.OldScripts {
		gotOld[k] = string(v)
	}
	if !maps.Equal(gotOld, oldScripts) {
		t.Errorf("OldScripts = %q, want %q", gotOld, oldScripts)
	}
	gotControl := map[string]string{}
	for k, v := range res.Control {
		gotControl[k] = string(v)
	}
	wantControl := map[string]string{
		"preinst":  v2.control["preinst"],
		"postinst": v2.control["postinst"],
		"triggers": v2.control["triggers"],
	}
	if !maps.Equal(gotControl, wantControl) {
		t.Errorf("Control = %q, want %q (never control or md5sums)", gotControl, wantControl)
	}

	// A fresh install (no From) has no old scripts.
	fresh := refPackage{name: "ddfresh", version: "1.0-1", files: map[string]string{"usr/share/ddfresh/f": "x\n"},
		control: map[string]string{"postinst": "#!/bin/sh\nexit 0\n"}}
	res, err = u.Install(t.Context(), Install{Name: "ddfresh", Version: fresh.version, Deb: fresh.build(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	if res.OldScripts != nil {
		t.Errorf("fresh install: OldScripts = %q, want none", res.OldScripts)
	}
	if string(res.Control["postinst"]) != fresh.control["postinst"] {
		t.Errorf("fresh install: Control = %q", res.Control)
	}
}
