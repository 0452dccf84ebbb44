package inventory

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/drydock-project/drydock/internal/deb822"
)

const statusBasic = `Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6320
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Internet.
 .
 It provides the libssl and libcrypto shared libraries.

Package: libssl3
Status: install ok installed
Architecture: i386
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1
Installed-Size: 6000

Package: nginx-light
Status: hold ok installed
Architecture: amd64
Source: nginx (1.22.1-9)
Version: 1.22.1-9+b1
Maintainer: Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: purged
Status: purge ok not-installed
Architecture: amd64

Package: wanted-gone
Status: deinstall ok installed
Architecture: amd64
Version: 1.0

Package: half
Status: install reinstreq half-installed
Architecture: all
Version: 2:1.0-1

Package: unpacked
Status: install ok unpacked
Architecture: amd64
Version: 1.0-1

Package: nostatus
Architecture: amd64
Version: 0.1
`

func TestDpkgStatus(t *testing.T) {
	fsys := fstest.MapFS{"var/lib/dpkg/status": {Data: []byte(statusBasic)}}
	got, err := Inventory(context.Background(), fsys, mustDpkg(t))
	if err != nil {
		t.Fatal(err)
	}
	db := "var/lib/dpkg/status"
	want := []Package{
		{Name: "half", Version: "2:1.0-1", Arch: "all", SourceName: "half", SourceVersion: "2:1.0-1", Ecosystem: "deb", Status: "install reinstreq half-installed", DBPath: db},
		{Name: "libssl3", Version: "3.0.15-1~deb12u1", Arch: "amd64", SourceName: "openssl", SourceVersion: "3.0.15-1~deb12u1", Ecosystem: "deb", Status: "install ok installed",
			Maintainer: "Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>", InstalledSize: 6320 * 1024, DBPath: db},
		{Name: "libssl3", Version: "3.0.15-1~deb12u1", Arch: "i386", SourceName: "openssl", SourceVersion: "3.0.15-1~deb12u1", Ecosystem: "deb", Status: "install ok installed", InstalledSize: 6000 * 1024, DBPath: db},
		{Name: "nginx-light", Version: "1.22.1-9+b1", Arch: "amd64", SourceName: "nginx", SourceVersion: "1.22.1-9", Ecosystem: "deb", Status: "hold ok installed",
			Maintainer: "Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>", DBPath: db},
		{Name: "nostatus", Version: "0.1", Arch: "amd64", SourceName: "nostatus", SourceVersion: "0.1", Ecosystem: "deb", DBPath: db},
		{Name: "unpacked", Version: "1.0-1", Arch: "amd64", SourceName: "unpacked", SourceVersion: "1.0-1", Ecosystem: "deb", Status: "install ok unpacked", DBPath: db},
	}
	if !reflect.DeepEqual(got.Packages, want) {
		t.Errorf("packages:\n got %+v\nwant %+v", got.Packages, want)
	}
	if got.SkippedTotal != 0 || len(got.Skipped) != 0 {
		t.Errorf("skipped %d: %v", got.SkippedTotal, got.Skipped)
	}
	if want := []AnalyzerInfo{{Type: "dpkg", Version: 1}}; !reflect.DeepEqual(got.Analyzers, want) {
		t.Errorf("analyzers = %v, want %v", got.Analyzers, want)
	}
}

func TestDpkgInstalled(t *testing.T) {
	tests := map[string]bool{
		"install ok installed":             true,
		"hold ok installed":                true,
		"install ok triggers-pending":      true,
		"install ok triggers-awaited":      true,
		"install ok half-configured":       true,
		"install ok unpacked":              true,
		"install reinstreq half-installed": true,
		"deinstall ok installed":           false,
		"purge ok installed":               false,
		"install ok config-files":          false,
		"install ok not-installed":         false,
		"unknown ok not-installed":         false,
		"install ok":                       false,
		"":                                 false,
		"install ok installed extra":       false,
	}
	for status, want := range tests {
		if got := dpkgInstalled(status); got != want {
			t.Errorf("dpkgInstalled(%q) = %v, want %v", status, got, want)
		}
	}
}

