package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydock-project/drydock/internal/refusal"
)

// check compares fsys against want: "file:BODY", "dir", "link:TARGET", or
// "-" for absent (Lstat, no final symlink followed).
func check(t *testing.T, fsys *FS, want map[string]string) {
	t.Helper()
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		w := want[p]
		fi, err := fsys.Lstat(p)
		if w == "-" {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: Lstat = %v, %v; want not exist", p, fi, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Lstat: %v", p, err)
			continue
		}
		switch {
		case w == "dir":
			if !fi.IsDir() {
				t.Errorf("%s: mode %v, want a directory", p, fi.Mode())
			}
		case strings.HasPrefix(w, "link:"):
			got, err := fsys.ReadLink(p)
			if err != nil || got != strings.TrimPrefix(w, "link:") {
				t.Errorf("%s: ReadLink = %q, %v; want %q", p, got, err, strings.TrimPrefix(w, "link:"))
			}
		case strings.HasPrefix(w, "file:"):
			if !fi.Mode().IsRegular() {
				t.Errorf("%s: mode %v, want a regular file", p, fi.Mode())
				continue
			}
			got, err := fsys.ReadFile(p)
			if err != nil || string(got) != strings.TrimPrefix(w, "file:") {
				t.Errorf("%s: ReadFile = %q, %v; want %q", p, got, err, strings.TrimPrefix(w, "file:"))
			}
		default:
			t.Fatalf("bad expectation %q", w)
		}
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]ent
		want   map[string]string
	}{
		{
			name: "later file replaces earlier",
			layers: [][]ent{
				{dir("etc"), file("etc/a", "one"), file("etc/b", "b")},
				{file("etc/a", "two")},
			},
			want: map[string]string{"etc": "dir", "etc/a": "file:two", "etc/b": "file:b"},
		},
		{
			name: "whiteout removes a file and a tree",
			layers: [][]ent{
				{dir("etc"), file("etc/a", "a"), file("etc/b", "b"), dir("var/x"), file("var/x/y", "y")},
				{wh("etc/.wh.a"), wh("var/.wh.x")},
			},
			want: map[string]string{"etc/a": "-", "etc/b": "file:b", "var": "dir", "var/x": "-", "var/x/y": "-"},
		},
		{
			name: "whiteout spares its own layer",
			layers: [][]ent{
				{file("a", "old")},
				{file("a", "new"), wh(".wh.a")},
			},
			want: map[string]string{"a": "file:new"},
		},
		{
			name: "opaque directory hides lower content only",
			layers: [][]ent{
				{dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/x", "x"), file("keep", "k")},
				{dir("d"), file("d/new", "n"), wh("d/.wh..wh..opq")},
			},
			want: map[string]string{"d": "dir", "d/new": "file:n", "d/old": "-", "d/sub": "-",
				"d/sub/x": "-", "keep": "file:k"},
		},
		{
			name: "opaque keeps same-layer entries below merged dirs",
			layers: [][]ent{
				{dir("d"), dir("d/sub"), file("d/sub/old", "o")},
				{file("d/sub/new", "n"), wh("d/.wh..wh..opq")},
			},
			want: map[string]string{"d/sub": "dir", "d/sub/new": "file:n", "d/sub/old": "-"},
		},
		{
			name: "file replaces directory",
			layers: [][]ent{
				{dir("x"), file("x/inner", "i")},
				{file("x", "now a file")},
			},
			want: map[string]string{"x": "file:now a file", "x/inner": "-"},
		},
		{
			name: "directory replaces file",
			layers: [][]ent{
				{file("x", "file")},
				{dir("x"), file("x/inner", "i")},
			},
			want: map[string]string{"x": "dir", "x/inner": "file:i"},
		},
		{
			name: "directories merge",
			layers: [][]ent{
				{dir("d"), file("d/a", "a")},
				{dir("d"), file("d/b", "b")},
			},
			want: map[string]string{"d/a": "file:a", "d/b": "file:b"},
		},
		{
			name: "implicit parents",
			layers: [][]ent{
				{file("a/b/c", "c")},
			},
			want: map[string]string{"a": "dir", "a/b": "dir", "a/b/c": "file:c"},
		},
		{
			name: "hardlinks share content, across layers too",
			layers: [][]ent{
				{file("bin/real", "payload")},
				{hard("bin/link", "bin/real"), hard("bin/link2", "./bin/link")},
				{file("bin/real", "replaced")},
			},
			want: map[string]string{"bin/real": "file:replaced", "bin/link": "file:payload", "bin/link2": "file:payload"},
		},
		{
			name: "whiteout of a symlink and the tree behind it stays",
			layers: [][]ent{
				{sym("lib", "usr/lib"), file("usr/lib/x", "x")},
				{wh(".wh.lib")},
			},
			want: map[string]string{"lib": "-", "usr/lib/x": "file:x"},
		},
		{
			name: "layer shadows a lower symlink with a directory",
			layers: [][]ent{
				{sym("lib", "usr/lib"), file("usr/lib/x", "x")},
				{file("lib/y", "y")},
			},
			want: map[string]string{"lib": "dir", "lib/y": "file:y", "lib/x": "-", "usr/lib/x": "file:x"},
		},
		{
			name: "dot-slash names and root entry",
			layers: [][]ent{
				{dir("./"), dir("./etc/"), file("./etc/hostname", "h")},
			},
			want: map[string]string{"etc": "dir", "etc/hostname": "file:h"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, newFS(t, image(t, tt.layers...)), tt.want)
		})
	}
}

