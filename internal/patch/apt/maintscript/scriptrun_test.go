package maintscript

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/patch/apt/dpkg"
	"github.com/drydock-project/drydock/internal/patch/layer"
)

func newChangeset(t *testing.T) *layer.Changeset {
	t.Helper()
	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

var testMtime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func addFile(t *testing.T, cs *layer.Changeset, p string) {
	t.Helper()
	if _, err := cs.AddBytes(p, 0o644, 0, 0, testMtime, []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestLibraryNamesChanged(t *testing.T) {
	img := apttest.MemFS{Files: map[string]string{
		"usr/lib/x86_64-linux-gnu/libssl.so.3":    "old",
		"usr/lib/x86_64-linux-gnu/libcrypto.so.3": "old",
		"usr/lib/x86_64-linux-gnu/libold.so.1":    "old",
		"lib/x86_64-linux-gnu/libz.so.1":          "old",
		"usr/lib/libfoo.so":                       "old",
	}}
	cs := newChangeset(t)
	// Replaced in place: no name change.
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libssl.so.3")
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libcrypto.so.3")
	addFile(t, cs, "usr/lib/libfoo.so")
	// Added.
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libnew.so.2")
	if err := cs.AddSymlink("usr/lib/x86_64-linux-gnu/libnew.so", "libnew.so.2", 0, 0, testMtime); err != nil {
		t.Fatal(err)
	}
	addFile(t, cs, "usr/local/lib64/libloc.so.0")
	addFile(t, cs, "lib32/libthirtytwo.so.6")
	if err := cs.AddHardlink("usr/lib/aarch64-linux-gnu/libhl.so.1", "usr/lib/x86_64-linux-gnu/libnew.so.2"); err != nil {
		t.Fatal(err)
	}
	// Removed.
	if err := cs.AddWhiteout("usr/lib/x86_64-linux-gnu/libold.so.1", testMtime); err != nil {
		t.Fatal(err)
	}
	// Not in a library directory, or not a library, or a directory.
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/engines-3/afalg.so")
	addFile(t, cs, "usr/share/doc/libssl3/libnew.so.txt-not-in-libdir")
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/pkgconfig.pc")
	addFile(t, cs, "usr/libexec/libx.so.1")
	addFile(t, cs, "opt/lib/liby.so.1")
	if err := cs.AddDir("usr/lib/x86_64-linux-gnu/libdir.so.d", 0o755, 0, 0, testMtime); err != nil {
		t.Fatal(err)
	}
	if err := cs.AddWhiteout("etc/libgone.so.conf", testMtime); err != nil {
		t.Fatal(err)
	}
	got := libraryNamesChanged(Input{FS: img, Changes: cs})
	want := []string{
		"+lib32/libthirtytwo.so.6",
		"+usr/lib/aarch64-linux-gnu/libhl.so.1",
		"+usr/lib/x86_64-linux-gnu/libnew.so",
		"+usr/lib/x86_64-linux-gnu/libnew.so.2",
		"-usr/lib/x86_64-linux-gnu/libold.so.1",
		"+usr/local/lib64/libloc.so.0",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("libraryNamesChanged:\n got %q\nwant %q", got, want)
	}
	// Nothing changed in library names.
	cs2 := newChangeset(t)
	addFile(t, cs2, "usr/lib/x86_64-linux-gnu/libssl.so.3")
	if got := libraryNamesChanged(Input{FS: img, Changes: cs2}); len(got) != 0 {
		t.Errorf("libraryNamesChanged(replacement only) = %q", got)
	}
}

func TestDpkgRuns(t *testing.T) {
	p := &dpkg.Installed{Name: "a", From: "1", To: "2",
		Control:    map[string][]byte{"preinst": []byte("pre"), "postinst": []byte("post")},
		OldScripts: map[string][]byte{"prerm": []byte("oldprerm")}}
	var got []string
	for _, r := range dpkgRuns(p) {
		got = append(got, fmt.Sprintf("%s[%s]%q/%d", r.name, strings.Join(r.args, " "), r.body, r.phase))
	}
	want := []string{`prerm (old)[upgrade 2]"oldprerm"/0`, `preinst[upgrade 1]"pre"/0`, `postrm (old)[upgrade 2]""/0`, `postinst[configure 1]"post"/1`}
	if !slices.Equal(got, want) {
		t.Errorf("upgrade runs %q, want %q", got, want)
	}
	p.From = ""
	got = nil
	for _, r := range dpkgRuns(p) {
		got = append(got, fmt.Sprintf("%s[%s]/%d", r.name, strings.Join(r.args, " "), r.phase))
	}
	if want := []string{"preinst[install]/0", "postinst[configure]/1"}; !slices.Equal(got, want) {
		t.Errorf("install runs %q, want %q", got, want)
	}
}

func actionsOf(as []ScriptAction) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Package+"|"+a.Script+"|"+a.Action)
	}
	return out
}

