package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	_ "modernc.org/sqlite" // the pure-Go "sqlite" database/sql driver go-rpmdb opens rpmdb.sqlite with

	"github.com/drydock-project/drydock/internal/deb822"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/version"
)

// rpmDBDirs are where rpm keeps its database, newest layout first; rpmDBFiles
// the database file of each backend, in the order one is picked when a
// directory holds several (a converted database may leave the old one).
var (
	rpmDBDirs  = [...]string{"usr/lib/sysimage/rpm", "var/lib/rpm"}
	rpmDBFiles = [...]string{"rpmdb.sqlite", "Packages.db", "Packages"}
)

// RPM reads the rpm database of RHEL-family and SUSE images in any of its
// three formats: sqlite (rpmdb.sqlite), ndb (Packages.db) and Berkeley DB
// (Packages), under usr/lib/sysimage/rpm or var/lib/rpm, with
// github.com/knqyf263/go-rpmdb. That library reads a file by path: the
// analyzer copies the database out of the fs.FS into a temporary file,
// bounded in size.
//
// The zero value is an rpm analyzer with default options.
type RPM struct{ opts options }

// NewRPM returns an rpm analyzer.
func NewRPM(opts ...Option) (*RPM, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("rpm analyzer: %w", err)
	}
	return &RPM{opts: o}, nil
}

// Type returns "rpm".
func (*RPM) Type() string { return "rpm" }

// Version of the rpm analyzer's output.
func (*RPM) Version() int { return 1 }

// Required reports the database files of every rpm backend (and sqlite's
// write-ahead log).
func (*RPM) Required(p string) bool {
	dir, base := path.Split(p)
	if !slices.Contains(rpmDBDirs[:], strings.TrimSuffix(dir, "/")) {
		return false
	}
	return slices.Contains(rpmDBFiles[:], base) || base == "rpmdb.sqlite-wal"
}

// Analyze reads the database of each rpm directory that has one. The same
// database reached through both paths (var/lib/rpm is often a symlink to
// ../../usr/lib/sysimage/rpm) gives the same packages, which Inventory
// deduplicates.
func (a *RPM) Analyze(ctx context.Context, fsys fs.FS) ([]Package, error) {
	var (
		pkgs    []Package
		partial PartialError
		b       = a.opts.budget()
	)
	for _, dir := range rpmDBDirs {
		if len(pkgs) > 0 {
			// var/lib/rpm is usually a symbolic link to the sysimage
			// directory already read: the same database, not counted twice
			// against the limits.
			if fi, err := fs.Lstat(fsys, dir); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				continue
			}
		}
		for _, file := range rpmDBFiles {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			name := path.Join(dir, file)
			got, err := a.analyzeFile(fsys, name, &partial, b)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			pkgs = append(pkgs, got...)
			break // one database per directory
		}
	}
	return pkgs, partial.errOrNil()
}