func TestSymlinks(t *testing.T) {
	img := image(t, []ent{
		dir("usr/lib/x86_64-linux-gnu"), file("usr/lib/x86_64-linux-gnu/libc.so.6", "libc"),
		sym("lib", "usr/lib"),
		sym("lib64", "/usr/lib"),
		sym("chain1", "chain2"), sym("chain2", "./usr/../chain3"), sym("chain3", "/lib/x86_64-linux-gnu/libc.so.6"),
		file("etc/passwd", "root:x:0:0"),
		sym("up", "../../../etc/passwd"),
		sym("usr/up", "../../../../etc"),
		sym("loop1", "loop2"), sym("loop2", "loop1"),
		sym("self", "self"),
		sym("dangling", "nowhere"),
		sym("empty", ""),
	})
	f := newFS(t, img)
	reads := []struct {
		path string
		want string // body, or "error:NOTEXIST" / "error:LOOP"
	}{
		{"lib/x86_64-linux-gnu/libc.so.6", "libc"},
		{"lib64/x86_64-linux-gnu/libc.so.6", "libc"},
		{"chain1", "libc"},
		{"up", "root:x:0:0"},
		{"usr/up/passwd", "root:x:0:0"},
		{"loop1", "error:LOOP"},
		{"self", "error:LOOP"},
		{"dangling", "error:NOTEXIST"},
		{"empty", "error:NOTEXIST"},
		{"lib/nothing", "error:NOTEXIST"},
		{"etc/passwd/x", "error:NOTEXIST"},
	}
	for _, r := range reads {
		got, err := f.ReadFile(r.path)
		switch r.want {
		case "error:LOOP":
			if !errors.Is(err, ErrSymlinkLoop) {
				t.Errorf("ReadFile(%s) = %q, %v; want a symlink loop", r.path, got, err)
			}
		case "error:NOTEXIST":
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadFile(%s) = %q, %v; want not exist", r.path, got, err)
			}
		default:
			if err != nil || string(got) != r.want {
				t.Errorf("ReadFile(%s) = %q, %v; want %q", r.path, got, err, r.want)
			}
		}
	}
	if fi, err := f.Lstat("lib"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(lib) = %v, %v; want a symlink", fi, err)
	}
	if fi, err := f.Stat("lib"); err != nil || !fi.IsDir() || fi.Name() != "lib" {
		t.Errorf("Stat(lib) = %v, %v; want a directory named lib", fi, err)
	}
	if _, err := f.ReadLink("etc/passwd"); err == nil {
		t.Error("ReadLink of a regular file succeeded")
	}
	ents, err := f.ReadDir("lib/x86_64-linux-gnu")
	if err != nil || len(ents) != 1 || ents[0].Name() != "libc.so.6" {
		t.Errorf("ReadDir(lib/x86_64-linux-gnu) = %v, %v", ents, err)
	}
	if _, err := f.Open("../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(../etc/passwd) = %v; want invalid", err)
	}
	e, err := f.Entry("usr/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil || e.Layer != 0 || e.Size != 4 || e.Path != "usr/lib/x86_64-linux-gnu/libc.so.6" {
		t.Errorf("Entry = %+v, %v", e, err)
	}
}

