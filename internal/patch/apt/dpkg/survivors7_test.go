package dpkg

import (
	"crypto/md5"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/testenv"
)

// Tests added for the mutants of the seventh `make mutate` pass
// (test/mutation/SURVIVORS.md); each fails on its mutant, planted by hand.

// md5sumsOf is a package's md5sums control member for files, as
// dh_md5sums writes it.
func md5sumsOf(files map[string]string) string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(&b, "%x  %s\n", md5.Sum([]byte(files[p])), p)
	}
	return b.String()
}

// distrolessRoot extracts debs into a new root and records each package
// in var/lib/dpkg/status.d as distroless images do (and the distroless
// test image's builder): its control file with a Status after Package,
// and its md5sums.
func distrolessRoot(t *testing.T, debs ...string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(root, DpkgStatusD), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, deb := range debs {
		dpkgRun(t, "dpkg-deb", "--extract", deb, root)
		control := dpkgRun(t, "dpkg-deb", "--info", deb, "control")
		head, rest, ok := strings.Cut(control, "\n")
		name, isPkg := strings.CutPrefix(head, "Package: ")
		if !ok || !isPkg {
			t.Fatalf("%s: control starts with %q", deb, head)
		}
		stanza := head + "\nStatus: install ok installed\n" + rest
		sums := dpkgRun(t, "dpkg-deb", "--info", deb, "md5sums")
		for f, data := range map[string]string{name: stanza, name + ".md5sums": sums} {
			if err := os.WriteFile(filepath.Join(root, DpkgStatusD, f), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// TestUnpackDistroless upgrades a package of a distroless image (no
// status file: a stanza and an md5sums file per package in status.d),
// and requires the image the distroless way of building gives with the
// new version: the dropped file whited out, unless another package's
// md5sums list it; the changed and new files; status.d's stanza and
// md5sums of the new version. The report counts the files shipped,
// changed and removed. A package status.d lacks, and an image with
// neither status nor status.d, are errors. (The ^TestUnpack tests took
// none of the distroless branches: `make mutate` listed them as not
// covered.)
func TestUnpackDistroless(t *testing.T) {
	testenv.RequireRoot(t, "dpkg-deb --extract keeps root's owners")
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	v1files := map[string]string{
		"usr/share/ddless/kept":    "the same in both\n",
		"usr/share/ddless/changed": "v1\n",
		"usr/share/ddless/dropped": "only in v1\n",
		"usr/share/ddless/shared":  "shared with ddother\n",
	}
	v2files := map[string]string{
		"usr/share/ddless/kept":    "the same in both\n",
		"usr/share/ddless/changed": "v2, longer\n",
		"usr/share/ddless/added":   "new in v2\n",
	}
	otherFiles := map[string]string{
		"usr/share/ddless/shared": "shared with ddother\n",
		"usr/share/ddother/own":   "ddother's\n",
	}
	v1 := refPackage{name: "ddless", version: "1.0-1", files: v1files, control: map[string]string{"md5sums": md5sumsOf(v1files)}}
	v2 := refPackage{name: "ddless", version: "2.0-1", files: v2files, control: map[string]string{"md5sums": md5sumsOf(v2files)}}
	other := refPackage{name: "ddother", version: "1.0-1", files: otherFiles, control: map[string]string{"md5sums": md5sumsOf(otherFiles)}}
	deb1, deb2, debOther := v1.build(t, dir), v2.build(t, dir), other.build(t, dir)

	baseImg := treeImage(t, distrolessRoot(t, debOther, deb1))
	want := describeDir(t, distrolessRoot(t, debOther, deb2))

	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	u, err := NewUnpacker(openImage(t, baseImg), "amd64", cs, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !u.Distroless() {
		t.Fatal("an image with status.d only is not distroless")
	}
	if _, err := u.Install(t.Context(), Install{Name: "ddmissing", Version: v2.version, From: "1.0-1", Deb: deb2}); err == nil ||
		!strings.Contains(err.Error(), "ddmissing is not in "+DpkgStatusD) {
		t.Errorf("upgrading a package status.d lacks: %v", err)
	}
	res, err := u.Install(t.Context(), Install{Name: "ddless", Version: v2.version, From: v1.version, Deb: deb2})
	if err != nil {
		t.Fatal(err)
	}
	compareTrees(t, "the distroless build", want, describeImage(t, finishedImage(t, u, cs, baseImg)))
	// kept is the image's already; changed and added go into the layer;
	// dropped is whited out (shared stays: ddother lists it).
	if res.Files != 3 || res.Changed != 2 || res.Removed != 1 {
		t.Errorf("Files, Changed, Removed = %d, %d, %d; want 3, 2, 1", res.Files, res.Changed, res.Removed)
	}

	// Neither a status file nor status.d: not a dpkg-based image.
	bare := filepath.Join(t.TempDir(), "bare")
	if err := os.MkdirAll(filepath.Join(bare, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := NewUnpacker(openImage(t, treeImage(t, bare)), "amd64", cs, time.Unix(0, 0)); err == nil ||
		!strings.Contains(err.Error(), "not a dpkg-based image") {
		t.Errorf("an image without a dpkg database: %v", err)
	}
}

// TestUnpackMultiArchSameMatchesDpkg upgrades a Multi-Arch: same package
// (its info files are NAME:ARCH.*) that drops a file, against dpkg
// itself: the file goes, though the owner the info files name
// (ddma:amd64) is not the package's name. Mutant: `o != st.old.infoName`
// -> `==` in removeOld's owner rule (the file kept as another's).
func TestUnpackMultiArchSameMatchesDpkg(t *testing.T) {
	v1 := refPackage{name: "ddma", version: "1.0-1", arch: "amd64", multiArch: "same", files: map[string]string{
		"usr/share/ddma/kept":    "in both\n",
		"usr/share/ddma/dropped": "only in v1\n",
	}}
	v2 := refPackage{name: "ddma", version: "2.0-1", arch: "amd64", multiArch: "same", files: map[string]string{
		"usr/share/ddma/kept": "in both\n",
	}}
	res := upgradeLikeDpkg(t, v1, v2, func(string) {})
	if res.Removed != 1 {
		t.Errorf("Removed = %d, want 1 (dropped)", res.Removed)
	}
}

// TestUnpackInfoFilesMatchDpkg: on an upgrade, the installed version's
// info files the new one lacks (here a shlibs) are removed, and another
// package's whose name starts with this one's and a dot (ddinfo.doc's
// for ddinfo) are left alone, as dpkg does. Mutants: `st.old != nil`
// negated before the stale info files' whiteouts, `suffix != "list"`
// negated in their filter.
func TestUnpackInfoFilesMatchDpkg(t *testing.T) {
	v1 := refPackage{name: "ddinfo", version: "1.0-1", files: map[string]string{"usr/share/ddinfo/f": "v1\n"},
		control: map[string]string{"shlibs": "libddinfo 1 ddinfo (>= 1.0-1)\n"}}
	v2 := refPackage{name: "ddinfo", version: "2.0-1", files: map[string]string{"usr/share/ddinfo/f": "v2\n"}}
	doc := refPackage{name: "ddinfo.doc", version: "1.0-1", files: map[string]string{"usr/share/doc/ddinfo.doc/README": "doc\n"},
		control: map[string]string{"md5sums": md5sumsOf(map[string]string{"usr/share/doc/ddinfo.doc/README": "doc\n"})}}
	upgradeLikeDpkg(t, v1, v2, func(root string) {
		dpkgRun(t, "dpkg", "--root="+root, "-i", doc.build(t, t.TempDir()))
	})
}

// TestUnpackHardLinkKeepsItsTarget: a new version ships a hard link to a
// file the image already has unchanged. dpkg links them; in the layer
// the link needs its target beside it, so the unchanged file stays in
// the layer (upgradeLikeDpkg checks every hard link's target). Mutant:
// `e.Kind == layer.Hardlink` negated in dropUnchanged (the link's target
// dropped as unchanged).
func TestUnpackHardLinkKeepsItsTarget(t *testing.T) {
	v1 := refPackage{name: "ddhl", version: "1.0-1", files: map[string]string{"usr/share/ddhl/a": "linked in v2\n"}}
	v2 := refPackage{name: "ddhl", version: "2.0-1", files: map[string]string{"usr/share/ddhl/a": "linked in v2\n"},
		links: map[string]string{"usr/share/ddhl/b": "usr/share/ddhl/a"}}
	res := upgradeLikeDpkg(t, v1, v2, func(string) {})
	if res.Files != 2 || res.Changed != 1 {
		t.Errorf("Files, Changed = %d, %d; want 2, 1 (a kept for the link b)", res.Files, res.Changed)
	}
}

// TestUnpackStatusModeMatchesDpkg: dpkg writes its status file 0644
// whatever mode the image gave it (seventh pass: the mode of the status
// Finish writes, unpackfinish.go, was not pinned by any test).
func TestUnpackStatusModeMatchesDpkg(t *testing.T) {
	v1 := refPackage{name: "ddmode", version: "1.0-1", files: map[string]string{"usr/share/ddmode/file": "v1\n"}}
	v2 := refPackage{name: "ddmode", version: "2.0-1", files: map[string]string{"usr/share/ddmode/file": "v2\n"}}
	upgradeLikeDpkg(t, v1, v2, func(root string) {
		if err := os.Chmod(filepath.Join(root, DpkgStatus), 0o600); err != nil {
			t.Fatal(err)
		}
	})
}
