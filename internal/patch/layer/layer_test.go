package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func build(t *testing.T, order []string) *Changeset {
	t.Helper()
	c, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, op := range order {
		var err error
		switch op {
		case "dir":
			err = c.AddDir("usr/lib", 0o755, 0, 0, t0)
		case "file":
			_, err = c.AddBytes("usr/lib/libx.so.1", 0o644, 0, 0, t0, []byte("new"))
		case "link":
			err = c.AddSymlink("usr/lib/libx.so", "libx.so.1", 0, 0, t0)
		case "hard":
			err = c.AddHardlink("usr/lib/libx-copy", "usr/lib/libx.so.1")
		case "wh":
			err = c.AddWhiteout("usr/lib/libold.so.1", t0)
		case "dash":
			_, err = c.AddBytes("usr/lib-x", 0o600, 1, 2, t0, []byte("z"))
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	return c
}

func tarList(t *testing.T, c *Changeset) ([]string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(t0) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
		names = append(names, h.Name)
	}
	return names, buf.Bytes()
}

func TestWriteSortedAndDeterministic(t *testing.T) {
	a := build(t, []string{"dir", "file", "link", "hard", "wh", "dash"})
	b := build(t, []string{"dash", "wh", "file", "link", "dir", "hard"})
	na, ba := tarList(t, a)
	_, bb := tarList(t, b)
	want := []string{"usr/lib/", "usr/lib/.wh.libold.so.1", "usr/lib/libx-copy", "usr/lib/libx.so", "usr/lib/libx.so.1", "usr/lib-x"}
	if len(na) != len(want) {
		t.Fatalf("entries %q, want %q", na, want)
	}
	for i := range want {
		if na[i] != want[i] {
			t.Fatalf("entries %q, want %q", na, want)
		}
	}
	if !bytes.Equal(ba, bb) {
		t.Error("same changeset built in another order gives other bytes")
	}
}

func TestHardlinkBeforeTargetFails(t *testing.T) {
	c := build(t, nil)
	if err := c.AddHardlink("a", "b"); err == nil {
		t.Error("hardlink to a missing target accepted")
	}
}

func TestReplaceAndRename(t *testing.T) {
	c := build(t, []string{"file", "wh"})
	if _, err := c.AddBytes("usr/lib/libold.so.1", 0o644, 0, 0, t0, []byte("back")); err != nil {
		t.Fatal(err)
	}
	if e := c.Get("usr/lib/libold.so.1"); e.Kind != File {
		t.Errorf("re-added path is %v", e.Kind)
	}
	if err := c.Rename("usr/lib/libx.so.1", "usr/lib/libx.so.1.dpkg-dist"); err != nil {
		t.Fatal(err)
	}
	e := c.Get("usr/lib/libx.so.1.dpkg-dist")
	rc, err := c.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "new" || c.Get("usr/lib/libx.so.1") != nil {
		t.Errorf("rename: content %q", data)
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"", ".", "/etc/x", "../x", "a/../b", "a//b", "a/.wh.b", "a\x00b", ".."} {
		if CheckPath(p) == nil {
			t.Errorf("CheckPath(%q) accepted", p)
		}
	}
	for _, p := range []string{"etc/x", "a..b", "usr/lib/x86_64-linux-gnu/libc.so.6"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q): %v", p, err)
		}
	}
}

func TestAddFileSizeMismatch(t *testing.T) {
	c := build(t, nil)
	if _, err := c.AddFile("x", 0o644, 0, 0, t0, bytes.NewReader([]byte("abc")), 2); err == nil {
		t.Error("longer content accepted")
	}
	if _, err := c.AddFile("x", 0o644, 0, 0, t0, bytes.NewReader([]byte("abc")), 4); err == nil {
		t.Error("shorter content accepted")
	}
	if c.Len() != 0 {
		t.Error("failed add left an entry")
	}
}

func TestLayerValidates(t *testing.T) {
	c := build(t, []string{"dir", "file", "link", "hard", "wh"})
	l, err := c.Layer()
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1)
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, Annotations: map[string]string{"x": "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
	l2, _ := build(t, []string{"wh", "file", "hard", "dir", "link"}).Layer()
	d1, _ := l.Digest()
	d2, err := l2.Digest()
	if err != nil || d1 != d2 {
		t.Errorf("digests %s and %s (%v)", d1, d2, err)
	}
}