func TestDpkgSource(t *testing.T) {
	tests := []struct {
		src, name, ver string
		bad            bool
	}{
		{src: "openssl", name: "openssl"},
		{src: "nginx (1.22.1-9)", name: "nginx", ver: "1.22.1-9"},
		{src: "glibc (2.36-9+deb12u10)", name: "glibc", ver: "2.36-9+deb12u10"},
		{src: "gcc-12 ( 12.2.0-14 )", name: "gcc-12", ver: "12.2.0-14"},
		{src: "Bad", bad: true},
		{src: "a (1.0", bad: true},
		{src: "a 1.0", bad: true},
		{src: "a (not a version)", bad: true},
		{src: "a ()", bad: true},
	}
	for _, tc := range tests {
		name, ver, err := parseDebSource(tc.src)
		if tc.bad {
			if err == nil {
				t.Errorf("parseDebSource(%q) = %q, %q; want an error", tc.src, name, ver)
			}
			continue
		}
		if err != nil || name != tc.name || ver != tc.ver {
			t.Errorf("parseDebSource(%q) = %q, %q, %v; want %q, %q", tc.src, name, ver, err, tc.name, tc.ver)
		}
	}
}

func TestDpkgMalformedStanzas(t *testing.T) {
	const src = "Package: good\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n" +
		"Package: noversion\nStatus: install ok installed\nArchitecture: amd64\n\n" +
		"Status: install ok installed\nVersion: 1.0\n\n" +
		"Package: BadName\nStatus: install ok installed\nVersion: 1.0\n\n" +
		"Package: badver\nStatus: install ok installed\nVersion: v1.0\n\n" +
		"Package: badarch\nStatus: install ok installed\nVersion: 1.0\nArchitecture: AMD64\n\n" +
		"Package: badsize\nStatus: install ok installed\nVersion: 1.0\nInstalled-Size: lots\n\n" +
		"Package: badsrc\nStatus: install ok installed\nVersion: 1.0\nSource: x (y\n\n" +
		"Package: \xff\xfe\nStatus: install ok installed\nVersion: 1.0\n\n" +
		"garbage line\n\n" +
		"Package: utf8\nStatus: install ok installed\nVersion: 1.0\nMaintainer: J\xffrg\n"
	fsys := fstest.MapFS{"var/lib/dpkg/status": {Data: []byte(src)}}
	pkgs, err := mustDpkg(t).Analyze(context.Background(), fsys)
	var partial *PartialError
	if !errors.As(err, &partial) {
		t.Fatalf("error = %v, want *PartialError", err)
	}
	if partial.Total != 9 || len(partial.Skipped) != 9 {
		t.Errorf("skipped %d (%d kept), want 9: %v", partial.Total, len(partial.Skipped), partial.Skipped)
	}
	for _, e := range partial.Skipped {
		if e.Path != "var/lib/dpkg/status" || e.Line == 0 || !strings.Contains(e.Error(), "var/lib/dpkg/status:") {
			t.Errorf("entry error %q lacks path or line", e)
		}
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"good", "utf8"}) {
		t.Errorf("packages = %v, want good, utf8", names)
	}
	if m := pkgs[1].Maintainer; m != "J\uFFFDrg" {
		t.Errorf("maintainer = %q, want invalid UTF-8 replaced", m)
	}

	// Inventory reports the skipped entries and keeps going.
	res, err := Inventory(context.Background(), fsys, mustDpkg(t))
	if err != nil || len(res.Packages) != 2 || res.SkippedTotal != 9 {
		t.Errorf("Inventory = %d packages, %d skipped, %v", len(res.Packages), res.SkippedTotal, err)
	}
}

