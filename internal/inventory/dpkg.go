package inventory

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/deb822"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/version"
)

// dpkg database paths, fs.FS style.
const (
	dpkgStatus  = "var/lib/dpkg/status"
	dpkgStatusD = "var/lib/dpkg/status.d"
	dpkgInfo    = "var/lib/dpkg/info"
)

// maxStatusDFiles bounds the entries of a status.d directory.
const maxStatusDFiles = 100_000

// Dpkg reads Debian and Ubuntu's dpkg database: var/lib/dpkg/status and,
// for distroless images, one stanza file per package in
// var/lib/dpkg/status.d/ (where <name>.md5sums files are ignored).
//
// A package counts as installed as Trivy counts it: unless its Status says
// it is wanted removed (deinstall, purge) or its files are gone
// (not-installed, config-files); a stanza without a Status field, as some
// hand-made status.d entries are, counts as installed. A stanza with a
// missing or invalid Package, Version, Architecture, Source or
// Installed-Size is skipped and reported in a *PartialError.
//
// The zero value is a dpkg analyzer with default options.
type Dpkg struct{ opts options }

// NewDpkg returns a dpkg analyzer.
func NewDpkg(opts ...Option) (*Dpkg, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("dpkg analyzer: %w", err)
	}
	return &Dpkg{opts: o}, nil
}

// Type returns "dpkg".
func (*Dpkg) Type() string { return "dpkg" }

// Version of the dpkg analyzer's output.
func (*Dpkg) Version() int { return 1 }

// Required reports the status file, status.d entries and, WithFiles, the
// info/*.list files.
func (a *Dpkg) Required(p string) bool {
	if p == dpkgStatus {
		return true
	}
	dir, base := path.Split(p)
	switch strings.TrimSuffix(dir, "/") {
	case dpkgStatusD:
		return !strings.HasPrefix(base, ".") && (!strings.HasSuffix(base, ".md5sums") || a.opts.files)
	case dpkgInfo:
		return a.opts.files && strings.HasSuffix(base, ".list")
	}
	return false
}

// Analyze reads the installed packages of the status file and the status.d
// directory, whichever exist. The sizes of all the files are checked
// against the analyzer's database limit before any is parsed; parsing
// stops at the first package past its package limit.
func (a *Dpkg) Analyze(ctx context.Context, fsys fs.FS) ([]Package, error) {
	var (
		pkgs    []Package
		partial PartialError
		b       = a.opts.budget()
	)
	entries, err := fs.ReadDir(fsys, dpkgStatusD)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", dpkgStatusD, err)
	}
	if len(entries) > maxStatusDFiles {
		return nil, &refusal.Error{Kind: refusal.OverLimit, Entry: dpkgStatusD,
			Reason: fmt.Sprintf("over the package limit: %s has %d entries, limit %d", dpkgStatusD, len(entries), maxStatusDFiles)}
	}
	var stanzaFiles []string
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".md5sums") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		stanzaFiles = append(stanzaFiles, path.Join(dpkgStatusD, e.Name()))
	}
	// Sizes first: refuse an oversized database before reading any of it.
	for _, name := range append([]string{dpkgStatus}, stanzaFiles...) {
		st, err := fs.Stat(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat dpkg database %s: %w", name, err)
		}
		what := name
		if name != dpkgStatus {
			what = dpkgStatusD
		}
		if err := b.file(what, st.Size()); err != nil {
			return nil, err
		}
	}
	got, err := a.analyzeFile(ctx, fsys, dpkgStatus, &partial, b)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pkgs = append(pkgs, got...)
	for _, name := range stanzaFiles {
		got, err := a.analyzeFile(ctx, fsys, name, &partial, b)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, got...)
	}
	if a.opts.files {
		if err := a.addFiles(ctx, fsys, pkgs); err != nil {
			return nil, err
		}
	}
	return pkgs, partial.errOrNil()
}

// analyzeFile reads the installed packages of one stanza file.
func (a *Dpkg) analyzeFile(ctx context.Context, fsys fs.FS, name string, partial *PartialError, b *budget) ([]Package, error) {
	f, _, err := openBounded(fsys, name, a.opts.limit())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		var r *refusal.Error
		if errors.As(err, &r) {
			return nil, err
		}
		return nil, fmt.Errorf("opening dpkg database %s: %w", name, err)
	}
	defer f.Close()
	pkgs, err := parseDpkgStatus(ctx, f, name, partial, b)
	if err != nil {
		return nil, parseErr("dpkg", name, err)
	}
	return pkgs, nil
}

// parseDpkgStatus reads the installed packages of a dpkg status file (or
// status.d entry) named name; malformed stanzas are recorded in partial,
// installed packages counted in b (nil: no limit).
func parseDpkgStatus(ctx context.Context, r io.Reader, name string, partial *PartialError, b *budget) ([]Package, error) {
	var pkgs []Package
	n := 0
	err := deb822.Parse(r, func(s *deb822.Paragraph, serr *deb822.ParseError) error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if serr != nil {
			partial.add(&EntryError{Path: name, Line: serr.Line, Err: serr.Err})
			return nil
		}
		pkg, ok, err := dpkgPackage(s)
		switch {
		case err != nil:
			pkgName, _ := s.Get("Package")
			partial.add(&EntryError{Path: name, Line: s.Line, Name: deb822.Truncate(pkgName, 80), Err: err})
		case ok:
			if b != nil {
				if err := b.pkg(name); err != nil {
					return err
				}
			}
			pkg.DBPath = name
			pkgs = append(pkgs, pkg)
		}
		return nil
	})
	return pkgs, err
}

