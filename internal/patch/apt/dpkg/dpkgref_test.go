package dpkg

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/testenv"
)

// refPackage is one version of the small package the dpkg comparison
// builds with dpkg-deb: files by path (relative to /), conffiles by
// absolute path.
type refPackage struct {
	name, version string
	files         map[string]string
	conffiles     []string
	// control are extra control members (maintainer scripts, triggers,
	// md5sums) by name; scripts are written executable.
	control map[string]string
	// arch is the Architecture ("all" when empty); multiArch the
	// Multi-Arch field, if any.
	arch, multiArch string
	// links are hard links (path -> the file of files they link to).
	links map[string]string
}

// build writes the package with dpkg-deb into dir and returns its path.
func (p refPackage) build(t *testing.T, dir string) string {
	t.Helper()
	tree := filepath.Join(dir, p.name+"-"+p.version)
	write := func(rel, data string, mode os.FileMode) {
		f := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	arch, ma := p.arch, ""
	if arch == "" {
		arch = "all"
	}
	if p.multiArch != "" {
		ma = "Multi-Arch: " + p.multiArch + "\n"
	}
	write("DEBIAN/control", fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\n%sMaintainer: drydock tests <tests@example.invalid>\n"+
		"Installed-Size: 1\nSection: misc\nPriority: optional\nDescription: dpkg comparison package\n a package built by the test\n", p.name, p.version, arch, ma), 0o644)
	if len(p.conffiles) > 0 {
		write("DEBIAN/conffiles", strings.Join(p.conffiles, "\n")+"\n", 0o644)
	}
	for rel, data := range p.files {
		write(rel, data, 0o644)
	}
	for rel, target := range p.links {
		if err := os.Link(filepath.Join(tree, target), filepath.Join(tree, rel)); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range p.control {
		mode := os.FileMode(0o644)
		if slices.Contains(ScriptNames, name) {
			mode = 0o755
		}
		write("DEBIAN/"+name, data, mode)
	}
	// Directories as a package build leaves them.
	if err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, p.name+"_"+p.version+"_"+arch+".deb")
	dpkgRun(t, "dpkg-deb", "--root-owner-group", "-Zgzip", "-b", tree, deb)
	return deb
}

func dpkgRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dpkgRoot makes an empty root filesystem with a dpkg database and the
// merged-/usr symlink lib -> usr/lib, as Debian's images have.
func dpkgRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "usr/lib", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, DpkgStatus), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	return root
}