func TestHostileNames(t *testing.T) {
	f := newFS(t, image(t, []ent{
		file("../../escape", "x"),
		file("a/../../escape2", "x"),
		file("/abs/file", "abs"),
		file("a/../inside", "in"),
		file("ok", "ok"),
		wh(".wh.."),
		hard("link-out", "../../etc/shadow"),
		hard("link-missing", "nothing"),
		hard("link-abs", "/ok"),
		hard("link-abs-up", "/../ok"),
		sym("usr/bin/sym-out", "../../../etc/shadow"),
		sym("usr/bin/sym-up", "../lib/x"),
		sym("usr/bin/sym-abs", "/etc/shadow"),
		{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
	}))
	check(t, f, map[string]string{"abs/file": "file:abs", "inside": "file:in", "ok": "file:ok",
		"escape": "-", "escape2": "-", "link-out": "-", "link-missing": "-", "a": "-",
		"link-abs": "file:ok", "link-abs-up": "file:ok", "usr/bin/sym-out": "link:../../../etc/shadow"})
	var reasons []string
	hostile := map[string]bool{}
	for _, w := range f.Warnings() {
		reasons = append(reasons, w.Entry+": "+w.Reason)
		hostile[w.Entry] = w.Hostile
	}
	// Names climbing out are hostile; an absolute name is what runtimes
	// apply from the root, and is not: neither is an absolute hardlink
	// target (kaniko writes them) or symbolic link target.
	for entry, want := range map[string]bool{"../../escape": true, "a/../../escape2": true, "a/../inside": true, "/abs/file": false,
		"link-out": true, "link-abs": false, "link-abs-up": true, "usr/bin/sym-out": true, "usr/bin/sym-up": false, "usr/bin/sym-abs": false} {
		if hostile[entry] != want {
			t.Errorf("%s: Hostile = %v, want %v", entry, hostile[entry], want)
		}
	}
	for _, want := range []string{"../../escape: name escapes", "a/../../escape2: name escapes",
		"/abs/file: absolute name", "a/../inside: name contains", ".wh..: invalid whiteout",
		"link-out: hardlink target \"../../etc/shadow\" escapes", "link-missing: hardlink",
		"link-abs: absolute hardlink target", "link-abs-up: hardlink target \"/../ok\" contains",
		"usr/bin/sym-out: symbolic link target \"../../../etc/shadow\" climbs above"} {
		if !slices.ContainsFunc(reasons, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("no warning %q in %q", want, reasons)
		}
	}
	// The refusal names the first hostile entry and lists them all.
	err := f.CheckHostile()
	var r *refusal.Error
	if !errors.As(err, &r) || r.Kind != refusal.Hostile || !errors.Is(err, ErrHostile) || r.Entry != "../../escape" || !strings.HasPrefix(r.Digest, "sha256:") ||
		!strings.Contains(err.Error(), `entry "link-abs-up"`) || !strings.HasSuffix(err.Error(), "; and 1 more") {
		t.Errorf("CheckHostile = %v; want a hostile refusal naming ../../escape first, 5 entries and 1 more", err)
	}
	if err := newFS(t, image(t, []ent{file("ok", "x"), sym("lib", "usr/lib"), hard("h", "/ok")})).CheckHostile(); err != nil {
		t.Errorf("CheckHostile of an honest image = %v", err)
	}
	fi, err := f.Lstat("dev/null")
	if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("dev/null: %v, %v", fi, err)
	}
	if b, err := f.ReadFile("run/fifo"); err != nil || len(b) != 0 {
		t.Errorf("ReadFile(fifo) = %q, %v; want empty", b, err)
	}
}

func TestNULName(t *testing.T) {
	// archive/tar refuses to write NUL in names; patch the header by hand.
	b := tarBytes(t, file("okname", "x"))
	b = bytes.Replace(b, []byte("okname"), []byte("ok\x00ame"), 1)
	hdr := b[:512]
	// Recompute the ustar checksum (bytes 148..155).
	copy(hdr[148:156], "        ")
	var sum int64
	for _, c := range hdr {
		sum += int64(c)
	}
	copy(hdr[148:156], []byte(strings.Repeat("0", 6-len(itoa8(sum)))+itoa8(sum)+"\x00 "))
	img, err := mutate.AppendLayers(empty.Image, rawLayer(t, b))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(t.Context(), img)
	if err != nil {
		return // an error is acceptable, a panic is not
	}
	defer f.Close()
	if _, err := f.Lstat("ok\x00ame"); err == nil {
		t.Error("NUL name is visible")
	}
}

