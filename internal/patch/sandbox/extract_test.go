package sandbox

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	uid        int
	body       string
}

func tarOf(t *testing.T, entries ...tarEntry) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.uid,
			Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0)}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return tar.NewReader(&buf)
}

// TestExtractor: entries replace what is in their way (a file, a
// directory, a link), whiteouts remove, owners, modes (setuid included)
// and times are the entries', and no symbolic link or replaced directory
// is ever followed on the way to an entry.
func TestExtractor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("root only: the extractor gives files their owners")
	}
	root := t.TempDir()
	x := newExtractor(root, 0)
	err := x.run(tarOf(t,
		tarEntry{name: "a/b/file", typ: tar.TypeReg, body: "one"},
		tarEntry{name: "a/b/file", typ: tar.TypeReg, body: "two", mode: 0o4755, uid: 7}, // replaced in place
		tarEntry{name: "d/", typ: tar.TypeDir, mode: 0o2775},
		tarEntry{name: "d/inner/x", typ: tar.TypeReg, body: "x"},
		tarEntry{name: "d", typ: tar.TypeReg, body: "now a file"}, // a directory replaced by a file
		tarEntry{name: "f", typ: tar.TypeReg, body: "f"},
		tarEntry{name: "f/", typ: tar.TypeDir, mode: 0o755}, // a file replaced by a directory
		tarEntry{name: "f/g", typ: tar.TypeReg, body: "g"},
		tarEntry{name: "hard", typ: tar.TypeLink, link: "a/b/file"},
		tarEntry{name: "ln", typ: tar.TypeSymlink, link: "a/b/file"},
		tarEntry{name: "ln", typ: tar.TypeSymlink, link: "f/g"}, // a link replaced
		tarEntry{name: "w/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "w/gone", typ: tar.TypeReg, body: "gone"},
		tarEntry{name: "w/.wh.gone", typ: tar.TypeReg},
		tarEntry{name: "v/sub/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: ".wh.v", typ: tar.TypeReg},
		tarEntry{name: "v/sub/new", typ: tar.TypeReg, body: "new"}, // recreated parents after a whiteout
	))
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return "error: " + err.Error()
		}
		return string(b)
	}
	for name, want := range map[string]string{"a/b/file": "two", "d": "now a file", "f/g": "g", "hard": "two", "ln": "g", "v/sub/new": "new"} {
		if got := read(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for _, gone := range []string{"w/gone", "d/inner"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s is still there", gone)
		}
	}
	fi, err := os.Lstat(filepath.Join(root, "a/b/file"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != 0o755|fs.ModeSetuid || st.Uid != 7 || st.Gid != 7 || fi.ModTime().UnixNano() != time.Unix(1700000000, 0).UnixNano() {
		t.Errorf("a/b/file: %v %d:%d %v", fi.Mode(), st.Uid, st.Gid, fi.ModTime())
	}
	if x.sums["hard"] != x.sums["a/b/file"] || x.sums["a/b/file"] == "" || x.sums["d/inner/x"] != "" || x.sums["w/gone"] != "" {
		t.Errorf("sums: %v", x.sums)
	}

	// What must not be followed (to outside, a directory of the test's
	// own, which must stay empty).
	outside := t.TempDir()
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"through a symlink", []tarEntry{{name: "etc", typ: tar.TypeSymlink, link: outside}, {name: "etc/x", typ: tar.TypeReg}}, "not a directory"},
		{"through a replaced directory", []tarEntry{{name: "p/", typ: tar.TypeDir}, {name: "p/q", typ: tar.TypeReg},
			{name: "p", typ: tar.TypeSymlink, link: outside}, {name: "p/r", typ: tar.TypeReg}}, "not a directory"},
		{"a hard link to a directory", []tarEntry{{name: "p/", typ: tar.TypeDir}, {name: "l", typ: tar.TypeLink, link: "p"}}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := newExtractor(dir, 0).run(tarOf(t, tc.entries...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if des, _ := os.ReadDir(outside); len(des) != 0 {
				t.Fatalf("written outside the tree: %v", des)
			}
		})
	}
}
