package cacerts

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// dirFS is an image root extracted on disk; symlinks resolve inside it.
type dirFS struct{ root string }

func (d dirFS) host(name string, follow bool) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	parts := strings.Split(name, "/")
	cur := ""
	for hops := 0; len(parts) > 0; {
		p := parts[0]
		parts = parts[1:]
		if p == "." || p == "" {
			continue
		}
		next := path.Join(cur, p)
		fi, err := os.Lstat(filepath.Join(d.root, next))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 || (len(parts) == 0 && !follow) {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", &fs.PathError{Op: "open", Path: name, Err: errors.New("symlink loop")}
		}
		t, err := os.Readlink(filepath.Join(d.root, next))
		if err != nil {
			return "", err
		}
		if !path.IsAbs(t) {
			t = path.Join("/", cur, t)
		}
		cur = ""
		parts = append(strings.Split(strings.TrimPrefix(path.Clean(t), "/"), "/"), parts...)
	}
	return filepath.Join(d.root, cur), nil
}

func (d dirFS) Open(name string) (fs.File, error) {
	h, err := d.host(name, true)
	if err != nil {
		return nil, err
	}
	return os.Open(h)
}

func (d dirFS) Lstat(name string) (fs.FileInfo, error) {
	h, err := d.host(name, false)
	if err != nil {
		return nil, err
	}
	return os.Lstat(h)
}

func (d dirFS) ReadLink(name string) (string, error) {
	h, err := d.host(name, false)
	if err != nil {
		return "", err
	}
	return os.Readlink(h)
}