func TestRunScriptsAllHandled(t *testing.T) {
	img := apttest.MemFS{Files: map[string]string{
		"usr/lib/x86_64-linux-gnu/libssl.so.3": "old",
		"var/lib/dpkg/triggers/File":           "/usr/share/man man-db/noawait\n/usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0/2.10.0/loaders libgdk-pixbuf-2.0-0:amd64/noawait\n",
	}}
	cs := newChangeset(t)
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libssl.so.3")
	addFile(t, cs, "etc/nginx/nginx.conf")
	installed := []*dpkg.Installed{
		{Name: "libssl3", Arch: "amd64", From: "3.0.20-1~deb12u2", To: "3.0.22-1~deb12u2",
			Control: map[string][]byte{"triggers": []byte(scLibssl3Triggers)}},
		{Name: "nginx-common", Arch: "all", From: "1.22.1-9+deb12u9", To: "1.22.1-9+deb12u11",
			Control: map[string][]byte{
				"postinst": []byte("#!/bin/sh\nset -e\n" + scDhInstallinitPostinst + scDhInstallsystemdPostinst + "\n\nexit 0\n"),
				"preinst":  []byte("#!/bin/sh\nset -e\n\nexit 0\n"),
				"config":   []byte("#!/bin/sh\ndb_input high nginx/x\n"), // not run by dpkg on upgrade
			},
			OldScripts: map[string][]byte{"prerm": []byte(scNginxCommonPrerm), "postrm": []byte(scDhInstalldebconfPostrm)}},
		{Name: "perl-base", Arch: "amd64", From: "5.36.0-7+deb12u3", To: "5.36.0-7+deb12u4",
			Control:    map[string][]byte{"postinst": []byte(scPerlBasePostinst), "preinst": []byte(scPerlBasePostinst)},
			OldScripts: map[string][]byte{"prerm": []byte(scPerlBasePostinst), "postrm": []byte(scPerlBasePostinst)}},
	}
	done, err := Run(context.Background(), Input{FS: img, Arch: "amd64", Changes: cs, Installed: installed, Mtime: testMtime})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{
		"nginx-common|prerm (old)|no-op",
		"nginx-common|preinst|no-op",
		"nginx-common|postrm (old)|no-op",
		"nginx-common|postinst|no-op",
		"perl-base|prerm (old)|no-op",
		"perl-base|preinst|no-op",
		"perl-base|postrm (old)|no-op",
		"perl-base|postinst|no-op",
		"libssl3|trigger ldconfig|native",
	}
	if got := actionsOf(done); !slices.Equal(got, want) {
		t.Errorf("Run actions:\n got %q\nwant %q", got, want)
	}
	if cs.Len() != 2 {
		t.Errorf("Run changed the changeset: %d entries", cs.Len())
	}
}

