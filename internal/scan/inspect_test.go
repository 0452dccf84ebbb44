package scan

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/rootfs"
)

// tent is one tar entry of a test layer: a file (body), a directory
// (name ending in "/"), a symbolic link ("->target") or a hardlink
// ("=>target").
type tent struct{ name, body string }

func gzLayer(t testing.TB, ents ...tent) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body)), Format: tar.FormatPAX}
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		case strings.HasPrefix(e.body, "->"):
			h.Typeflag, h.Size, h.Linkname = tar.TypeSymlink, 0, strings.TrimPrefix(e.body, "->")
		case strings.HasPrefix(e.body, "=>"):
			h.Typeflag, h.Size, h.Linkname = tar.TypeLink, 0, strings.TrimPrefix(e.body, "=>")
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, e.body)
		}
	}
	tw.Close()
	zw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func layeredImage(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// debianBase is a bookworm layer with the test status.
func debianBase(t testing.TB) v1.Layer {
	return gzLayer(t, tent{"etc/", ""}, tent{"etc/os-release", bookwormRelease}, tent{"etc/debian_version", "12.8\n"},
		tent{"var/", ""}, tent{"var/lib/", ""}, tent{"var/lib/dpkg/", ""}, tent{"var/lib/dpkg/status", status},
		tent{"var/lib/dpkg/info/", ""}, tent{"var/lib/dpkg/info/bar.list", "/usr/share/bar\n"})
}

const distrolessStanza = "Package: libssl3\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.15-1~deb12u1\n"

// wantRefusal checks err is a permanent refusal of kind whose text holds
// every part of has.
func wantRefusal(t *testing.T, err error, kind refusal.Kind, has ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want a %s refusal", kind)
	}
	if k, _ := refusal.KindOf(err); k != kind {
		t.Fatalf("error %v: kind %q, want %q", err, k, kind)
	}
	if !refusal.IsPermanent(err) {
		t.Errorf("error %v is not permanent", err)
	}
	for _, h := range has {
		if !strings.Contains(err.Error(), h) {
			t.Errorf("error %q does not contain %q", err, h)
		}
	}
}

