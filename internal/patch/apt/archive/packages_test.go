package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/deb822"
	"github.com/drydock-project/drydock/internal/patch/xzdec"
	"github.com/drydock-project/drydock/internal/testenv"
)

const packagesText = `Package: libssl3
Source: openssl (3.0.17-1~deb12u2)
Version: 3.0.17-1~deb12u3
Installed-Size: 6200
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Depends: libc6 (>= 2.34)
Pre-Depends: dpkg (>= 1.17)
Breaks: libssl1.1 (<< 1.1.1)
Provides: libssl
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation.
 .
 It contains the shared libraries.
Filename: pool/main/o/openssl/libssl3_3.0.17-1~deb12u3_amd64.deb
Size: 2028128
SHA256: 4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945

Package: tzdata
Version: 2025b-0+deb12u1
Architecture: all
Filename: pool/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb
Size: 259104
SHA256: 0000000000000000000000000000000000000000000000000000000000000001
`

func TestParsePackages(t *testing.T) {
	got, err := ParsePackages(strings.NewReader(packagesText), "P")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d packages", len(got))
	}
	p := got[0]
	if p.Package != "libssl3" || p.Source != "openssl" || p.SourceVersion != "3.0.17-1~deb12u2" || p.Version != "3.0.17-1~deb12u3" ||
		p.MultiArch != "same" || p.Depends != "libc6 (>= 2.34)" || p.PreDepends != "dpkg (>= 1.17)" || p.Breaks != "libssl1.1 (<< 1.1.1)" ||
		p.Provides != "libssl" || p.Size != 2028128 || p.InstalledSize != 6200 || len(p.SHA256) != 64 {
		t.Errorf("libssl3: %+v", p)
	}
	if got[1].Source != "tzdata" || got[1].SourceVersion != got[1].Version {
		t.Errorf("tzdata source: %+v", got[1])
	}
	base := "Package: x\nVersion: 1\nArchitecture: amd64\nSize: 1\nSHA256: " + strings.Repeat("a", 64) + "\n"
	for name, in := range map[string]string{
		"no filename":  base,
		"climbing":     base + "Filename: pool/../../etc/passwd\n",
		"absolute":     base + "Filename: /etc/passwd\n",
		"bad size":     strings.Replace(base, "Size: 1", "Size: x", 1) + "Filename: pool/x.deb\n",
		"no sha256":    strings.Replace(base, "SHA256: ", "MD5sum: ", 1) + "Filename: pool/x.deb\n",
		"no version":   strings.Replace(base, "Version: 1\n", "", 1) + "Filename: pool/x.deb\n",
		"long line":    base + "Filename: pool/x.deb\nX: " + strings.Repeat("a", deb822.MaxLineLen) + "\n",
		"garbage line": base + "Filename: pool/x.deb\nno colon here\n",
	} {
		if _, err := ParsePackages(strings.NewReader(in), "idx"); err == nil || !strings.Contains(err.Error(), "idx") {
			t.Errorf("%s: %v, want an error naming the index", name, err)
		}
	}
}

func FuzzParsePackages(f *testing.F) {
	f.Add(packagesText)
	f.Fuzz(func(t *testing.T, in string) {
		pkgs, err := ParsePackages(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if !validPoolPath(p.Filename) || p.Size < 0 || len(p.SHA256) != 64 {
				t.Fatalf("invalid entry %+v", p)
			}
		}
	})
}

func TestOpenIndex(t *testing.T) {
	dir := t.TempDir()
	for ext, data := range map[string][]byte{".gz": gzData(t, []byte(packagesText)), ".xz": xzData(t, []byte(packagesText)), "": []byte(packagesText)} {
		name := filepath.Join(dir, "idx"+ext)
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, xzd := range []xzdec.Decoder{xzdec.Native(), xzdec.Program(testenv.RequireTool(t, "xz", "xz-utils"))} {
			rd, closeFn, err := openIndex(name, xzd)
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := ParsePackages(rd, name)
			closeFn()
			if err != nil || len(pkgs) != 2 {
				t.Errorf("%q, %v: %d packages, %v", ext, xzd, len(pkgs), err)
			}
		}
	}
	// Past its bound, a reader fails rather than truncating.
	br := &boundedReader{r: strings.NewReader(packagesText), n: 10, name: "bomb"}
	if _, err := io.ReadAll(br); err == nil || !strings.Contains(err.Error(), "bomb") {
		t.Errorf("bounded reader: %v", err)
	}
	br = &boundedReader{r: strings.NewReader("0123456789"), n: 10, name: "exact"}
	if data, err := io.ReadAll(br); err != nil || len(data) != 10 {
		t.Errorf("exactly at the bound: %q, %v", data, err)
	}
}

// TestParsePackagesManyChunks parses an index longer than several of
// ParsePackages' chunks and checks every package comes back once, in
// order, with its own fields.
func TestParsePackagesManyChunks(t *testing.T) {
	for _, n := range []int{0, 1, 64, 65, maxChunk, maxChunk + 1, 3*maxChunk + 100} {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "Package: p%d\nVersion: 1.%d\nArchitecture: amd64\nDescription: package %d\n more text\nFilename: pool/main/p/p%d_1.%d_amd64.deb\nSize: %d\nSHA256: %064x\n\n", i, i, i, i, i, i, i)
		}
		got, err := ParsePackages(strings.NewReader(b.String()), "Packages")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d stanzas: got %d packages", n, len(got))
		}
		for i, p := range got {
			if p.Package != fmt.Sprintf("p%d", i) || p.Version != fmt.Sprintf("1.%d", i) || p.Size != int64(i) || p.SHA256 != fmt.Sprintf("%064x", i) {
				t.Fatalf("%d stanzas: package %d is %+v", n, i, p)
			}
		}
	}
}