func TestDpkgStatusD(t *testing.T) {
	fsys := fstest.MapFS{
		"var/lib/dpkg/status.d/base":            {Data: []byte("Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u8\nArchitecture: amd64\n")},
		"var/lib/dpkg/status.d/base.md5sums":    {Data: []byte("0123456789abcdef0123456789abcdef  etc/debian_version\n0123456789abcdef0123456789abcdef  usr/lib/os-release\n")},
		"var/lib/dpkg/status.d/libssl3":         {Data: []byte("Package: libssl3\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\nSource: openssl\n")},
		"var/lib/dpkg/status.d/libssl3.md5sums": {Data: []byte("not a status file at all\n")},
		"var/lib/dpkg/status.d/.hidden":         {Data: []byte("junk")},
		"var/lib/dpkg/status.d/sub/x":           {Data: []byte("Package: nested\nVersion: 1\n")},
	}
	d := mustDpkg(t, WithFiles())
	res, err := Inventory(context.Background(), fsys, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 2 {
		t.Fatalf("packages = %+v, want base-files and libssl3", res.Packages)
	}
	base, ssl := res.Packages[0], res.Packages[1]
	if base.Name != "base-files" || base.DBPath != "var/lib/dpkg/status.d/base" {
		t.Errorf("first package %+v", base)
	}
	if want := []string{"/etc/debian_version", "/usr/lib/os-release"}; !slices.Equal(base.Files, want) {
		t.Errorf("base-files files = %q, want %q", base.Files, want)
	}
	if ssl.Name != "libssl3" || ssl.SourceName != "openssl" || ssl.SourceVersion != "3.0.15-1~deb12u1" || ssl.DBPath != "var/lib/dpkg/status.d/libssl3" {
		t.Errorf("second package %+v", ssl)
	}
}

func TestDpkgFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"var/lib/dpkg/status": {Data: []byte(statusBasic)},
		// Multi-Arch: same packages have an arch-qualified list.
		"var/lib/dpkg/info/libssl3:amd64.list": {Data: []byte("/.\n/usr\n/usr/lib/x86_64-linux-gnu/libssl.so.3\n/usr\n")},
		"var/lib/dpkg/info/nginx-light.list":   {Data: []byte("/.\n/usr/sbin/nginx\n/etc/nginx\n")},
	}
	for _, withFiles := range []bool{false, true} {
		var opts []Option
		if withFiles {
			opts = append(opts, WithFiles())
		}
		res, err := Inventory(context.Background(), fsys, mustDpkg(t, opts...))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]string{}
		for _, p := range res.Packages {
			if p.Files != nil {
				files[p.Name+":"+p.Arch] = p.Files
			}
		}
		want := map[string][]string{}
		if withFiles {
			want = map[string][]string{
				"libssl3:amd64":     {"/usr", "/usr/lib/x86_64-linux-gnu/libssl.so.3"},
				"nginx-light:amd64": {"/etc/nginx", "/usr/sbin/nginx"},
			}
		}
		if !reflect.DeepEqual(files, want) {
			t.Errorf("WithFiles=%v: files = %q, want %q", withFiles, files, want)
		}
	}
}