func TestRunScriptsUnhandled(t *testing.T) {
	img := apttest.MemFS{Files: map[string]string{
		"usr/lib/x86_64-linux-gnu/libssl.so.3": "old",
		"var/lib/dpkg/triggers/File":           "/usr/share/man man-db/noawait\n/usr/share/doc other\nbogus line here\nrelative pkg\n",
	}}
	cs := newChangeset(t)
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libssl.so.4")
	addFile(t, cs, "usr/share/man/man1/openssl.1ssl.gz")
	installed := []*dpkg.Installed{
		{Name: "libssl3", Arch: "amd64", From: "3.0.20-1~deb12u2", To: "3.0.22-1~deb12u2",
			Control: map[string][]byte{"triggers": []byte(scLibssl3Triggers)}},
		{Name: "openssl", Arch: "amd64", From: "3.0.20-1~deb12u2", To: "3.0.22-1~deb12u2",
			Control: map[string][]byte{"postinst": []byte(scOpensslPostinst)}},
		{Name: "newpkg", Arch: "amd64", To: "1.0",
			Control: map[string][]byte{"preinst": []byte(scAptMaintscript), "postinst": []byte("#!/bin/sh\nupdate-alternatives --install x\n"), "triggers": []byte("activate my-trigger\n")},
			// Old scripts of a new package are never run.
			OldScripts: map[string][]byte{"prerm": []byte("rm -rf /\n")}},
	}
	done, err := Run(context.Background(), Input{FS: img, Arch: "amd64", Changes: cs, Installed: installed, Mtime: testMtime})
	if !errors.Is(err, ErrScripts) {
		t.Fatalf("Run error %v, want ErrScripts", err)
	}
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("error %T is not a *ScriptError", err)
	}
	if got, want := actionsOf(done), []string{"newpkg|preinst|no-op"}; !slices.Equal(got, want) {
		t.Errorf("done %q, want %q", got, want)
	}
	var got []string
	for _, a := range se.Unhandled {
		got = append(got, a.Package+"|"+a.Script)
	}
	want := []string{
		"openssl|postinst",
		"newpkg|postinst",
		"man-db|trigger /usr/share/man",
		"libssl3|trigger ldconfig",
		"newpkg|trigger my-trigger",
	}
	if !slices.Equal(got, want) {
		t.Errorf("unhandled:\n got %q\nwant %q", got, want)
	}
	msg := err.Error()
	for _, s := range []string{
		"openssl postinst: ",
		"newpkg postinst: ",
		"update-alternatives --install x",
		"man-db trigger /usr/share/man: trigger processing is not handled natively",
		"libssl3 trigger ldconfig: the patch adds or removes libraries (+usr/lib/x86_64-linux-gnu/libssl.so.4)",
		"newpkg trigger my-trigger",
		"--sandbox",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error message lacks %q:\n%s", s, msg)
		}
	}
}

func TestRunScriptsTriggerFromSeveralPackages(t *testing.T) {
	cs := newChangeset(t)
	installed := []*dpkg.Installed{
		{Name: "libb", From: "1", To: "2", Control: map[string][]byte{"triggers": []byte("activate-noawait ldconfig\n")}},
		{Name: "liba", From: "1", To: "2", Control: map[string][]byte{"triggers": []byte("activate-noawait ldconfig\n")}},
	}
	done, err := Run(context.Background(), Input{FS: apttest.MemFS{}, Changes: cs, Installed: installed})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := actionsOf(done), []string{"libb, liba|trigger ldconfig|native"}; !slices.Equal(got, want) {
		t.Errorf("done %q, want %q", got, want)
	}
}

func TestRunScriptsDistroless(t *testing.T) {
	cs := newChangeset(t)
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libnew.so.9") // would need ldconfig
	installed := []*dpkg.Installed{
		{Name: "openssl", From: "1", To: "2", Control: map[string][]byte{"postinst": []byte(scOpensslPostinst), "config": []byte("x"), "triggers": []byte(scLibssl3Triggers)}},
		{Name: "tzdata", From: "1", To: "2", Control: map[string][]byte{"preinst": []byte("x"), "postinst": []byte("x"), "prerm": []byte("x"), "postrm": []byte("x")}},
	}
	done, err := Run(context.Background(), Input{FS: apttest.MemFS{}, Changes: cs, Installed: installed, Distroless: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"openssl|postinst|skipped-distroless",
		"tzdata|preinst|skipped-distroless",
		"tzdata|postinst|skipped-distroless",
		"tzdata|prerm|skipped-distroless",
		"tzdata|postrm|skipped-distroless",
	}
	if got := actionsOf(done); !slices.Equal(got, want) {
		t.Errorf("done %q, want %q", got, want)
	}
}

func TestRunScriptsNothing(t *testing.T) {
	done, err := Run(context.Background(), Input{FS: apttest.MemFS{}, Changes: newChangeset(t)})
	if err != nil || len(done) != 0 {
		t.Errorf("Run(nothing) = %v, %v", done, err)
	}
}

func TestRunScriptsCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	installed := []*dpkg.Installed{{Name: "a", From: "1", To: "2", Control: map[string][]byte{"postinst": []byte("x")}}}
	if _, err := Run(ctx, Input{FS: apttest.MemFS{}, Changes: newChangeset(t), Installed: installed}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run(canceled) error %v", err)
	}
}

