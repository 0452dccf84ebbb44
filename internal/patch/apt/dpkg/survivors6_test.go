package dpkg

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/testenv"
)

// Tests added for the mutants of the sixth `make mutate` pass
// (test/mutation/SURVIVORS.md); each fails on its mutant, planted by hand.

// upgradeLikeDpkg installs from with dpkg into a fresh root, lets edit
// change that root (the admin's hand), then upgrades it to to once with
// `dpkg --force-confold -i` and once with the Unpacker, and requires the
// same filesystem. It returns the Unpacker's report.
func upgradeLikeDpkg(t *testing.T, from, to refPackage, edit func(root string)) *Installed {
	t.Helper()
	testenv.RequireRoot(t, "dpkg --root installs files owned by root")
	testenv.RequireTool(t, "dpkg", "dpkg")
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	debFrom, debTo := from.build(t, dir), to.build(t, dir)
	base := dpkgRoot(t)
	dpkgRun(t, "dpkg", "--root="+base, "-i", debFrom)
	edit(base)
	baseImg := treeImage(t, base)
	ref := filepath.Join(t.TempDir(), "ref")
	dpkgRun(t, "cp", "-a", base, ref)
	dpkgRun(t, "dpkg", "--root="+ref, "--force-confold", "-i", debTo)
	want := describeDir(t, ref)

	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	u, err := NewUnpacker(openImage(t, baseImg), "amd64", cs, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	res, err := u.Install(t.Context(), Install{Name: to.name, Version: to.version, From: from.version, Deb: debTo})
	if err != nil {
		t.Fatal(err)
	}
	pfs := finishedImage(t, u, cs, baseImg)
	// A layer's hard link points to a file of the same layer.
	for _, e := range cs.Entries() {
		if tgt := cs.Get(e.Linkname); e.Kind == layer.Hardlink && (tgt == nil || tgt.Kind != layer.File) {
			t.Errorf("hard link %s -> %s: the target is not a file of the layer (%v)", e.Path, e.Linkname, tgt)
		}
	}
	compareTrees(t, "dpkg", want, describeImage(t, pfs))
	return res
}

// TestUnpackConffileCasesMatchDpkg: the conffile cases
// TestUnpackMatchesDpkg does not take, each against dpkg itself: a
// conffile the admin deleted stays deleted (dpkg needs --force-confmiss
// to bring it back), one the image has exactly as the new version ships
// it is left alone, one new in this version is installed, and a new
// conffile over a file the image already has keeps the image's file with
// the package's beside it as .dpkg-dist.
func TestUnpackConffileCasesMatchDpkg(t *testing.T) {
	v1 := refPackage{name: "ddconf", version: "1.0-1", files: map[string]string{
		"etc/ddconf/deleted.conf":      "package v1\n",
		"etc/ddconf/deleted-same.conf": "the same in both\n",
		"etc/ddconf/same.conf":         "the same in both\n",
		"etc/ddconf/edited.conf":       "package v1\n",
		"usr/share/ddconf/file":        "v1\n",
	}, conffiles: []string{"/etc/ddconf/deleted.conf", "/etc/ddconf/deleted-same.conf", "/etc/ddconf/same.conf", "/etc/ddconf/edited.conf"}}
	v2 := refPackage{name: "ddconf", version: "2.0-1", files: map[string]string{
		"etc/ddconf/deleted.conf":      "package v2\n",
		"etc/ddconf/deleted-same.conf": "the same in both\n",
		"etc/ddconf/same.conf":         "the same in both\n",
		"etc/ddconf/edited.conf":       "edited as v2 ships it\n",
		"etc/ddconf/new.conf":          "new in v2\n",
		"etc/ddconf/present.conf":      "new in v2, the image has one\n",
		"usr/share/ddconf/file":        "v2\n",
	}, conffiles: []string{"/etc/ddconf/deleted.conf", "/etc/ddconf/deleted-same.conf", "/etc/ddconf/same.conf", "/etc/ddconf/edited.conf",
		"/etc/ddconf/new.conf", "/etc/ddconf/present.conf"}}
	res := upgradeLikeDpkg(t, v1, v2, func(root string) {
		for _, f := range []string{"etc/ddconf/deleted.conf", "etc/ddconf/deleted-same.conf"} {
			if err := os.Remove(filepath.Join(root, f)); err != nil {
				t.Fatal(err)
			}
		}
		for f, data := range map[string]string{"etc/ddconf/edited.conf": "edited as v2 ships it\n", "etc/ddconf/present.conf": "the admin's\n"} {
			if err := os.WriteFile(filepath.Join(root, f), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	want := map[string]string{
		"/etc/ddconf/deleted.conf":      "kept-deleted",
		"/etc/ddconf/deleted-same.conf": "kept-deleted",
		"/etc/ddconf/same.conf":         "unchanged",
		"/etc/ddconf/edited.conf":       "unchanged",
		"/etc/ddconf/new.conf":          "new",
		"/etc/ddconf/present.conf":      "kept-modified",
	}
	for c, a := range want {
		if res.Conffiles[c] != a {
			t.Errorf("conffile %s: %q, want %q", c, res.Conffiles[c], a)
		}
	}
	if len(res.Conffiles) != len(want) {
		t.Errorf("conffiles reported: %v", res.Conffiles)
	}
}