func digestOf(t testing.TB, l v1.Layer) string {
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestUnverifiableImages: an image whose package database is hidden, empty
// or missing is refused as unverifiable, never scanned as "0 findings";
// honest changes to the database are not.
func TestUnverifiableImages(t *testing.T) {
	base := debianBase(t)
	whiteStatus := gzLayer(t, tent{"var/lib/dpkg/.wh.status", ""})
	opaque := gzLayer(t, tent{"var/lib/dpkg/", ""}, tent{"var/lib/dpkg/.wh..wh..opq", ""}, tent{"var/lib/dpkg/info/", ""})
	whiteParent := gzLayer(t, tent{"var/.wh.lib", ""})
	emptied := gzLayer(t, tent{"var/lib/dpkg/status", ""})
	deinstalled := gzLayer(t, tent{"var/lib/dpkg/status", "Package: libssl3\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n"})
	symlinked := gzLayer(t, tent{"var/lib/.wh.dpkg", ""}, tent{"var/lib/dpkg", "->/nonexistent"})
	distroless := gzLayer(t, tent{"etc/os-release", bookwormRelease},
		tent{"var/lib/dpkg/status.d/libssl3", distrolessStanza}, tent{"var/lib/dpkg/status.d/libssl3.md5sums", "x  usr/lib/libssl.so.3\n"},
		tent{"var/lib/dpkg/status.d/tzdata", "Package: tzdata\nArchitecture: all\nVersion: 2024a-0+deb12u1\n"})
	tests := []struct {
		name   string
		layers []v1.Layer
		has    []string // "" entries: a clean scan is wanted
	}{
		{"whiteout of status", []v1.Layer{base, whiteStatus},
			[]string{"Debian GNU/Linux 12 (bookworm): its dpkg database file var/lib/dpkg/status (written by layer 0, " + digestOf(t, base),
				"is removed by layer 1 (" + digestOf(t, whiteStatus) + "): a whiteout of var/lib/dpkg/status", "its packages cannot be known"}},
		{"opaque whiteout of var/lib/dpkg", []v1.Layer{base, opaque}, []string{"an opaque whiteout of var/lib/dpkg"}},
		{"whiteout of var/lib", []v1.Layer{base, whiteParent}, []string{"a whiteout of var/lib"}},
		{"status emptied", []v1.Layer{base, emptied}, []string{"var/lib/dpkg/status lists no installed package (0 bytes)"}},
		{"only removed packages", []v1.Layer{base, deinstalled}, []string{"lists no installed package"}},
		{"dpkg directory replaced by a symbolic link", []v1.Layer{base, symlinked},
			[]string{"removed by layer 1 (" + digestOf(t, symlinked) + "): a whiteout of var/lib/dpkg"}},
		{"dpkg directory replaced by a symbolic link, no whiteout", []v1.Layer{base, gzLayer(t, tent{"var/lib/dpkg", "->../../tmp"})},
			[]string{"a symbolic link in place of the directory var/lib/dpkg"}},
		{"no database at all", []v1.Layer{gzLayer(t, tent{"etc/os-release", bookwormRelease})},
			[]string{"no installed package in its dpkg database (var/lib/dpkg/status, var/lib/dpkg/status.d)"}},
		{"a distroless package removed", []v1.Layer{distroless, gzLayer(t, tent{"var/lib/dpkg/status.d/.wh.libssl3", ""})},
			[]string{"var/lib/dpkg/status.d/libssl3 (written by layer 0", "a whiteout of var/lib/dpkg/status.d/libssl3"}},
		{"status hidden, a fake status.d added", []v1.Layer{base, gzLayer(t, tent{"var/lib/dpkg/.wh.status", ""},
			tent{"var/lib/dpkg/status.d/tzdata", "Package: tzdata\nArchitecture: all\nVersion: 2024a-0+deb12u1\n"})},
			[]string{"var/lib/dpkg/status (written by layer 0"}},
		{"alpine without its database", []v1.Layer{gzLayer(t, tent{"etc/os-release", "ID=alpine\nVERSION_ID=3.21.0\n"})},
			[]string{"no installed package in its apk database (lib/apk/db/installed)"}},
		{"alpine database whited out", []v1.Layer{gzLayer(t, tent{"etc/os-release", "ID=alpine\nVERSION_ID=3.21.0\n"},
			tent{"lib/apk/db/installed", "P:musl\nV:1.2.5-r8\nA:x86_64\n\n"}), gzLayer(t, tent{"lib/apk/db/.wh.installed", ""})},
			[]string{"its apk database file lib/apk/db/installed (written by layer 0"}},
		{"rhel family without rpm database", []v1.Layer{gzLayer(t, tent{"etc/os-release", "ID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=9.3\n"})},
			[]string{"no installed package in its rpm database"}},
		{"debian OS over an apk database", []v1.Layer{gzLayer(t, tent{"etc/os-release", bookwormRelease},
			tent{"lib/apk/db/installed", "P:musl\nV:1.2.5-r8\nA:x86_64\n\n"})}, []string{"no installed package in its dpkg database"}},
		{"status is a directory", []v1.Layer{base, gzLayer(t, tent{"var/lib/dpkg/.wh.status", ""}, tent{"var/lib/dpkg/status/", ""}, tent{"var/lib/dpkg/status/x", "y"})},
			[]string{"var/lib/dpkg/status: not a regular file"}},

		// Honest images.
		{"status rewritten by a later layer", []v1.Layer{base, gzLayer(t, tent{"var/lib/dpkg/status", status + "\nPackage: newpkg\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n"})}, nil},
		{"package removed: its file list whited out", []v1.Layer{base, gzLayer(t, tent{"var/lib/dpkg/info/.wh.bar.list", ""})}, nil},
		{"status whited out then written again", []v1.Layer{base, whiteStatus, gzLayer(t, tent{"var/lib/dpkg/status", status})}, nil},
		{"distroless", []v1.Layer{distroless}, nil},
		{"distroless md5sums removed", []v1.Layer{distroless, gzLayer(t, tent{"var/lib/dpkg/status.d/.wh.libssl3.md5sums", ""})}, nil},
	}
	s, err := New(testDB(), clockAt("2025-02-13"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := s.Image(t.Context(), layeredImage(t, tt.layers...))
			if tt.has == nil {
				if err != nil {
					t.Fatalf("Image: %v", err)
				}
				if rep.Status != StatusOK || rep.Packages == 0 {
					t.Errorf("status %s, %d packages", rep.Status, rep.Packages)
				}
				return
			}
			if rep != nil {
				t.Errorf("a report with %d findings for an unverifiable image", len(rep.Findings))
			}
			t.Log(err)
			wantRefusal(t, err, refusal.Unverifiable, tt.has...)
		})
	}
}

