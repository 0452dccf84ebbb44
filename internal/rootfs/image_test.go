package rootfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/drydock-project/drydock/internal/testimage"
)

func TestBookworm(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	f := newFS(t, img, WithSpoolDir(t.TempDir()),
		WithContents(func(p string) bool { return p == "etc/os-release" || p == "var/lib/dpkg/status" }))
	if w := f.Warnings(); len(w) > 0 {
		t.Errorf("warnings on a clean image: %v", w)
	}

	fi, err := f.Lstat("lib")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("Lstat(lib) = %v, %v; want a symlink", fi, err)
	}
	if target, _ := f.ReadLink("lib"); target != "usr/lib" {
		t.Errorf("lib -> %q, want usr/lib", target)
	}
	libc, err := f.Open("lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4)
	if _, err := io.ReadFull(libc, head); err != nil || string(head) != "\x7fELF" {
		t.Errorf("libc.so.6 starts %q, %v; want ELF", head, err)
	}
	libc.Close()
	osr, err := f.ReadFile("usr/lib/os-release")
	if err != nil || !bytes.Contains(osr, []byte("bookworm")) {
		t.Errorf("usr/lib/os-release: %q, %v", osr, err)
	}
	e, err := f.Entry("etc/os-release")
	if err != nil || e.Linkname == "" || e.Layer != 0 {
		t.Errorf("Entry(etc/os-release) = %+v, %v; want a symlink from layer 0", e, err)
	}
	if ls := f.Layers(); len(ls) == 0 || len(ls[0].Paths) < 1000 {
		t.Errorf("Layers() has %d layers", len(ls))
	}

	// Every symlink resolves, or dangles because its target only exists at
	// run time (/etc/mtab -> /proc/self/mounts, ...).
	var files int
	dangling := map[string]bool{}
	err = fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if _, err := f.Stat(p); errors.Is(err, fs.ErrNotExist) {
				dangling[p] = true
			} else if err != nil {
				t.Errorf("Stat(%s): %v", p, err)
			}
		} else if d.Type().IsRegular() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bookworm: %d regular files, %d dangling symlinks %v, %d layers", files, len(dangling), dangling, len(f.Layers()))

	// fstest.TestFS over the whole root, contents in memory (TestFS reads
	// every file several times). It opens every entry, so the dangling
	// links are its only expected complaints.
	all := newFS(t, img, WithContents(func(string) bool { return true }), WithMaxContentBytes(1<<30))
	if err := fstest.TestFS(all, "etc/os-release", "usr/lib/x86_64-linux-gnu/libc.so.6", "var/lib/dpkg/status", "lib"); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			p, _, _ := strings.Cut(line, ": ")
			if line != "" && line != "TestFS found errors:" && !dangling[p] {
				t.Errorf("TestFS: %s", line)
			}
		}
	}
}

// TestRealImages reads test images (bookworm: TestBookworm): real Debian
// trees are neither
// hostile (no entry, hardlink or symbolic link leaves the root) nor
// corrupt (digests and diff_ids verified).
func TestRealImages(t *testing.T) {
	for _, spec := range []testimage.Spec{testimage.DistrolessBookworm, testimage.Trixie, testimage.BullseyeNginxCurl} {
		t.Run(spec.Name, func(t *testing.T) {
			ti := testimage.Require(t, spec)
			img, err := ti.Open()
			if err != nil {
				t.Fatal(err)
			}
			f := newFS(t, img)
			if _, err := f.Stat("etc/os-release"); err != nil {
				t.Errorf("etc/os-release: %v", err)
			}
			if err := f.CheckHostile(); err != nil {
				t.Errorf("CheckHostile: %v", err)
			}
		})
	}
}

func BenchmarkIndexBookwormNginx(b *testing.B) {
	ti := testimage.Require(b, testimage.BookwormNginx)
	img, err := ti.Open()
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		size += n
	}
	keep := WithContents(func(p string) bool { return strings.HasPrefix(p, "var/lib/dpkg/") || p == "etc/os-release" })
	for _, bm := range []struct {
		name string
		opts []Option
	}{
		{"index", []Option{keep}},
		{"index+spool", []Option{keep, WithSpoolDir(b.TempDir())}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				f, err := New(b.Context(), img, bm.opts...)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

func FuzzLayer(f *testing.F) {
	f.Add(tarBytes(f, file("etc/os-release", "ID=debian"), sym("lib", "usr/lib"), hard("h", "etc/os-release")))
	f.Add(tarBytes(f, dir("d"), wh("d/.wh..wh..opq"), wh(".wh.x"), file("../x", "y"), sym("loop", "loop")))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		lower := newBytesLayer(tarBytes(t, file("etc/passwd", "root"), sym("lib", "usr/lib"), dir("usr/lib")))
		img := rawImage{Image: empty.Image, layers: []v1.Layer{lower, newBytesLayer(data)}}
		fsys, err := New(t.Context(), img, WithMaxLayerSize(1<<20), WithMaxEntries(1000), WithMaxFileSize(1<<16),
			WithContents(func(string) bool { return true }))
		if err != nil {
			return
		}
		defer fsys.Close()
		// Walk everything; read every file; nothing may panic or escape.
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if !fs.ValidPath(p) {
				t.Fatalf("invalid path %q in the view", p)
			}
			_, _ = fsys.ReadFile(p)
			_, _ = fsys.ReadLink(p)
			_, _ = fsys.Stat(p)
			return nil
		})
	})
}
