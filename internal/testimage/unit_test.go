package testimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1.10", "1.9", 1},
		{"1:1.0", "2.0", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0+deb12u1", -1},
		{"2.36-9+deb12u13", "2.36-9+deb12u14", -1},
		{"3.0.15-1~deb12u1", "3.0.16-1~deb12u1", -1},
		{"1.0-1", "1.0-1~bpo1", 1},
		{"7.88.1-10+deb12u12", "7.88.1-10+deb12u5", 1},
		{"1.0a", "1.0", 1},
		{"1.0a", "1.0+", -1},
		{"0:1.2", "1.2", 0},
		{"1.2-3", "1.2-03", 0},
		{"1.2~~", "1.2~", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestMirrorFrom(t *testing.T) {
	t.Setenv("DRYDOCK_TEST_MIRROR", "")
	write := func(t *testing.T, dir, name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		files map[string]string
		want  MirrorInfo
		err   error
	}{{
		name: "deb822 with security",
		files: map[string]string{"sources.list.d/debian.sources": "Types: deb\n# comment\nURIs: http://mirror.test/debian/\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /k.gpg\n\n" +
			"Types: deb\nURIs: http://sec.test/debian-security\nSuites: bookworm-security\nComponents: main\n"},
		want: MirrorInfo{URI: "http://mirror.test/debian", SecurityURI: "http://sec.test/debian-security", Keyring: "/k.gpg"},
	}, {
		name:  "one-line, security from the sibling path",
		files: map[string]string{"sources.list": "# x\ndeb-src http://src.test/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.test/debian bookworm main\n"},
		want:  MirrorInfo{URI: "http://mirror.test/debian", SecurityURI: "http://mirror.test/debian-security", Keyring: "/k.gpg"},
	}, {
		name:  "updates only is not a main suite",
		files: map[string]string{"sources.list": "deb http://mirror.test/debian bookworm-updates main\n"},
		err:   ErrNoMirror,
	}, {
		name: "disabled stanza",
		files: map[string]string{"sources.list.d/a.sources": "Types: deb\nEnabled: no\nURIs: http://off.test/debian\nSuites: bookworm\n\n" +
			"Types: deb\nURIs: http://on.test/debian\nSuites: trixie\n"},
		want: MirrorInfo{URI: "http://on.test/debian", SecurityURI: "http://on.test/debian-security", Keyring: DefaultKeyring},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				write(t, dir, name, content)
			}
			got, err := mirrorFrom(dir)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	status := `Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.15-1~deb12u1)
Version: 3.0.15-1~deb12u1
Description: Secure Sockets Layer toolkit
 multi-line
 .
 description

Package: removed
Status: deinstall ok config-files
Version: 1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b7
Source: bash
`
	got, err := parseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "libssl3", Version: "3.0.15-1~deb12u1", Arch: "amd64", Source: "openssl", SourceVersion: "3.0.15-1~deb12u1"},
		{Name: "bash", Version: "5.2.15-2+b7", Arch: "amd64", Source: "bash", SourceVersion: "5.2.15-2+b7"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestWithStatus(t *testing.T) {
	ps, err := parseControl(strings.NewReader("Package: tzdata\nVersion: 2024a-0+deb12u1\nDescription: time zone\n and daylight-saving time data\n"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := formatParagraph(&buf, withStatus(ps[0])); err != nil {
		t.Fatal(err)
	}
	want := "Package: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\nDescription: time zone\n and daylight-saving time data\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add("Package: a\nVersion: 1\n\nPackage: b\n x\n")
	f.Add(" continuation\n")
	f.Add("no colon\n")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parseControl(strings.NewReader(s))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, p := range ps {
			if err := formatParagraph(&buf, p); err != nil {
				t.Fatal(err)
			}
			buf.WriteString("\n")
		}
		if _, err := parseControl(&buf); err != nil {
			t.Fatalf("reparsing formatted output: %v", err)
		}
	})
}

// TestTarTree checks the layer writer on a small tree: sorted entries,
// clamped times, hard links, no device nodes or FIFOs, same bytes twice.
func TestTarTree(t *testing.T) {
	root := t.TempDir()
	mustWrite := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("usr/bin/b", "b")
	mustWrite("usr/bin/a", "a")
	mustWrite("etc/old", "old")
	old := time.Date(2020, 5, 1, 12, 0, 0, 500, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "etc/old"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "usr/bin/a"), filepath.Join(root, "usr/bin/c")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var b1, b2 bytes.Buffer
	if err := tarTree(root, &b1, epoch); err != nil {
		t.Fatal(err)
	}
	if err := tarTree(root, &b2, epoch); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Error("two archives of the same tree differ")
	}
	var names []string
	tr := tar.NewReader(&b1)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner names %q/%q leak from the host", h.Name, h.Uname, h.Gname)
		}
		switch h.Name {
		case "etc/old":
			if !h.ModTime.Equal(old.Truncate(time.Second)) {
				t.Errorf("etc/old mtime %v, want %v", h.ModTime, old)
			}
		case "usr/bin/a":
			if !h.ModTime.Equal(epoch) {
				t.Errorf("usr/bin/a mtime %v, want clamped to %v", h.ModTime, epoch)
			}
		case "usr/bin/c":
			if h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/a" {
				t.Errorf("usr/bin/c: type %c link %q, want hard link to usr/bin/a", h.Typeflag, h.Linkname)
			}
		case "bin":
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
				t.Errorf("bin: type %c link %q", h.Typeflag, h.Linkname)
			}
		}
	}
	want := "bin etc/ etc/old usr/ usr/bin/ usr/bin/a usr/bin/b usr/bin/c"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
}