func itoa8(v int64) string {
	if v == 0 {
		return "0"
	}
	var s []byte
	for ; v > 0; v /= 8 {
		s = append([]byte{byte('0' + v%8)}, s...)
	}
	return string(s)
}

func TestLimits(t *testing.T) {
	// A 64 MiB file of zeros compresses to ~64 KiB: a small bomb.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	const big = 64 << 20
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: big, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, big); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	bomb := rawLayer(t, gz.Bytes())
	bombImg, err := mutate.AppendLayers(empty.Image, bomb)
	if err != nil {
		t.Fatal(err)
	}
	dig, _ := bomb.Digest()

	many := make([]ent, 50)
	for i := range many {
		many[i] = file("f"+itoa8(int64(i)), "x")
	}
	tests := []struct {
		name string
		img  v1.Image
		opts []Option
	}{
		{"layer size", bombImg, []Option{WithMaxLayerSize(1 << 20)}},
		{"entries", image(t, many), []Option{WithMaxEntries(10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), tt.img, tt.opts...)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("New = %v; want ErrLimit", err)
			}
			var le *LayerError
			if !errors.As(err, &le) || le.Index != 0 {
				t.Fatalf("error %v is not a *LayerError for layer 0", err)
			}
			t.Log(err)
		})
	}
	if _, err := New(t.Context(), bombImg, WithMaxLayerSize(1<<20)); err == nil || !strings.Contains(err.Error(), dig.String()) {
		t.Errorf("error %v does not name the layer digest %s", err, dig)
	}
	// Within limits, the big file is not kept and ReadFile refuses it, but
	// Open streams it.
	f := newFS(t, bombImg, WithMaxFileSize(1<<20), WithContents(func(string) bool { return true }))
	if _, err := f.ReadFile("zeros"); !errors.Is(err, ErrLimit) {
		t.Errorf("ReadFile(zeros) = %v; want ErrLimit", err)
	}
	r, err := f.Open("zeros")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	r.Close()
	if err != nil || n != big {
		t.Errorf("streamed %d bytes, %v; want %d", n, err, big)
	}
	if len(f.Warnings()) != 1 {
		t.Errorf("warnings = %v; want one (file not kept)", f.Warnings())
	}
	for _, opt := range []Option{WithMaxEntries(0), WithMaxLayerSize(-1), WithMaxFileSize(0), WithMaxContentBytes(-1), WithContents(nil)} {
		if _, err := New(t.Context(), bombImg, opt); err == nil {
			t.Error("invalid option accepted")
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestContentModes(t *testing.T) {
	layers := [][]ent{
		{file("etc/os-release", "ID=debian\n"), file("var/lib/dpkg/status", "Package: a\n"), file("big", strings.Repeat("z", 10000))},
		{file("etc/os-release", "ID=ubuntu\n"), hard("etc/hl", "var/lib/dpkg/status")},
	}
	want := map[string]string{"etc/os-release": "file:ID=ubuntu\n", "var/lib/dpkg/status": "file:Package: a\n",
		"big": "file:" + strings.Repeat("z", 10000), "etc/hl": "file:Package: a\n"}
	modes := []struct {
		name string
		opts []Option
	}{
		{"lazy re-stream", nil},
		{"kept", []Option{WithContents(func(p string) bool { return strings.HasPrefix(p, "etc/") || strings.HasPrefix(p, "var/") })}},
		{"budget", []Option{WithContents(func(string) bool { return true }), WithMaxContentBytes(20)}},
		{"spool", []Option{WithSpoolDir(t.TempDir())}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f := newFS(t, image(t, layers...), m.opts...)
			check(t, f, want)
			if err := fstest.TestFS(f, "etc/os-release", "etc/hl", "big", "var/lib/dpkg/status"); err != nil {
				t.Fatal(err)
			}
		})
	}
	f := newFS(t, image(t, layers...))
	ls := f.Layers()
	if len(ls) != 2 || !slices.Equal(ls[1].Paths, []string{"etc/os-release", "etc/hl"}) || ls[1].Digest == (v1.Hash{}) {
		t.Errorf("Layers() = %+v", ls)
	}
}

func TestSpoolClose(t *testing.T) {
	dir := t.TempDir()
	f, err := New(t.Context(), image(t, []ent{file("a", "x")}), WithSpoolDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := fs.Glob(os.DirFS(dir), "*"); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
	if b, err := f.ReadFile("a"); err != nil || string(b) != "x" {
		t.Errorf("ReadFile after Close = %q, %v", b, err)
	}
}

func TestTestFS(t *testing.T) {
	img := image(t,
		[]ent{dir("etc"), file("etc/a", "a"), sym("etc/alink", "a"), sym("lib", "usr/lib"),
			file("usr/lib/libx.so.1", "elf"), sym("usr/lib/libx.so", "libx.so.1"), dir("empty"),
			file("tmp/gone", "g")},
		[]ent{wh("tmp/.wh.gone"), file("etc/b", "bb"), hard("etc/a-hard", "etc/a"), sym("abs", "/etc/b")},
	)
	f := newFS(t, img)
	if err := fstest.TestFS(f, "etc/a", "etc/alink", "etc/b", "etc/a-hard", "lib", "usr/lib/libx.so", "abs", "empty", "tmp"); err != nil {
		t.Fatal(err)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := New(ctx, image(t, []ent{file("a", "x")})); err == nil {
		t.Fatal("New with a canceled context succeeded")
	}
}

func TestLayerFromTarball(t *testing.T) {
	// A gzip layer through the real ggcr path.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBytes(t, file("x", "gz")))
	zw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, newFS(t, img), map[string]string{"x": "file:gz"})
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		raw, want string
		warn      bool
	}{
		{"etc/passwd", "etc/passwd", false},
		{"./etc/", "etc", false},
		{"./", ".", false},
		{"/etc/x", "etc/x", true},
		{"a/../b", "b", true},
		{"../x", "", true},
		{"a/../../x", "", true},
		{"/../x", "x", true},
		{"/", ".", false},
		{"x\x00y", "", true},
		{"..", "", true},
	}
	for _, tt := range tests {
		b := &builder{fs: &FS{}}
		got := b.cleanName(0, tt.raw)
		if got != tt.want || (len(b.fs.warnings) > 0) != tt.warn {
			t.Errorf("cleanName(%q) = %q, warnings %v; want %q, warning %v", tt.raw, got, b.fs.warnings, tt.want, tt.warn)
		}
	}
}

func TestConcurrentReads(t *testing.T) {
	var ents []ent
	for i := range 20 {
		ents = append(ents, file("d/f"+itoa8(int64(i)), strings.Repeat(itoa8(int64(i)), 100)))
	}
	for _, opts := range [][]Option{nil, {WithSpoolDir(t.TempDir())}} {
		f := newFS(t, image(t, ents, []ent{sym("l", "d")}), opts...)
		errc := make(chan error, 40)
		for g := range 40 {
			go func() {
				i := g % 20
				b, err := f.ReadFile("l/f" + itoa8(int64(i)))
				if err == nil && string(b) != strings.Repeat(itoa8(int64(i)), 100) {
					err = errors.New("wrong content")
				}
				errc <- err
			}()
		}
		for range 40 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestReadFiles(t *testing.T) {
	img := image(t,
		[]ent{file("a", "A"), file("b", "B"), file("c", "C"), sym("la", "a")},
		[]ent{file("b", "B2"), hard("h", "c"), file("kept", "K")},
	)
	names := []string{"b", "la", "h", "c", "kept", "a"}
	want := map[string]string{"a": "A", "la": "A", "b": "B2", "c": "C", "h": "C", "kept": "K"}
	for _, opts := range [][]Option{nil, {WithSpoolDir(t.TempDir()), WithContents(func(p string) bool { return p == "kept" })}} {
		f := newFS(t, img, opts...)
		got := map[string]string{}
		var order []string
		err := f.ReadFiles(t.Context(), names, func(name string, data []byte) error {
			got[name] = string(data)
			order = append(order, name)
			return nil
		})
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("ReadFiles = %q, %v; want %q", got, err, want)
		}
		t.Logf("order %q", order)
	}
	f := newFS(t, img)
	if err := f.ReadFiles(t.Context(), []string{"a", "missing"}, func(string, []byte) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFiles(missing) = %v; want not exist", err)
	}
	stop := errors.New("stop")
	if err := f.ReadFiles(t.Context(), names, func(string, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ReadFiles with a failing fn = %v", err)
	}
}