// analyzeFile reads one rpm database file of fsys. It returns an error
// wrapping fs.ErrNotExist when the file is absent.
func (a *RPM) analyzeFile(fsys fs.FS, name string, partial *PartialError, b *budget) ([]Package, error) {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("stat rpm database %s: %w", name, err)
	}
	if err := b.file(name, st.Size()); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "drydock-rpmdb-")
	if err != nil {
		return nil, fmt.Errorf("copying rpm database %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	local := filepath.Join(tmp, path.Base(name))
	if err := a.copyOut(fsys, name, local); err != nil {
		return nil, err
	}
	if path.Base(name) == "rpmdb.sqlite" {
		// Uncheckpointed transactions live in the write-ahead log.
		err := a.copyOut(fsys, name+"-wal", local+"-wal")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	infos, err := listRPM(local)
	if err != nil {
		// A local copy that go-rpmdb cannot read: the same on every try.
		return nil, &refusal.Error{Kind: refusal.Unverifiable, Entry: name,
			Reason: fmt.Sprintf("reading rpm database %s: %v", name, err), Err: err}
	}
	var pkgs []Package
	for _, info := range infos {
		if info.Name == "gpg-pubkey" {
			continue // imported signing keys, not software
		}
		pkg, err := rpmPackage(info, a.opts.files)
		if err != nil {
			partial.add(&EntryError{Path: name, Name: deb822.Truncate(info.Name, 80), Err: err})
			continue
		}
		if err := b.pkg(name); err != nil {
			return nil, err
		}
		pkg.DBPath = name
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

// listRPM lists the packages of a local rpm database file. go-rpmdb has
// been known to panic on corrupt headers: a panic in the calling goroutine
// becomes an error.
func listRPM(file string) (infos []*rpmdb.PackageInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			infos, err = nil, fmt.Errorf("corrupt rpm database: %v", r)
		}
	}()
	db, err := rpmdb.Open(file)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.ListPackages()
}

// copyOut copies name of fsys to the local file dst, failing when it is
// larger than the analyzer allows. It returns an error wrapping
// fs.ErrNotExist when name is absent.
func (a *RPM) copyOut(fsys fs.FS, name, dst string) error {
	src, _, err := openBounded(fsys, name, a.opts.limit())
	if err != nil {
		var r *refusal.Error
		if errors.Is(err, fs.ErrNotExist) || errors.As(err, &r) {
			return err
		}
		return fmt.Errorf("opening rpm database %s: %w", name, err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copying rpm database %s: %w", name, err)
	}
	// The size was checked at open; bound the copy too, in case the file
	// grows or its Stat lied.
	n, err := io.Copy(out, io.LimitReader(src, a.opts.limit()+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying rpm database %s: %w", name, err)
	}
	if n > a.opts.limit() {
		return fmt.Errorf("copying rpm database %s: larger than the %d bytes allowed", name, a.opts.limit())
	}
	return nil
}

// rpmPackage converts a go-rpmdb package.
func rpmPackage(info *rpmdb.PackageInfo, withFiles bool) (Package, error) {
	if info.Name == "" || info.Version == "" {
		return Package{}, errors.New("missing name or version")
	}
	evr := info.Version
	if info.Release != "" {
		evr += "-" + info.Release
	}
	if info.Epoch != nil && *info.Epoch != 0 {
		evr = strconv.Itoa(*info.Epoch) + ":" + evr
	}
	if !(version.RPM{}).Valid(evr) {
		return Package{}, fmt.Errorf("invalid version %q", deb822.Truncate(evr, 80))
	}
	pkg := Package{
		Name:          strings.ToValidUTF8(info.Name, "\uFFFD"),
		Version:       evr,
		Arch:          strings.ToValidUTF8(info.Arch, "\uFFFD"),
		Ecosystem:     version.EcosystemRPM,
		Status:        "installed",
		Maintainer:    strings.ToValidUTF8(info.Vendor, "\uFFFD"),
		InstalledSize: int64(info.Size),
	}
	pkg.SourceName, pkg.SourceVersion = pkg.Name, pkg.Version
	if info.SourceRpm != "" {
		name, ver, rel, err := splitSourceRPM(info.SourceRpm)
		if err != nil {
			return Package{}, err
		}
		pkg.SourceName, pkg.SourceVersion = name, ver+"-"+rel
		// SOURCERPM carries no epoch; the binary's is the source's.
		if info.Epoch != nil && *info.Epoch != 0 {
			pkg.SourceVersion = strconv.Itoa(*info.Epoch) + ":" + pkg.SourceVersion
		}
	}
	if withFiles {
		files, err := info.InstalledFileNames()
		if err != nil {
			return Package{}, fmt.Errorf("file list: %w", err)
		}
		for i, f := range files {
			files[i] = strings.ToValidUTF8(f, "\uFFFD")
		}
		slices.Sort(files)
		pkg.Files = slices.Compact(files)
	}
	return pkg, nil
}

// splitSourceRPM splits a SOURCERPM file name, "name-version-release.src.rpm"
// (or .nosrc.rpm), as Trivy's rpm analyzer does.
func splitSourceRPM(file string) (name, ver, rel string, err error) {
	bad := func() (string, string, string, error) {
		return "", "", "", fmt.Errorf("invalid SOURCERPM %q", deb822.Truncate(file, 80))
	}
	s, ok := strings.CutSuffix(file, ".rpm")
	if !ok {
		return bad()
	}
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 {
		return bad()
	}
	s = s[:dot] // drop the arch: src, nosrc
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return bad()
	}
	s, rel = s[:i], s[i+1:]
	i = strings.LastIndexByte(s, '-')
	if i <= 0 {
		return bad()
	}
	name, ver = s[:i], s[i+1:]
	if name == "" || ver == "" || rel == "" || !(version.RPM{}).Valid(ver+"-"+rel) {
		return bad()
	}
	return name, ver, rel, nil
}