// TestUnverifiableFS: the same rules on a plain fs.FS (no layers).
func TestUnverifiableFS(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		has  string
	}{
		{"empty status", fstest.MapFS{"etc/os-release": {Data: []byte(bookwormRelease)}, "var/lib/dpkg/status": {}}, "lists no installed package"},
		{"no database", fstest.MapFS{"etc/os-release": {Data: []byte(bookwormRelease)}}, "no installed package in its dpkg database"},
		{"only malformed stanzas", fstest.MapFS{"etc/os-release": {Data: []byte(bookwormRelease)},
			"var/lib/dpkg/status": {Data: []byte("Package: BAD NAME\nVersion: 1\nStatus: install ok installed\n")}}, "lists no installed package"},
		{"empty apk database", fstest.MapFS{"etc/os-release": {Data: []byte("ID=alpine\nVERSION_ID=3.21.0\n")}, "lib/apk/db/installed": {}},
			"lib/apk/db/installed lists no installed package"},
		{"a line too long", fstest.MapFS{"etc/os-release": {Data: []byte(bookwormRelease)},
			"var/lib/dpkg/status": {Data: []byte("Package: a\nX: " + strings.Repeat("y", 1<<20+1) + "\n")}}, "parsing dpkg database var/lib/dpkg/status"},
	}
	s, _ := New(testDB(), clockAt("2025-02-13"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.FS(t.Context(), tt.fsys)
			wantRefusal(t, err, refusal.Unverifiable, tt.has)
		})
	}
	// Without the family's analyzer, nothing can be verified.
	apk, _ := inventory.NewAPK()
	s2, _ := New(testDB(), clockAt("2025-02-13"), WithAnalyzers(apk))
	_, err := s2.FS(t.Context(), testFS(bookwormRelease))
	wantRefusal(t, err, refusal.Unverifiable, "no dpkg analyzer ran")
}

// TestHostileImages: what the patcher refuses, the scanner refuses too,
// naming the entry.
func TestHostileImages(t *testing.T) {
	base := debianBase(t)
	tests := []struct {
		name  string
		layer v1.Layer
		has   string
	}{
		{"dot-dot entry", gzLayer(t, tent{"../../etc/cron.d/x", "* * * * * root sh\n"}), `entry "../../etc/cron.d/x": name escapes the image root`},
		{"inner dot-dot", gzLayer(t, tent{"usr/../../x", "x"}), `entry "usr/../../x"`},
		{"hardlink out", gzLayer(t, tent{"usr/bin/x", "=>../../../etc/shadow"}), `hardlink target "../../../etc/shadow" escapes`},
		{"symbolic link out", gzLayer(t, tent{"usr/lib/x", "->../../../../host"}), `symbolic link target "../../../../host" climbs above`},
	}
	s, _ := New(testDB(), clockAt("2025-02-13"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Image(t.Context(), layeredImage(t, base, tt.layer))
			wantRefusal(t, err, refusal.Hostile, "layer 1 ("+digestOf(t, tt.layer)+")", tt.has)
		})
	}
	// Absolute link targets are what runtimes resolve inside the root.
	rep, err := s.Image(t.Context(), layeredImage(t, base, gzLayer(t, tent{"usr/bin/awk", "->/etc/alternatives/awk"}, tent{"bin/h", "=>/etc/os-release"})))
	if err != nil || rep.Status != StatusOK {
		t.Fatalf("absolute links: %v", err)
	}
}

func TestLimitsRefused(t *testing.T) {
	var many strings.Builder
	for i := range 30 {
		fmt.Fprintf(&many, "Package: fake%d\nStatus: install ok installed\nVersion: 3.0.0-%d\nArchitecture: amd64\nSource: openssl\n\n", i, i)
	}
	manyFS := fstest.MapFS{"etc/os-release": {Data: []byte(bookwormRelease)}, "var/lib/dpkg/status": {Data: []byte(many.String())}}
	tests := []struct {
		name   string
		fsys   fstest.MapFS
		limits Limits
		has    string
	}{
		{"packages", manyFS, Limits{MaxPackages: 20}, "over the package limit: more than 20 installed packages (reading var/lib/dpkg/status), limit 20"},
		{"findings", manyFS, Limits{MaxFindings: 50}, "over the findings limit: more than 50 findings (reached while matching source package openssl), limit 50"},
		{"database bytes", manyFS, Limits{MaxDatabaseBytes: 1000}, "over the package database limit: var/lib/dpkg/status makes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(testDB(), clockAt("2025-02-13"), WithLimits(tt.limits))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.FS(t.Context(), tt.fsys)
			wantRefusal(t, err, refusal.OverLimit, tt.has)
		})
	}
	// Exactly at the limits: 30 packages, 3 findings each (0001, 0002 and
	// 0004; 0099's release does not apply).
	s, _ := New(testDB(), clockAt("2025-02-13"), WithLimits(Limits{MaxPackages: 30, MaxFindings: 90}))
	if rep, err := s.FS(t.Context(), manyFS); err != nil || rep.Packages != 30 || len(rep.Findings) != 90 {
		t.Fatalf("at the limits: %v", err)
	}
	if _, err := New(testDB(), WithLimits(Limits{MaxPackages: -1, MaxFindings: -2})); err == nil ||
		!strings.Contains(err.Error(), "limits.maxPackages: -1") || !strings.Contains(err.Error(), "limits.maxFindings: -2") {
		t.Errorf("negative limits: %v", err)
	}
	// A stored inventory is held to the scanner's limits too.
	cache := &mapCache{m: map[string]*Snapshot{}}
	img := imageOf(t, map[string]string{"etc/os-release": bookwormRelease, "var/lib/dpkg/status": many.String()})
	s, _ = New(testDB(), clockAt("2025-02-13"), WithInventoryCache(cache))
	if _, err := s.Image(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	s, _ = New(testDB(), clockAt("2025-02-13"), WithInventoryCache(cache), WithLimits(Limits{MaxPackages: 10}))
	_, err := s.Image(t.Context(), img)
	wantRefusal(t, err, refusal.OverLimit, "over the package limit: 30 installed packages, limit 10")
}