// treeImage makes an image of one layer holding the tree at root, owners
// and modes as they are on disk.
func treeImage(t *testing.T, root string) v1.Image {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name, _ = filepath.Rel(root, p)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// openImage reads img as drydock does.
func openImage(t *testing.T, img v1.Image) *rootfs.FS {
	t.Helper()
	fsys, err := rootfs.New(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

// fsNode describes one path for the comparison (not its mtime).
type fsNode struct {
	Kind     string
	Mode     fs.FileMode
	UID, GID int
	Content  string // sha256 prefix of a regular file
	Link     string
}

func (n fsNode) String() string {
	return fmt.Sprintf("%s %v %d:%d %s%s", n.Kind, n.Mode, n.UID, n.GID, n.Content, n.Link)
}

// dpkgScratch are dpkg's own working files, which drydock does not write.
func dpkgScratch(p string) bool {
	for _, s := range []string{"var/lib/dpkg/status-old", "var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend", "var/lib/dpkg/triggers", "var/lib/dpkg/updates"} {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:8])
}

// describeDir reads a tree on disk.
func describeDir(t *testing.T, root string) map[string]fsNode {
	t.Helper()
	out := map[string]fsNode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if dpkgScratch(rel) {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := fsNode{Mode: fi.Mode().Perm(), UID: int(st.Uid), GID: int(st.Gid)}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Kind, n.Mode = "symlink", 0
			n.Link, err = os.Readlink(p)
		case fi.IsDir():
			n.Kind = "dir"
		case fi.Mode().IsRegular():
			n.Kind = "file"
			var data []byte
			data, err = os.ReadFile(p)
			n.Content = sum(data)
		default:
			n.Kind = "other"
		}
		out[rel] = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// describeImage reads an image's flattened filesystem.
func describeImage(t *testing.T, fsys *rootfs.FS) map[string]fsNode {
	t.Helper()
	out := map[string]fsNode{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if dpkgScratch(p) {
			return nil
		}
		e, err := fsys.Entry(p)
		if err != nil {
			return err
		}
		n := fsNode{Mode: e.Mode.Perm(), UID: e.UID, GID: e.GID}
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			n.Kind, n.Mode, n.Link = "symlink", 0, e.Linkname
		case e.Mode.IsDir():
			n.Kind = "dir"
		case e.Mode.IsRegular():
			n.Kind = "file"
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			n.Content = sum(data)
		default:
			n.Kind = "other"
		}
		out[p] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnpackMatchesDpkg upgrades a package that drops files and changes
// conffiles, once with dpkg itself (`dpkg --root --force-confold -i` on a
// copy of the root) and once with the Unpacker over an image of the same
// root, and requires the same filesystem: files the new version dropped
// are gone (whited out in the layer, also through the lib -> usr/lib
// symlink), a conffile the admin modified is kept with the package's
// version beside it as .dpkg-dist, an unmodified one is replaced, one the
// package did not change keeps the admin's edit, an obsolete one stays;
// and the same info files and status stanza.
func TestUnpackMatchesDpkg(t *testing.T) {
	testenv.RequireRoot(t, "dpkg --root installs files owned by root")
	testenv.RequireTool(t, "dpkg", "dpkg")
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	v1 := refPackage{name: "ddtest", version: "1.0-1", files: map[string]string{
		"usr/share/ddtest/keep":         "kept, changed by v2: 1\n",
		"usr/share/ddtest/same":         "the same in both\n",
		"usr/share/ddtest/dropped":      "only in v1\n",
		"lib/ddtest/plugin-dropped.so":  "only in v1, under lib -> usr/lib\n",
		"lib/ddtest/plugin-kept.so":     "in both\n",
		"etc/ddtest/admin-edited.conf":  "package v1\n",
		"etc/ddtest/untouched.conf":     "package v1\n",
		"etc/ddtest/pkg-unchanged.conf": "package, the same in both\n",
		"etc/ddtest/obsolete.conf":      "dropped by v2\n",
	}, conffiles: []string{"/etc/ddtest/admin-edited.conf", "/etc/ddtest/untouched.conf", "/etc/ddtest/pkg-unchanged.conf", "/etc/ddtest/obsolete.conf"}}
	v2 := refPackage{name: "ddtest", version: "2.0-1", files: map[string]string{
		"usr/share/ddtest/keep":         "kept, changed by v2: 2\n",
		"usr/share/ddtest/same":         "the same in both\n",
		"usr/share/ddtest/added":        "new in v2\n",
		"lib/ddtest/plugin-kept.so":     "in both\n",
		"etc/ddtest/admin-edited.conf":  "package v2\n",
		"etc/ddtest/untouched.conf":     "package v2\n",
		"etc/ddtest/pkg-unchanged.conf": "package, the same in both\n",
	}, conffiles: []string{"/etc/ddtest/admin-edited.conf", "/etc/ddtest/untouched.conf", "/etc/ddtest/pkg-unchanged.conf"}}
	deb1, deb2 := v1.build(t, dir), v2.build(t, dir)

	base := dpkgRoot(t)
	dpkgRun(t, "dpkg", "--root="+base, "-i", deb1)
	// The admin edits two conffiles.
	for _, c := range []string{"etc/ddtest/admin-edited.conf", "etc/ddtest/pkg-unchanged.conf"} {
		if err := os.WriteFile(filepath.Join(base, c), []byte("edited by the admin\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	baseImg := treeImage(t, base)
	fsys := openImage(t, baseImg)

	ref := filepath.Join(t.TempDir(), "ref")
	dpkgRun(t, "cp", "-a", base, ref)
	dpkgRun(t, "dpkg", "--root="+ref, "--force-confold", "-i", deb2)
	want := describeDir(t, ref)

	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	u, err := NewUnpacker(fsys, "amd64", cs, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	res, err := u.Install(t.Context(), Install{Name: "ddtest", Version: v2.version, From: v1.version, Deb: deb2})
	if err != nil {
		t.Fatal(err)
	}
	pfs := finishedImage(t, u, cs, baseImg)
	got := describeImage(t, pfs)
	compareTrees(t, "dpkg", want, got)
	if t.Failed() {
		for _, f := range []string{DpkgStatus, "var/lib/dpkg/info/ddtest.list", "var/lib/dpkg/info/ddtest.conffiles"} {
			a, _ := os.ReadFile(filepath.Join(ref, f))
			b, _ := fs.ReadFile(pfs, f)
			if string(a) != string(b) {
				t.Logf("%s:\n--- dpkg\n%s--- drydock\n%s", f, a, b)
			}
		}
	}

	// The report says what happened, in dpkg's terms.
	if res.Removed != 2 {
		t.Errorf("Removed = %d, want 2 (dropped, plugin-dropped.so)", res.Removed)
	}
	wantConf := map[string]string{
		"/etc/ddtest/admin-edited.conf":  "kept-modified",
		"/etc/ddtest/untouched.conf":     "replaced",
		"/etc/ddtest/pkg-unchanged.conf": "kept-modified",
		"/etc/ddtest/obsolete.conf":      "obsolete",
	}
	for c, a := range wantConf {
		if res.Conffiles[c] != a {
			t.Errorf("conffile %s: %q, want %q", c, res.Conffiles[c], a)
		}
	}
	// The whiteouts are in the layer itself, at the resolved paths.
	for _, p := range []string{"usr/share/ddtest/dropped", "usr/lib/ddtest/plugin-dropped.so"} {
		if e := cs.Get(p); e == nil || e.Kind != layer.Whiteout {
			t.Errorf("%s: layer entry %v, want a whiteout", p, e)
		}
	}
}

// finishedImage finishes u and returns baseImg with cs's layer on top.
func finishedImage(t *testing.T, u *Unpacker, cs *layer.Changeset, baseImg v1.Image) *rootfs.FS {
	t.Helper()
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	l, err := cs.Layer()
	if err != nil {
		t.Fatal(err)
	}
	patched, err := mutate.AppendLayers(baseImg, l)
	if err != nil {
		t.Fatal(err)
	}
	return openImage(t, patched)
}

// compareTrees reports every path where drydock's tree (got) differs from
// the reference's (want), which ref names.
func compareTrees(t *testing.T, ref string, want, got map[string]fsNode) {
	t.Helper()
	for _, p := range slices.Sorted(mapsKeys(want, got)) {
		w, inW := want[p]
		g, inG := got[p]
		switch {
		case !inG:
			t.Errorf("%s: %s has %v, drydock nothing", p, ref, w)
		case !inW:
			t.Errorf("%s: %s has nothing, drydock %v", p, ref, g)
		case w != g:
			t.Errorf("%s: %s has %v, drydock %v", p, ref, w, g)
		}
	}
}

func mapsKeys(ms ...map[string]fsNode) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}
