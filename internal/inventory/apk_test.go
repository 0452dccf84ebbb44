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

// apkInstalledSample follows lib/apk/db/installed as apk-tools writes it
// (alpine 3.20's musl and libssl3 entries, trimmed).
const apkInstalledSample = `C:Q1mWObzyPrCbsDA6fNfsz6nMEHP1E=
P:musl
V:1.2.5-r0
A:x86_64
S:410786
I:655360
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1711731133
c:0d3d63a8ce6da2d5a27c43c07e1da2c8b3d8d6a0
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1RDHZ9JBm3R8vb8zhSFbW1Pv6Xbo=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1cFuWo2/nGhLMlZRT4xJAE7IqKjE=
P:libssl3
V:3.3.2-r0
A:x86_64
S:358829
I:770048
T:SSL shared libraries
o:openssl
m:Natanael Copa <ncopa@alpinelinux.org>
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3
F:lib
R:libssl.so.3
F:usr
F:usr/lib
R:libssl.so.3

P:busybox-binsh
V:1.36.1-r29
A:x86_64
I:1
o:busybox
R:orphan-file
`

func TestAPKInstalled(t *testing.T) {
	fsys := fstest.MapFS{"lib/apk/db/installed": {Data: []byte(apkInstalledSample)}}
	for _, withFiles := range []bool{false, true} {
		var opts []Option
		if withFiles {
			opts = append(opts, WithFiles())
		}
		a, err := NewAPK(opts...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Inventory(context.Background(), fsys, a)
		if err != nil {
			t.Fatal(err)
		}
		db := "lib/apk/db/installed"
		want := []Package{
			{Name: "busybox-binsh", Version: "1.36.1-r29", Arch: "x86_64", SourceName: "busybox", SourceVersion: "1.36.1-r29", Ecosystem: "apk", Status: "installed", InstalledSize: 1, DBPath: db},
			{Name: "libssl3", Version: "3.3.2-r0", Arch: "x86_64", SourceName: "openssl", SourceVersion: "3.3.2-r0", Ecosystem: "apk", Status: "installed",
				Maintainer: "Natanael Copa <ncopa@alpinelinux.org>", InstalledSize: 770048, DBPath: db},
			{Name: "musl", Version: "1.2.5-r0", Arch: "x86_64", SourceName: "musl", SourceVersion: "1.2.5-r0", Ecosystem: "apk", Status: "installed",
				Maintainer: "Natanael Copa <ncopa@alpinelinux.org>", InstalledSize: 655360, DBPath: db},
		}
		if withFiles {
			want[0].Files = []string{"/orphan-file"}
			want[1].Files = []string{"/lib/libssl.so.3", "/usr/lib/libssl.so.3"}
			want[2].Files = []string{"/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"}
		}
		if !reflect.DeepEqual(res.Packages, want) {
			t.Errorf("WithFiles=%v:\n got %+v\nwant %+v", withFiles, res.Packages, want)
		}
	}
}

func TestAPKMalformed(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // names of the packages read
		skipped   int
		wantErr   string // a fatal error
	}{
		{name: "empty", src: ""},
		{name: "only blank lines", src: "\n\n\r\n"},
		{name: "CRLF", src: "P:a\r\nV:1.0-r0\r\n", want: []string{"a"}},
		{name: "missing version", src: "P:a\n\nP:b\nV:1\n", want: []string{"b"}, skipped: 1},
		{name: "missing name", src: "V:1\n\nP:b\nV:1\n", want: []string{"b"}, skipped: 1},
		{name: "bad version", src: "P:a\nV:one\n", skipped: 1},
		{name: "bad line", src: "P:a\nV:1\nnonsense\n\nP:b\nV:1\n", want: []string{"b"}, skipped: 1},
		{name: "duplicate P", src: "P:a\nP:b\nV:1\n", skipped: 1},
		{name: "bad size", src: "P:a\nV:1\nI:-5\n", skipped: 1},
		{name: "bad name", src: "P:a b\nV:1\n", skipped: 1},
		{name: "bad origin", src: "P:a\nV:1\no:x/y\n", skipped: 1},
		{name: "bad arch", src: "P:a\nV:1\nA:x86 64\n", skipped: 1},
		{name: "unknown keys ignored", src: "P:a\nV:1\nq:?\nZ:\n", want: []string{"a"}},
		{name: "bad utf-8 maintainer kept", src: "P:a\nV:1\nm:\xff\n", want: []string{"a"}},
		{name: "line too long", src: "P:a\nT:" + strings.Repeat("x", deb822.MaxLineLen) + "\n", wantErr: "line 2: line too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"lib/apk/db/installed": {Data: []byte(tc.src)}}
			pkgs, err := (&APK{}).Analyze(context.Background(), fsys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "lib/apk/db/installed") {
					t.Fatalf("error = %v, want one naming the file and %q", err, tc.wantErr)
				}
				return
			}
			var partial *PartialError
			switch {
			case tc.skipped == 0 && err != nil:
				t.Fatalf("error = %v", err)
			case tc.skipped > 0 && !errors.As(err, &partial):
				t.Fatalf("error = %v, want *PartialError", err)
			case tc.skipped > 0 && partial.Total != tc.skipped:
				t.Errorf("skipped %d, want %d: %v", partial.Total, tc.skipped, partial)
			}
			var names []string
			for _, p := range pkgs {
				names = append(names, p.Name)
				if p.Maintainer != strings.ToValidUTF8(p.Maintainer, "") {
					t.Errorf("maintainer %q is not valid UTF-8", p.Maintainer)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("packages = %q, want %q", names, tc.want)
			}
		})
	}
}

func TestAPKAbsent(t *testing.T) {
	pkgs, err := (&APK{}).Analyze(context.Background(), fstest.MapFS{})
	if err != nil || pkgs != nil {
		t.Fatalf("Analyze = %v, %v; want nothing", pkgs, err)
	}
}

func FuzzAPKInstalled(f *testing.F) {
	f.Add(apkInstalledSample)
	f.Add("P:a\nV:1\nR:x\n\nP:a\nP:b\n")
	f.Add("F:\nR:../../etc/passwd\nP:a\nV:1_rc1-r2\nI:99999999999999999999\n")
	f.Fuzz(func(t *testing.T, src string) {
		var partial PartialError
		pkgs, err := parseAPKInstalled(context.Background(), strings.NewReader(src), "installed", true, &partial, nil)
		if err != nil && !errors.Is(err, deb822.ErrLineTooLong) {
			t.Fatalf("parseAPKInstalled: %v", err)
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion != p.Version || p.Ecosystem != "apk" || p.InstalledSize < 0 {
				t.Fatalf("incomplete package %+v", p)
			}
			for _, f := range p.Files {
				if !strings.HasPrefix(f, "/") {
					t.Fatalf("relative file %q", f)
				}
			}
		}
	})
}