type mapCache struct{ m map[string]*Snapshot }

func (c *mapCache) Get(_ context.Context, k string) (*Snapshot, bool, error) {
	s, ok := c.m[k]
	return s, ok, nil
}

func (c *mapCache) Put(_ context.Context, k string, s *Snapshot) error { c.m[k] = s; return nil }

// TestRefusalsNotCached: a refused image leaves nothing in the inventory
// cache, so a rescan refuses it again.
func TestRefusalsNotCached(t *testing.T) {
	cache := &mapCache{m: map[string]*Snapshot{}}
	s, _ := New(testDB(), clockAt("2025-02-13"), WithInventoryCache(cache))
	img := layeredImage(t, debianBase(t), gzLayer(t, tent{"var/lib/dpkg/.wh.status", ""}))
	for range 2 {
		_, err := s.Image(t.Context(), img)
		wantRefusal(t, err, refusal.Unverifiable)
	}
	if len(cache.m) != 0 {
		t.Errorf("cache holds %d snapshots", len(cache.m))
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxFindings: 7}.WithDefaults()
	want := DefaultLimits()
	want.MaxFindings = 7
	if got != want {
		t.Errorf("WithDefaults = %+v, want %+v", got, want)
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Error(err)
	}
	if !errors.Is(refusal.New(refusal.OverLimit, "x"), &refusal.Error{Kind: refusal.OverLimit}) {
		t.Error("kind match")
	}
}

// FuzzInspect puts a fuzzed layer over a Debian base: Inspect never panics,
// refuses only with a permanent refusal, and never accepts a Debian image
// without an installed dpkg package (the "0 findings" of hole 4).
func FuzzInspect(f *testing.F) {
	seed := func(ents ...tent) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range ents {
			h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
			if strings.HasPrefix(e.body, "->") {
				h.Typeflag, h.Size, h.Linkname = tar.TypeSymlink, 0, e.body[2:]
			}
			tw.WriteHeader(h)
			if h.Typeflag == tar.TypeReg {
				io.WriteString(tw, e.body)
			}
		}
		tw.Close()
		return buf.Bytes()
	}
	f.Add(seed(tent{"var/lib/dpkg/.wh.status", ""}))
	f.Add(seed(tent{"var/lib/dpkg/status", ""}))
	f.Add(seed(tent{"var/lib/dpkg/status", "Package: a\nVersion: 1\nStatus: install ok installed\n"}))
	f.Add(seed(tent{"var/lib/.wh..wh..opq", ""}, tent{"var/lib/dpkg/status.d/a", "Package: a\nVersion: 1\n"}))
	f.Add(seed(tent{"var/lib/dpkg", "->/x"}, tent{"etc/os-release", "ID=alpine\n"}))
	f.Add(seed(tent{"../x", "y"}))
	f.Add([]byte{})
	base := debianBase(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return
		}
		img, err := mutate.AppendLayers(empty.Image, base, top)
		if err != nil {
			return // not a tar: mutate cannot even compute the diff_id
		}
		fsys, err := rootfs.New(t.Context(), img, Limits{MaxEntries: 1000, MaxLayerBytes: 1 << 20}.RootFSOptions()...)
		if err != nil {
			if !refusal.IsPermanent(err) {
				t.Fatalf("rootfs.New: %v is not a refusal", err)
			}
			return
		}
		defer fsys.Close()
		snap, err := Inspect(t.Context(), fsys, Limits{MaxPackages: 100})
		if err != nil {
			if _, ok := refusal.KindOf(err); !ok {
				var pe *fs.PathError
				if !errors.As(err, &pe) { // a lazily read file's stream: not a verdict
					t.Fatalf("Inspect: %v is not a refusal", err)
				}
			}
			return
		}
		if snap.Unsupported == "" && snap.OS.Family == osinfo.FamilyDebian {
			n := 0
			for _, p := range snap.Packages {
				if p.Ecosystem == "deb" {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("a Debian image accepted with no dpkg package: %+v", snap)
			}
		}
	})
}
