package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	debversion "github.com/knqyf263/go-deb-version"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Package is one installed binary package of an image.
type Package struct {
	Name          string
	Version       string
	Arch          string
	Source        string // source package name (= Name when the entry has none)
	SourceVersion string // source version (= Version when the entry has none)
}

// InstalledPackages reads an image's dpkg database: /var/lib/dpkg/status, or
// the distroless /var/lib/dpkg/status.d/<pkg> files, keeping entries whose
// Status is "install ok installed". The result is sorted by name and arch.
func InstalledPackages(img v1.Image) ([]Package, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	var out []Package
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading image filesystem: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		isStatus := name == "var/lib/dpkg/status"
		isStatusD := path.Dir(name) == "var/lib/dpkg/status.d" && !strings.HasSuffix(name, ".md5sums")
		if hdr.Typeflag != tar.TypeReg || (!isStatus && !isStatusD) {
			continue
		}
		pkgs, err := parseStatus(tr)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		out = append(out, pkgs...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Arch < out[j].Arch
	})
	return out, nil
}

// Packages reads the image's installed packages.
func (i *Image) Packages() ([]Package, error) {
	img, err := i.Open()
	if err != nil {
		return nil, err
	}
	return InstalledPackages(img)
}

// parseStatus reads the installed packages of a dpkg status file.
func parseStatus(r io.Reader) ([]Package, error) {
	var out []Package
	err := eachParagraph(r, func(p Paragraph) error {
		if st := strings.Fields(p.Get("Status")); len(st) != 3 || st[2] != "installed" {
			return nil
		}
		out = append(out, packageOf(p))
		return nil
	})
	return out, err
}

// packageOf reads name, version, arch and source from a control paragraph;
// "Source: name (version)" gives a source version different from Version.
func packageOf(p Paragraph) Package {
	pkg := Package{Name: p.Get("Package"), Version: p.Get("Version"), Arch: p.Get("Architecture")}
	pkg.Source, pkg.SourceVersion = pkg.Name, pkg.Version
	if src := strings.TrimSpace(p.Get("Source")); src != "" {
		name, ver, ok := strings.Cut(src, " ")
		pkg.Source = name
		if ok {
			pkg.SourceVersion = strings.Trim(strings.TrimSpace(ver), "()")
		}
	}
	return pkg
}

// Update is a pending update of an installed package.
type Update struct {
	Package
	NewVersion string // the highest version the suite offers
	Suite      string // e.g. "bookworm-security"
}

// PendingSecurityUpdates compares the image's installed packages with its
// release's <suite>-security Packages index on the security mirror, as
// `apt-get upgrade` would see them: an installed package whose name and
// architecture (or "all") the index carries at a higher version. Sorted by
// name. The mirror moves, so compute expected results with this at test
// time; never hard-code them.
func (i *Image) PendingSecurityUpdates(ctx context.Context, opts ...Option) ([]Update, error) {
	o, err := newOptions(append([]Option{WithMirror(i.Mirror)}, opts...))
	if err != nil {
		return nil, err
	}
	pkgs, err := i.Packages()
	if err != nil {
		return nil, err
	}
	suite := i.Spec.Suite + "-security"
	return pendingUpdates(ctx, o, pkgs, o.mirror.SecurityURI, suite, i.Spec.Arch)
}

// PendingUpdatesIn returns the updates apt would install in img, an image
// of i's release (i itself, or i patched): the newer versions the
// release's -security and -updates suites offer for its installed
// packages, computed from the mirror independently of drydock's apt code.
func (i *Image) PendingUpdatesIn(ctx context.Context, img v1.Image, opts ...Option) ([]Update, error) {
	o, err := newOptions(append([]Option{WithMirror(i.Mirror)}, opts...))
	if err != nil {
		return nil, err
	}
	pkgs, err := InstalledPackages(img)
	if err != nil {
		return nil, err
	}
	sec, err := pendingUpdates(ctx, o, pkgs, o.mirror.SecurityURI, i.Spec.Suite+"-security", i.Spec.Arch)
	if err != nil {
		return nil, err
	}
	upd, err := pendingUpdates(ctx, o, pkgs, o.mirror.URI, i.Spec.Suite+"-updates", i.Spec.Arch)
	if err != nil {
		return nil, err
	}
	return append(sec, upd...), nil
}

func pendingUpdates(ctx context.Context, o *options, pkgs []Package, base, suite, arch string) ([]Update, error) {
	idx, err := fetchPackages(ctx, o, base, suite, "main", arch)
	if err != nil {
		return nil, err
	}
	installed := map[string]Package{}
	for _, p := range pkgs {
		installed[p.Name] = p
	}
	best := map[string]string{}
	err = eachIndexParagraph(idx, func(p Paragraph) error {
		name, a, v := p.Get("Package"), p.Get("Architecture"), p.Get("Version")
		inst, ok := installed[name]
		if !ok || (a != "all" && a != inst.Arch) {
			return nil
		}
		if compareVersions(v, inst.Version) > 0 && (best[name] == "" || compareVersions(v, best[name]) > 0) {
			best[name] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Update
	for _, name := range sortedKeys(best) {
		out = append(out, Update{Package: installed[name], NewVersion: best[name], Suite: suite})
	}
	return out, nil
}

// ReadFile returns the header and (for a regular file) the content of one
// path of the image's flattened filesystem, following no symlinks. A missing
// path gives an error for which IsNotInImage is true.
func ReadFile(img v1.Image, name string) (data []byte, hdr *tar.Header, err error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	want := strings.TrimPrefix(path.Clean("/"+name), "/")
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s: %w", name, errNotInImage)
		}
		if err != nil {
			return nil, nil, err
		}
		if strings.TrimPrefix(path.Clean("/"+h.Name), "/") != want {
			continue
		}
		var buf bytes.Buffer
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(&buf, tr); err != nil {
				return nil, nil, err
			}
		}
		return buf.Bytes(), h, nil
	}
}

var errNotInImage = errors.New("not in image")

// IsNotInImage reports an error from ReadFile for a missing file.
func IsNotInImage(err error) bool { return errors.Is(err, errNotInImage) }

// compareVersions orders two Debian versions as dpkg does
// ([epoch:]upstream[-revision]); it returns -1, 0 or 1. A version that does
// not parse sorts before every valid one, so it is never picked as newest.
func compareVersions(a, b string) int {
	va, errA := debversion.NewVersion(a)
	vb, errB := debversion.NewVersion(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return max(-1, min(1, va.Compare(vb)))
}
