package ldcache

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// keep selects what Build reads, so no lazy layer re-reads are needed.
func keep(p string) bool {
	return strings.Contains(path.Base(p), ".so") || strings.HasPrefix(p, "etc/") ||
		strings.HasPrefix(p, "var/lib/dpkg/status") || strings.HasSuffix(p, "sbin/ldconfig")
}

func openImage(t *testing.T, s testimage.Spec) (v1.Image, *rootfs.FS) {
	t.Helper()
	ti := testimage.Require(t, s)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := rootfs.New(t.Context(), img, rootfs.WithContents(keep))
	if err != nil {
		t.Fatal(err)
	}
	return img, fsys
}

// extract writes img's merged file system under dir (symlinks kept).
func extract(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Clean("/"+h.Name))
		_ = os.MkdirAll(filepath.Dir(dst), 0o755)
		switch h.Typeflag {
		case tar.TypeDir:
			_ = os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			_ = os.Symlink(h.Linkname, dst)
		case tar.TypeLink:
			_ = os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), dst)
		case tar.TypeReg:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, h.FileInfo().Mode().Perm()|0o200)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
}

// runLdconfig runs the image's own ldconfig chrooted into dir.
func runLdconfig(t *testing.T, dir string) []byte {
	t.Helper()
	_ = os.MkdirAll(filepath.Join(dir, "tmp"), 0o1777)
	out, err := exec.Command(filepath.Join(dir, "sbin/ldconfig"), "-r", dir, "-C", "/tmp/ld.so.cache").CombinedOutput()
	if err != nil {
		t.Fatalf("ldconfig: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "tmp/ld.so.cache"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func diffCaches(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	g, err1 := Parse(got)
	w, err2 := Parse(want)
	t.Errorf("%s: %d bytes built, %d expected (parse errors %v, %v)", what, len(got), len(want), err1, err2)
	if g != nil && w != nil {
		for i := range max(len(g.Entries), len(w.Entries)) {
			var ge, we Entry
			if i < len(g.Entries) {
				ge = g.Entries[i]
			}
			if i < len(w.Entries) {
				we = w.Entries[i]
			}
			if ge != we {
				t.Errorf("entry %d: got %+v want %+v", i, ge, we)
			}
		}
		if g.Generator != w.Generator {
			t.Errorf("generator %q, want %q", g.Generator, w.Generator)
		}
	}
}

func checkRoundTrip(t *testing.T, data []byte) *Cache {
	t.Helper()
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Build()): %v", err)
	}
	if len(c.Entries) == 0 {
		t.Fatal("no entries")
	}
	return c
}

