package cacerts_test

import (
	"archive/tar"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/patch/cacerts"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
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
func apply(t *testing.T, dir string, changes []cacerts.Change) {
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
	ents, _ := os.ReadDir(filepath.Join(root, cacerts.EtcCerts))
	for _, e := range ents {
		add(cacerts.EtcCerts + "/" + e.Name())
	}
	for _, s := range []string{"", ".dpkg-old", ".dpkg-new"} {
		add(cacerts.CertsConf + s)
	}
	add(cacerts.LocalDir)
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
	testenv.RequireRoot(t, "chroot, chown")
	for _, tool := range tools {
		testenv.RequireTool(t, tool, tool)
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

// newPackage returns the ca-certificates package apt would upgrade the
// image (extracted at root) to, fetched as drydock fetches it: the image's
// own sources and keyring, the Release signature and the index and package
// SHA256 verified, into the cache dir. The version is the mirror's of
// today. When the mirror offers nothing newer than the installed version,
// it is that version (dpkg's reinstall, whose postinst is run with the
// same version) and upgrade is false.
func newPackage(t *testing.T, root string, arch string) (deb, version string, upgrade bool) {
	t.Helper()
	ctx := t.Context()
	fsys := dirFS{root}
	osi, err := osinfo.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	dpkg, err := inventory.NewDpkg()
	if err != nil {
		t.Fatal(err)
	}
	installed, err := dpkg.Analyze(ctx, fsys)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := archive.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := archive.Open(ctx, fsys, osi, arch, archive.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Update(ctx); err != nil {
		t.Fatal(err)
	}
	var p *archive.IndexPackage
	for _, u := range repo.Candidates(installed) {
		if u.Name == "ca-certificates" {
			p, upgrade = &u.Candidate, true
		}
	}
	if p == nil {
		for _, ip := range installed {
			if ip.Name == "ca-certificates" {
				p, _ = repo.Lookup(ip.Name, ip.Version)
			}
		}
	}
	if p == nil {
		t.Fatal("the image's sources offer no ca-certificates, neither newer nor the installed version")
	}
	if deb, err = repo.FetchDeb(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Logf("ca-certificates %s from %s (upgrade: %v)", p.Version, p.Suite, upgrade)
	return deb, p.Version, upgrade
}

// TestRealImages compares Update with the real scripts run in a chroot.
func TestRealImages(t *testing.T) {
	need(t, "chroot", "dpkg-deb", "cp")
	for _, spec := range []testimage.Spec{testimage.BookwormNginx, testimage.BullseyeNginxCurl} {
		t.Run(spec.Name, func(t *testing.T) {
			base := t.TempDir()
			extract(t, spec, base)
			fsys := dirFS{base}
			for _, opts := range []cacerts.Options{{}, {Configure: true}} {
				ch, err := cacerts.Update(fsys, opts)
				if err != nil || len(ch) != 0 {
					t.Fatalf("untouched image, %+v: %d changes %v, err %v", opts, len(ch), ch, err)
				}
			}
			oldVer := strings.TrimSpace(run(t, "chroot", base, "dpkg-query", "-W", "-f=${Version}", "ca-certificates"))

			// Fresh and a local certificate, trigger only.
			t.Run("trigger-fresh-local", func(t *testing.T) {
				a := filepath.Join(t.TempDir(), "a")
				run(t, "cp", "-a", base, a)
				if err := os.WriteFile(filepath.Join(a, cacerts.LocalDir, "local-test.crt"), localCert(t, "Local Test CA"), 0o644); err != nil {
					t.Fatal(err)
				}
				b := filepath.Join(t.TempDir(), "b")
				run(t, "cp", "-a", a, b)
				ch, err := cacerts.Update(dirFS{a}, cacerts.Options{Fresh: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d changes", len(ch))
				apply(t, a, ch)
				chrootRun(t, b, "update-ca-certificates --fresh")
				compare(t, snapshot(t, a), snapshot(t, b))
			})

			t.Run("upgrade", func(t *testing.T) {
				newDeb, newVer, upgrade := newPackage(t, base, spec.Arch)
				if upgrade && newVer == oldVer {
					t.Fatalf("candidate %s is the installed version", newVer)
				}
				a := filepath.Join(t.TempDir(), "a")
				run(t, "cp", "-a", base, a)
				run(t, "dpkg-deb", "-x", newDeb, a)
				ctl := t.TempDir()
				run(t, "dpkg-deb", "-e", newDeb, ctl)
				for _, f := range []string{"postinst", "config", "templates"} {
					run(t, "cp", filepath.Join(ctl, f), filepath.Join(a, "var/lib/dpkg/info/ca-certificates."+f))
				}
				b := filepath.Join(t.TempDir(), "b")
				run(t, "cp", "-a", a, b)
				ch, err := cacerts.Update(dirFS{a}, cacerts.Options{Configure: true})
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

// localCert is a self-signed CA certificate in PEM.
func localCert(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