func TestActivatedFileTriggers(t *testing.T) {
	img := apttest.MemFS{Files: map[string]string{"var/lib/dpkg/triggers/File": "" +
		"/usr/share/man man-db/noawait\n" +
		"/usr/lib/x86_64-linux-gnu/gio/modules libglib2.0-0:amd64/noawait\n" +
		"/usr/share/icons/hicolor hicolor-icon-theme\n" +
		"/etc/x y\n" +
		"/../usr/share/fonts fontconfig\n"}}
	cs := newChangeset(t)
	addFile(t, cs, "usr/share/man/man1/x.1.gz")
	addFile(t, cs, "usr/share/mansion") // not under /usr/share/man
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/gio/modules")
	addFile(t, cs, "usr/share/fonts/a.ttf")
	got, err := activatedFileTriggers(Input{FS: img, Changes: cs})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"/usr/share/man":                        {"man-db"},
		"/usr/lib/x86_64-linux-gnu/gio/modules": {"libglib2.0-0:amd64"},
		"/../usr/share/fonts":                   {"fontconfig"},
	}
	if len(got) != len(want) {
		t.Errorf("activatedFileTriggers = %q, want %q", got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("activatedFileTriggers[%q] = %q, want %q", k, got[k], v)
		}
	}
	// No triggers file.
	if got, err := activatedFileTriggers(Input{FS: apttest.MemFS{}, Changes: cs}); err != nil || got != nil {
		t.Errorf("activatedFileTriggers(no File) = %q, %v", got, err)
	}
}

func postRuns(specs ...string) []scriptRun {
	var out []scriptRun
	for _, s := range specs {
		name, deps, _ := strings.Cut(s, ":")
		p := &dpkg.Installed{Name: name}
		if deps != "" {
			p.Depends = strings.Split(deps, ",")
		}
		out = append(out, scriptRun{pkg: p, name: "preinst", phase: 0}, scriptRun{pkg: p, name: "postinst", phase: 1})
	}
	return out
}

func orderOf(runs []scriptRun) string {
	var names []string
	for _, r := range runs {
		if r.phase != 1 {
			return "phase-0 run " + r.pkg.Name
		}
		names = append(names, r.pkg.Name)
	}
	return strings.Join(names, " ")
}

func TestConfigureOrder(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  string
	}{
		{"empty", nil, ""},
		{"independent keep order", []string{"c", "a", "b"}, "c a b"},
		{"dependency first", []string{"a:b", "b"}, "b a"},
		{"chain", []string{"a:b", "b:c", "c"}, "c b a"},
		{"diamond", []string{"top:l,r", "l:base", "r:base", "base"}, "base l r top"},
		{"outside dependencies ignored", []string{"a:libc6,zlib1g", "b:a"}, "a b"},
		{"self dependency ignored", []string{"a:a", "b"}, "a b"},
		{"alternatives all count", []string{"nginx:nginx-common,libssl3", "libssl3:libc6", "nginx-common:debconf"}, "libssl3 nginx-common nginx"},
		{"two-cycle keeps order", []string{"a:b", "b:a"}, "a b"},
		{"two-cycle keeps order reversed", []string{"b:a", "a:b"}, "b a"},
		{"cycle after ready ones", []string{"x", "a:b", "b:a"}, "x a b"},
		{"three-cycle", []string{"a:b", "b:c", "c:a"}, "a c b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := orderOf(configureOrder(postRuns(tt.specs...))); got != tt.want {
				t.Errorf("configureOrder(%q) = %q, want %q", tt.specs, got, tt.want)
			}
		})
	}
}

// TestRegression_ConfigureOrderCycleFlushesAll: when configureOrder finds no
// ready package (a cycle), it appends every package not yet placed, in
// input order, instead of breaking the cycle and continuing. A package
// that merely depends on a cycle member, without being in the cycle, is
// then configured before its dependency, against the function's contract
// ("a package configures after the packages of the set it depends on").
// Input: c depends on a; a and b depend on each other; order c, a, b.
// Got "c a b"; want a and b (in either order) before c.
func TestRegression_ConfigureOrderCycleFlushesAll(t *testing.T) {
	got := orderOf(configureOrder(postRuns("c:a", "a:b", "b:a")))
	// A cycle member goes first; c (which needs only a) may follow a at
	// once.
	if got != "a b c" && got != "b a c" && got != "a c b" {
		t.Errorf("configureOrder(c:a, a:b, b:a) = %q, want a cycle member first and c after a", got)
	}
}