// TestDebootstrapImages compares Build with the image's /etc/ld.so.cache
// and with the image's ldconfig rerun on an extracted copy, then after
// removing a library and adding one with a new soname.
func TestDebootstrapImages(t *testing.T) {
	for _, s := range []testimage.Spec{testimage.Bookworm, testimage.BookwormNginx, testimage.BullseyeNginxCurl, testimage.Trixie} {
		t.Run(s.Name, func(t *testing.T) {
			img, fsys := openImage(t, s)
			start := time.Now()
			got, err := Build(fsys, s.Arch, WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("built %d bytes in %s", len(got), time.Since(start).Round(time.Millisecond))
			own, err := fs.ReadFile(fsys, "etc/ld.so.cache")
			if err != nil {
				t.Fatal(err)
			}
			diffCaches(t, "image's own ld.so.cache", got, own)
			c := checkRoundTrip(t, got)

			testenv.RequireRoot(t, "ldconfig -r chroots into the extracted image")
			dir := t.TempDir()
			extract(t, img, dir)
			diffCaches(t, "ldconfig rerun", got, runLdconfig(t, dir))

			// Remove libacl.so.1 (link and file); add a copy of
			// libattr.so.1 whose soname is libqttr.so.1.
			var acl, attr string
			for _, e := range c.Entries {
				switch e.Name {
				case "libacl.so.1":
					acl = e.Path
				case "libattr.so.1":
					attr = e.Path
				}
			}
			if acl == "" || attr == "" {
				t.Fatal("libacl.so.1 or libattr.so.1 missing")
			}
			ov := &overlay{FS: fsys, removed: map[string]bool{}, added: map[string][]byte{}}
			b := &builder{fsys: fsys}
			aclLink, _ := b.lresolve(acl)
			aclFile, _ := b.resolve(acl)
			attrFile, _ := b.resolve(attr)
			for _, p := range []string{aclLink, aclFile} {
				ov.removed[p] = true
				if err := os.Remove(filepath.Join(dir, p)); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(filepath.Join(dir, attrFile))
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte("libattr.so.1\x00"), []byte("libqttr.so.1\x00"))
			newFile := path.Join(path.Dir(attrFile), "libqttr.so.1.0.0")
			ov.added[newFile] = data
			if err := os.WriteFile(filepath.Join(dir, newFile), data, 0o644); err != nil {
				t.Fatal(err)
			}
			var links []Link
			got2, err := Build(ov, s.Arch, WithLinkReport(func(l Link) { links = append(links, l) }))
			if err != nil {
				t.Fatal(err)
			}
			diffCaches(t, "modified tree", got2, runLdconfig(t, dir))
			c2 := checkRoundTrip(t, got2)
			if !slices.ContainsFunc(c2.Entries, func(e Entry) bool { return e.Name == "libqttr.so.1" }) ||
				slices.ContainsFunc(c2.Entries, func(e Entry) bool { return e.Name == "libacl.so.1" }) {
				t.Error("modified cache lacks libqttr.so.1 or still has libacl.so.1")
			}
			if !slices.ContainsFunc(links, func(l Link) bool { return l.Name == "libqttr.so.1" && l.Target == "libqttr.so.1.0.0" }) {
				t.Errorf("missing soname link not reported: %v", links)
			}
		})
	}
}

// TestDistroless: the image has no ldconfig nor ld.so.cache; bookworm's
// ldconfig (same glibc when the versions match) is run on a copy.
func TestDistroless(t *testing.T) {
	img, fsys := openImage(t, testimage.DistrolessBookworm)
	got, err := Build(fsys, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	c := checkRoundTrip(t, got)
	if _, err := fsys.Lstat("etc/ld.so.cache"); err == nil {
		t.Fatal("distroless image unexpectedly has an ld.so.cache")
	}
	bimg, bfs := openImage(t, testimage.Bookworm)
	v1, _ := dpkgVersion(fsys, "amd64")
	v2, _ := dpkgVersion(bfs, "amd64")
	if v1 != v2 {
		// Both images come from the main suite; they differ only when a
		// point release came between the two builds of a long-lived cache.
		testenv.Missing(t, "glibc %s (distroless) != %s (bookworm): no matching ldconfig; rebuild the test images", v1, v2)
	}
	testenv.RequireRoot(t, "ldconfig -r chroots into the extracted image")
	bdir, dir := t.TempDir(), t.TempDir()
	extract(t, bimg, bdir)
	extract(t, img, dir)
	ld, err := os.ReadFile(filepath.Join(bdir, "sbin/ldconfig"))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(dir, "sbin"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "sbin/ldconfig"), ld, 0o755); err != nil {
		t.Fatal(err)
	}
	diffCaches(t, "bookworm ldconfig on distroless", got, runLdconfig(t, dir))
	t.Logf("%d entries", len(c.Entries))
}

// TestArm64: mmdebstrap's chrootless mode runs the host's ldconfig, which
// skips aarch64 libraries, so the arm64 image's own cache has no entries
// to compare with, and no arm64 ldconfig can run here. The reference is
// the image's amd64 twin (same release, same packages, built the same
// way), whose cache a real ldconfig wrote and must not be empty: the arm64
// cache must name the same libraries at the same paths, the multiarch
// triplet and the dynamic loader aside. Then a hand-checked subset.
func TestArm64(t *testing.T) {
	_, fsys := openImage(t, testimage.TrixieArm64)
	got, err := Build(fsys, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	c := checkRoundTrip(t, got)
	if own, err := fs.ReadFile(fsys, "etc/ld.so.cache"); err == nil {
		if oc, err := Parse(own); err == nil && len(oc.Entries) > 0 {
			diffCaches(t, "image's own ld.so.cache", got, own)
		}
	}
	_, twin := openImage(t, testimage.TrixieAmd64)
	twinCache, err := fs.ReadFile(twin, "etc/ld.so.cache")
	if err != nil {
		t.Fatalf("the amd64 twin has no ld.so.cache: %v", err)
	}
	tc, err := Parse(twinCache)
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.Entries) < 20 {
		t.Fatalf("the amd64 twin's ld.so.cache has %d entries (written by %q): no reference to compare with", len(tc.Entries), tc.Generator)
	}
	loader := func(name string) bool { return strings.HasPrefix(name, "ld-linux-") }
	key := func(e Entry, triplet string) string {
		return e.Name + " " + strings.ReplaceAll(e.Path, triplet, "TRIPLET")
	}
	fromTwin := map[string]bool{}
	for _, e := range tc.Entries {
		if !loader(e.Name) {
			fromTwin[key(e, "x86_64-linux-gnu")] = true
		}
	}
	for _, e := range c.Entries {
		if loader(e.Name) {
			continue
		}
		k := key(e, "aarch64-linux-gnu")
		if !fromTwin[k] {
			t.Errorf("arm64 cache has %s, the amd64 twin has no such entry", k)
		}
		delete(fromTwin, k)
	}
	for k := range fromTwin {
		t.Errorf("the amd64 twin has %s, the arm64 cache lacks it", k)
	}
	want := map[string]string{
		"libc.so.6":             "/lib/aarch64-linux-gnu/libc.so.6",
		"ld-linux-aarch64.so.1": "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
		"libacl.so.1":           "/lib/aarch64-linux-gnu/libacl.so.1",
		"libdb-5.3.so":          "/lib/aarch64-linux-gnu/libdb-5.3.so",
		"libmemusage.so":        "/lib/aarch64-linux-gnu/libmemusage.so",
	}
	for _, e := range c.Entries {
		if e.Flags != 0x0a03 || e.HWCap != 0 || e.OSVersion != 0 {
			t.Errorf("%+v: want flags 0xa03, no hwcap/osversion", e)
		}
		if p, ok := want[e.Name]; ok {
			if e.Path != p {
				t.Errorf("%s => %s, want %s", e.Name, e.Path, p)
			}
			delete(want, e.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing %v", want)
	}
	if !strings.HasPrefix(c.Generator, "ldconfig (Debian GLIBC 2.41-") {
		t.Errorf("generator %q", c.Generator)
	}
	for i := 1; i < len(c.Entries); i++ {
		if libcmp(c.Entries[i-1].Name, c.Entries[i].Name, false) < 0 {
			t.Errorf("entries %d, %d out of order", i-1, i)
		}
	}
}

func TestUnsupported(t *testing.T) {
	_, fsys := openImage(t, testimage.Bookworm)
	for _, tc := range []struct {
		arch string
		opts []Option
	}{
		{"riscv64", nil},
		{"amd64", []Option{WithGlibcVersion("2.35-0ubuntu3")}},
	} {
		if _, err := Build(fsys, tc.arch, tc.opts...); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", tc.arch, err)
		}
	}
}

func TestLibcmp(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		sign int
	}{
		{"libfoo.so.10", "libfoo.so.9", 1},
		{"libfoo.so.1", "libfoo.so.1", 0},
		{"libfoo.so", "libfoo.so.1", -1},
		{"liba.so", "libb.so", -1},
		{"lib1", "liba", 1},
	} {
		if got := libcmp(tc.a, tc.b, true); (got > 0) != (tc.sign > 0) || (got < 0) != (tc.sign < 0) {
			t.Errorf("libcmp(%q, %q) = %d", tc.a, tc.b, got)
		}
	}
}

// overlay is fsys with files removed and regular files added.
type overlay struct {
	FS
	removed map[string]bool
	added   map[string][]byte
}

type addedInfo struct {
	name string
	size int64
}

func (a addedInfo) Name() string       { return a.name }
func (a addedInfo) Size() int64        { return a.size }
func (a addedInfo) Mode() fs.FileMode  { return 0o644 }
func (a addedInfo) ModTime() time.Time { return time.Time{} }
func (a addedInfo) IsDir() bool        { return false }
func (a addedInfo) Sys() any           { return nil }

func (o *overlay) Lstat(name string) (fs.FileInfo, error) {
	if o.removed[name] {
		return nil, fs.ErrNotExist
	}
	if d, ok := o.added[name]; ok {
		return addedInfo{path.Base(name), int64(len(d))}, nil
	}
	return o.FS.Lstat(name)
}

func (o *overlay) ReadLink(name string) (string, error) {
	if o.removed[name] {
		return "", fs.ErrNotExist
	}
	return o.FS.ReadLink(name)
}

func (o *overlay) ReadFile(name string) ([]byte, error) {
	if o.removed[name] {
		return nil, fs.ErrNotExist
	}
	if d, ok := o.added[name]; ok {
		return slices.Clone(d), nil
	}
	return fs.ReadFile(o.FS, name)
}

func (o *overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := fs.ReadDir(o.FS, name)
	if err != nil {
		return nil, err
	}
	ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return o.removed[path.Join(name, e.Name())] })
	for p, d := range o.added {
		if path.Dir(p) == name {
			ents = append(ents, fs.FileInfoToDirEntry(addedInfo{path.Base(p), int64(len(d))}))
		}
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}