func TestDpkgAbsentAndBroken(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		opts    []Option
		wantErr string
	}{
		{name: "no database", fsys: fstest.MapFS{"etc/os-release": {Data: []byte("ID=debian\n")}}},
		{name: "status is a directory", fsys: fstest.MapFS{"var/lib/dpkg/status/x": {}}, wantErr: "var/lib/dpkg/status: not a regular file"},
		{name: "status too big", fsys: fstest.MapFS{"var/lib/dpkg/status": {Data: []byte(statusBasic)}}, opts: []Option{WithMaxFileSize(100)}, wantErr: "var/lib/dpkg/status is 1"},
		{name: "line too long", fsys: fstest.MapFS{"var/lib/dpkg/status": {Data: []byte("Package: a\nX: " + strings.Repeat("y", deb822.MaxLineLen) + "\n")}}, wantErr: "parsing dpkg database var/lib/dpkg/status: line 2: line too long"},
		{name: "status.d entry too big", fsys: fstest.MapFS{"var/lib/dpkg/status.d/a": {Data: []byte(statusBasic)}}, opts: []Option{WithMaxFileSize(100)}, wantErr: "var/lib/dpkg/status.d/a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := mustDpkg(t, tc.opts...).Analyze(context.Background(), tc.fsys)
			if tc.wantErr == "" {
				if err != nil || len(pkgs) != 0 {
					t.Fatalf("Analyze = %v, %v; want nothing", pkgs, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDpkgCancelled(t *testing.T) {
	var b strings.Builder
	for range 5000 {
		b.WriteString("Package: a\nStatus: install ok installed\nVersion: 1\n\n")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fsys := fstest.MapFS{"var/lib/dpkg/status": {Data: []byte(b.String())}}
	if _, err := mustDpkg(t).Analyze(ctx, fsys); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestRequired(t *testing.T) {
	dpkg, dpkgFiles := mustDpkg(t), mustDpkg(t, WithFiles())
	apk, rpm := &APK{}, &RPM{}
	tests := []struct {
		path                      string
		dpkg, dpkgFiles, apk, rpm bool
	}{
		{path: "var/lib/dpkg/status", dpkg: true, dpkgFiles: true},
		{path: "var/lib/dpkg/status-old"},
		{path: "/var/lib/dpkg/status"},
		{path: "var/lib/dpkg/status.d/libc6", dpkg: true, dpkgFiles: true},
		{path: "var/lib/dpkg/status.d/libc6.md5sums", dpkgFiles: true},
		{path: "var/lib/dpkg/status.d/.wh.libc6"},
		{path: "var/lib/dpkg/status.d/sub/libc6"},
		{path: "var/lib/dpkg/info/libc6:amd64.list", dpkgFiles: true},
		{path: "var/lib/dpkg/info/libc6.md5sums"},
		{path: "lib/apk/db/installed", apk: true},
		{path: "lib/apk/db/lock"},
		{path: "var/lib/rpm/Packages", rpm: true},
		{path: "var/lib/rpm/Packages.db", rpm: true},
		{path: "var/lib/rpm/rpmdb.sqlite", rpm: true},
		{path: "var/lib/rpm/rpmdb.sqlite-wal", rpm: true},
		{path: "usr/lib/sysimage/rpm/rpmdb.sqlite", rpm: true},
		{path: "usr/lib/sysimage/rpm/Index.db"},
		{path: "var/lib/rpm/Name"},
		{path: "usr/var/lib/rpm/Packages"},
	}
	for _, tc := range tests {
		for _, c := range []struct {
			a    Analyzer
			name string
			want bool
		}{{dpkg, "dpkg", tc.dpkg}, {dpkgFiles, "dpkg+files", tc.dpkgFiles}, {apk, "apk", tc.apk}, {rpm, "rpm", tc.rpm}} {
			if got := c.a.Required(tc.path); got != c.want {
				t.Errorf("%s.Required(%q) = %v, want %v", c.name, tc.path, got, c.want)
			}
		}
	}
}

func mustDpkg(t testing.TB, opts ...Option) *Dpkg {
	t.Helper()
	d, err := NewDpkg(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func FuzzDpkgStatus(f *testing.F) {
	f.Add(statusBasic)
	f.Add("Package: a\nStatus: install ok installed\nVersion: 1:2~3+4-5\nSource: b (1)\nInstalled-Size: 99999999999999999\n")
	f.Add("Package: a\nVersion: 1\nSource: b (\n")
	f.Fuzz(func(t *testing.T, src string) {
		var partial PartialError
		pkgs, err := parseDpkgStatus(context.Background(), strings.NewReader(src), "status", &partial, nil)
		if err != nil && !errors.Is(err, deb822.ErrLineTooLong) {
			t.Fatalf("parseDpkgStatus: %v", err)
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion == "" || p.Ecosystem != "deb" || p.InstalledSize < 0 {
				t.Fatalf("incomplete package %+v", p)
			}
		}
		if partial.Total < len(partial.Skipped) || len(partial.Skipped) > MaxSkipped {
			t.Fatalf("partial error counts %d / %d", partial.Total, len(partial.Skipped))
		}
	})
}