// extract writes an image's filesystem under dir, as root.
func extract(t *testing.T, spec testimage.Spec, dir string) {
	t.Helper()
	img, err := testimage.Require(t, spec).Open()
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		mode := fs.FileMode(h.Mode) & fs.ModePerm
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o600)
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeLink:
			err = os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), p)
		default:
			continue
		}
		if err == nil {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err == nil && h.Typeflag != tar.TypeSymlink {
			m := mode | map[bool]fs.FileMode{true: fs.ModeSetuid}[h.Mode&0o4000 != 0] |
				map[bool]fs.FileMode{true: fs.ModeSetgid}[h.Mode&0o2000 != 0] |
				map[bool]fs.FileMode{true: fs.ModeSticky}[h.Mode&0o1000 != 0]
			err = os.Chmod(p, m)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// apply writes changes under dir.
func apply(t *testing.T, dir string, changes []Change) {
	t.Helper()
	for _, c := range changes {
		p := filepath.Join(dir, c.Path)
		var err error
		switch {
		case c.Remove:
			err = os.Remove(p)
		case c.Symlink != "":
			_ = os.Remove(p)
			err = os.Symlink(c.Symlink, p)
		case c.Mode.IsDir():
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, c.Mode)
			}
		default:
			_ = os.Remove(p)
			if err = os.WriteFile(p, c.Data, 0o600); err == nil {
				err = os.Chmod(p, c.Mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes etc/ssl/certs and etc/ca-certificates.conf*.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(rel string) {
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "-> " + l
		case fi.IsDir():
			out[rel] = "dir " + fi.Mode().String()
		default:
			b, _ := os.ReadFile(p)
			out[rel] = fmt.Sprintf("%s %x", fi.Mode(), sha256.Sum256(b))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, etcCerts))
	for _, e := range ents {
		add(etcCerts + "/" + e.Name())
	}
	for _, s := range []string{"", ".dpkg-old", ".dpkg-new"} {
		add(certsConf + s)
	}
	add(localDir)
	return out
}

func compare(t *testing.T, got, want map[string]string) {
	t.Helper()
	n := 0
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: native %q, real %q", k, got[k], w)
			n++
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: native %q, real: absent", k, g)
		}
	}
	if n == 0 {
		t.Logf("%d paths identical", len(want))
	}
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if testimage.InCI() {
			t.Fatal("needs root (chroot, chown)")
		}
		t.Skip("needs root (chroot, chown)")
	}
	for _, tool := range tools {
		testimage.RequireTool(t, tool, tool)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// chrootRun runs a shell command in root with a clean environment; the
// test fails if it does, since its result is the reference.
func chrootRun(t *testing.T, root, script string) {
	t.Helper()
	cmd := exec.Command("chroot", root, "/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"DEBIAN_FRONTEND=noninteractive", "DPKG_MAINTSCRIPT_PACKAGE=ca-certificates", "DPKG_MAINTSCRIPT_NAME=postinst"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("real %q: %v\n%s", script, err, out)
	}
	t.Logf("real %q:\n%s", script, out)
}

type imageCase struct {
	spec   testimage.Spec
	newDeb string
}

var imageCases = []imageCase{
	{testimage.BookwormNginx, "/tmp/debs/ca-certificates_20250419~deb12u2_all.deb"},
	{testimage.BullseyeNginxCurl, "/tmp/debs/ca-certificates_20250419~deb12u1~deb11u1_all.deb"},
}

// TestRealImages compares Update with the real scripts run in a chroot.
func TestRealImages(t *testing.T) {
	need(t, "chroot", "dpkg-deb", "cp")
	for _, ic := range imageCases {
		t.Run(ic.spec.Name, func(t *testing.T) {
			base := t.TempDir()
			extract(t, ic.spec, base)
			fsys := dirFS{base}
			for _, opts := range []Options{{}, {Configure: true}} {
				ch, err := Update(fsys, opts)
				if err != nil || len(ch) != 0 {
					t.Fatalf("untouched image, %+v: %d changes %v, err %v", opts, len(ch), ch, err)
				}
			}
			oldVer := strings.TrimSpace(run(t, "chroot", base, "dpkg-query", "-W", "-f=${Version}", "ca-certificates"))

			// Fresh and a local certificate, trigger only.
			t.Run("trigger-fresh-local", func(t *testing.T) {
				a := filepath.Join(t.TempDir(), "a")
				run(t, "cp", "-a", base, a)
				certPEM, _ := makeCert(t, rawName(t, [][]atv{{{oidCN, asn1.TagPrintableString, "Local Test CA"}}}))
				if err := os.WriteFile(filepath.Join(a, localDir, "local-test.crt"), certPEM, 0o644); err != nil {
					t.Fatal(err)
				}
				b := filepath.Join(t.TempDir(), "b")
				run(t, "cp", "-a", a, b)
				ch, err := Update(dirFS{a}, Options{Fresh: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d changes", len(ch))
				apply(t, a, ch)
				chrootRun(t, b, "update-ca-certificates --fresh")
				compare(t, snapshot(t, a), snapshot(t, b))
			})

			t.Run("upgrade", func(t *testing.T) {
				if _, err := os.Stat(ic.newDeb); err != nil {
					if testimage.InCI() {
						t.Fatal(err)
					}
					t.Skip(err)
				}
				a := filepath.Join(t.TempDir(), "a")
				run(t, "cp", "-a", base, a)
				run(t, "dpkg-deb", "-x", ic.newDeb, a)
				ctl := t.TempDir()
				run(t, "dpkg-deb", "-e", ic.newDeb, ctl)
				for _, f := range []string{"postinst", "config", "templates"} {
					run(t, "cp", filepath.Join(ctl, f), filepath.Join(a, "var/lib/dpkg/info/ca-certificates."+f))
				}
				b := filepath.Join(t.TempDir(), "b")
				run(t, "cp", "-a", a, b)
				ch, err := Update(dirFS{a}, Options{Configure: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d changes", len(ch))
				apply(t, a, ch)
				chrootRun(t, b, "umask 022; /var/lib/dpkg/info/ca-certificates.postinst configure "+oldVer)
				compare(t, snapshot(t, a), snapshot(t, b))
			})
		})
	}
}

var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidDC = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// atv is one attribute: type, ASN.1 string tag, value (raw bytes for
// BMPString are UTF-16BE of the Go string).
type atv struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value string
}

func rawName(t *testing.T, rdns [][]atv) []byte {
	t.Helper()
	var body []byte
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			o, err := asn1.Marshal(a.oid)
			if err != nil {
				t.Fatal(err)
			}
			val := []byte(a.value)
			if a.tag == tagBMP {
				val = nil
				for _, r := range a.value {
					val = append(val, byte(r>>8), byte(r))
				}
			}
			set = append(set, appendTLV(nil, 0x30, append(o, appendTLV(nil, byte(a.tag), val)...))...)
		}
		body = append(body, appendTLV(nil, 0x31, set)...)
	}
	return appendTLV(nil, 0x30, body)
}

func makeCert(t *testing.T, subject []byte) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: subject, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0), Subject: pkix.Name{}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), der
}