// dpkgPackage reads a package from a status stanza. ok is false, with no
// error, for a package that is not installed.
func dpkgPackage(s *deb822.Paragraph) (pkg Package, ok bool, err error) {
	status, hasStatus := s.Get("Status")
	if hasStatus && !dpkgInstalled(status) {
		return Package{}, false, nil
	}
	pkg = Package{Ecosystem: version.EcosystemDeb, Status: status}
	pkg.Name, _ = s.Get("Package")
	pkg.Version, _ = s.Get("Version")
	pkg.Arch, _ = s.Get("Architecture")
	if !validDebName(pkg.Name) {
		return Package{}, false, fmt.Errorf("invalid or missing Package field %q", deb822.Truncate(pkg.Name, 80))
	}
	if !(version.Deb{}).Valid(pkg.Version) {
		return Package{}, false, fmt.Errorf("invalid or missing Version field %q", deb822.Truncate(pkg.Version, 80))
	}
	if pkg.Arch != "" && !validDebArch(pkg.Arch) {
		return Package{}, false, fmt.Errorf("invalid Architecture field %q", deb822.Truncate(pkg.Arch, 80))
	}
	pkg.SourceName, pkg.SourceVersion = pkg.Name, pkg.Version
	if src, ok := s.Get("Source"); ok && src != "" {
		name, ver, err := parseDebSource(src)
		if err != nil {
			return Package{}, false, err
		}
		pkg.SourceName = name
		if ver != "" {
			pkg.SourceVersion = ver
		}
	}
	if m, ok := s.Get("Maintainer"); ok {
		pkg.Maintainer = strings.ToValidUTF8(m, "\uFFFD")
	}
	if size, ok := s.Get("Installed-Size"); ok && size != "" {
		kib, err := strconv.ParseInt(size, 10, 64)
		if err != nil || kib < 0 || kib > 1<<40 {
			return Package{}, false, fmt.Errorf("invalid Installed-Size field %q", deb822.Truncate(size, 80))
		}
		pkg.InstalledSize = kib * 1024
	}
	return pkg, true, nil
}

// dpkgInstalled reports whether a Status field ("want flag status") describes
// a package whose files are on disk. As Trivy does, a package the admin
// wants removed (deinstall, purge) is not installed; neither is one whose
// state is not-installed or config-files (only conffiles remain). Half-
// installed, unpacked, half-configured and trigger-pending packages are.
func dpkgInstalled(status string) bool {
	words := strings.Fields(status)
	if len(words) != 3 {
		return false
	}
	switch words[0] {
	case "deinstall", "purge":
		return false
	}
	switch words[2] {
	case "not-installed", "config-files":
		return false
	}
	return true
}

// parseDebSource splits a Source field, "name" or "name (version)".
func parseDebSource(src string) (name, ver string, err error) {
	name, rest, hasVer := strings.Cut(src, " ")
	if !validDebName(name) {
		return "", "", fmt.Errorf("invalid Source field %q", deb822.Truncate(src, 80))
	}
	if !hasVer {
		return name, "", nil
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return "", "", fmt.Errorf("invalid Source field %q", deb822.Truncate(src, 80))
	}
	ver = strings.TrimSpace(rest[1 : len(rest)-1])
	if !(version.Deb{}).Valid(ver) {
		return "", "", fmt.Errorf("invalid version in Source field %q", deb822.Truncate(src, 80))
	}
	return name, ver, nil
}

// validDebName checks a package name as dpkg does: lower-case letters,
// digits and "+-.", starting with a letter or digit.
func validDebName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case i > 0 && (r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// validDebArch checks an architecture name: lower-case letters, digits, "-".
func validDebArch(s string) bool {
	if len(s) > 64 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// addFiles fills Files of each package from info/<name>[:arch].list, or
// for status.d packages from status.d/<name>.md5sums. A missing list leaves
// Files empty.
func (a *Dpkg) addFiles(ctx context.Context, fsys fs.FS, pkgs []Package) error {
	for i := range pkgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := &pkgs[i]
		var candidates []string
		if p.DBPath == dpkgStatus {
			candidates = []string{
				path.Join(dpkgInfo, p.Name+":"+p.Arch+".list"),
				path.Join(dpkgInfo, p.Name+".list"),
			}
		} else {
			candidates = []string{path.Join(dpkgStatusD, path.Base(p.DBPath)+".md5sums")}
		}
		for _, name := range candidates {
			files, err := a.readFileList(fsys, name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			p.Files = files
			break
		}
	}
	return nil
}

// readFileList reads a .list (one path a line) or .md5sums ("digest  path"
// a line, relative paths) file into sorted absolute paths, without ".".
func (a *Dpkg) readFileList(fsys fs.FS, name string) ([]string, error) {
	f, _, err := openBounded(fsys, name, a.opts.limit())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("opening dpkg file list %s: %w", name, err)
	}
	defer f.Close()
	md5sums := strings.HasSuffix(name, ".md5sums")
	var files []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), deb822.MaxLineLen)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if md5sums {
			_, p, ok := strings.Cut(line, "  ")
			if !ok {
				continue
			}
			line = "/" + strings.TrimLeft(p, "/")
		}
		if line == "" || line == "/." {
			continue
		}
		files = append(files, strings.ToValidUTF8(line, "\uFFFD"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading dpkg file list %s: %w", name, err)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}