func opensslHash(t *testing.T, file string) uint32 {
	t.Helper()
	out := run(t, "openssl", "x509", "-noout", "-subject_hash", "-in", file)
	h, err := strconv.ParseUint(strings.TrimSpace(out), 16, 32)
	if err != nil {
		t.Fatalf("openssl output %q", out)
	}
	return uint32(h)
}

// TestSubjectHashMozilla checks every certificate of the host's
// ca-certificates against openssl x509 -subject_hash.
func TestSubjectHashMozilla(t *testing.T) {
	testimage.RequireTool(t, "openssl", "openssl")
	files, _ := filepath.Glob("/usr/share/ca-certificates/mozilla/*.crt")
	if len(files) == 0 {
		if testimage.InCI() {
			t.Fatal("no /usr/share/ca-certificates/mozilla")
		}
		t.Skip("no /usr/share/ca-certificates/mozilla")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := readPEM(b)
		if err != nil || !pc.single {
			t.Errorf("%s: %v single=%v", f, err, pc.single)
			continue
		}
		if want := opensslHash(t, f); pc.hash != want {
			t.Errorf("%s: %08x, openssl %08x", f, pc.hash, want)
		}
	}
	t.Logf("%d certificates", len(files))
}

// TestSubjectHashHandmade covers case, whitespace, multi-valued RDNs and
// the string types against openssl.
func TestSubjectHashHandmade(t *testing.T) {
	testimage.RequireTool(t, "openssl", "openssl")
	names := [][][]atv{
		{{{oidCN, asn1.TagPrintableString, "  Hello   World  "}}},
		{{{oidCN, asn1.TagUTF8String, "MiXeD\t\tCase\n Ümlaut ÄÖ"}}},
		{{{oidC, asn1.TagPrintableString, "DE"}}, {{oidO, asn1.TagT61String, "T61 \xe9t\xe9"}, {oidOU, asn1.TagIA5String, "Unit  A"}, {oidCN, tagBMP, "BMP Name ß"}}},
		{{{oidDC, asn1.TagIA5String, "EXAMPLE"}}, {{oidDC, asn1.TagIA5String, "Com"}}, {{oidCN, tagNumeric, "12 34"}}},
		{{{oidCN, asn1.TagUTF8String, ""}}},
		{},
	}
	dir := t.TempDir()
	for i, n := range names {
		raw := rawName(t, n)
		certPEM, _ := makeCert(t, raw)
		f := filepath.Join(dir, fmt.Sprintf("%d.pem", i))
		if err := os.WriteFile(f, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := SubjectHash(raw)
		if err != nil {
			t.Fatalf("name %d: %v", i, err)
		}
		if want := opensslHash(t, f); got != want {
			t.Errorf("name %d: %08x, openssl %08x", i, got, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, data := range []string{
		"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
	} {
		if _, err := readPEM([]byte(data)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%q: %v", data, err)
		}
	}
	if pc, err := readPEM([]byte("no pem here")); err != nil || pc.single {
		t.Errorf("plain text: %v %v", pc, err)
	}
	for _, n := range []string{"abcdef01.", "abcdef01.+1", "abcdef01.r", "abcdef01.999"} {
		if _, _, _, _, err := parseHashLink(n); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v", n, err)
		}
	}
	for n, want := range map[string]bool{"abcdef01.0": true, "ABCDEF01.r3": true, "abcdef01.pem": false, "abcdefg1.0": false} {
		if _, _, _, ok, err := parseHashLink(n); ok != want || err != nil {
			t.Errorf("%s: %v %v", n, ok, err)
		}
	}
	if !bytes.Equal(canonString([]byte("  A\t B  ")), []byte("a b")) {
		t.Error("canonString")
	}
}
