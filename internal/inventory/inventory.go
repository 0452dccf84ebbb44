// Package inventory lists the OS packages installed in an image's root
// filesystem, read from the package managers' own databases: dpkg (status
// and the distroless status.d directory), apk (lib/apk/db/installed) and rpm
// (rpmdb in its sqlite, Berkeley DB and ndb formats).
//
// As in Trivy's fanal, there is one Analyzer per package manager: it picks
// its files cheaply by path (Required), carries a version that joins the
// scan cache key, and reads an fs.FS, so the same code runs on an image's
// merged layers and on an fstest.MapFS in tests. Inventory runs several and
// returns one sorted, deduplicated Result.
//
// Database files are untrusted input: every read is bounded, malformed
// entries are skipped and reported (see PartialError), and no input makes
// an analyzer panic.
package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/refusal"
)

// Package is one installed binary package.
type Package struct {
	Name    string // binary package name
	Version string // full version as the package manager orders it, e.g. "1:2.3-4" or "1.2-r0"
	Arch    string // e.g. "amd64", "x86_64", "all", "noarch"

	// SourceName and SourceVersion name the source package it was built
	// from: dpkg's Source field ("name" or "name (version)"), apk's origin,
	// rpm's SOURCERPM. Without a source version the binary version is used;
	// without a source name the binary name.
	SourceName    string
	SourceVersion string

	Ecosystem     string // "deb", "apk" or "rpm" (see internal/version)
	Status        string // dpkg's status words, e.g. "install ok installed"; "installed" for apk and rpm
	Maintainer    string
	InstalledSize int64 // bytes as the database records them (dpkg's KiB converted)

	// Files lists the package's files as absolute paths, sorted, when the
	// database records them and the analyzer was made WithFiles.
	Files []string `json:",omitempty"`

	// DBPath is the fs.FS path of the database file that recorded the
	// package, e.g. "var/lib/dpkg/status" or "var/lib/dpkg/status.d/libc6".
	DBPath string
}

// Analyzer reads one package manager's database from a root filesystem.
type Analyzer interface {
	// Type names the analyzer: "dpkg", "apk", "rpm".
	Type() string
	// Version changes whenever the analyzer's output for the same input
	// may change; it joins the scan cache key.
	Version() int
	// Required reports, from the path alone, whether the analyzer reads
	// the file: an fs.FS path with no leading slash.
	Required(path string) bool
	// Analyze returns the installed packages it finds in fsys, none when
	// the database is absent. When it skipped malformed entries it returns
	// the packages it could read together with a *PartialError.
	Analyze(ctx context.Context, fsys fs.FS) ([]Package, error)
}

// AnalyzerInfo identifies an analyzer that ran.
type AnalyzerInfo struct {
	Type    string
	Version int
}

// Result is the inventory of one root filesystem.
type Result struct {
	// Packages, sorted by name, version, arch and DBPath, with exact
	// duplicates (same ecosystem, name, version and arch, e.g. a database
	// reached through two paths) kept once.
	Packages []Package
	// Analyzers lists every analyzer that ran, found anything or not, sorted
	// by type: with the analyzers' versions it is part of the cache key.
	Analyzers []AnalyzerInfo
	// Skipped lists database entries the analyzers could not read, at
	// most MaxSkipped of them; SkippedTotal counts them all.
	Skipped      []*EntryError
	SkippedTotal int
}

// MaxSkipped bounds the entry errors a PartialError or Result keeps.
const MaxSkipped = 100

// EntryError reports one database entry an analyzer skipped.
type EntryError struct {
	Path string // fs.FS path of the database file
	Line int    // first line of the entry, 0 when the format has none
	Name string // package name, when known
	Err  error
}

func (e *EntryError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Name != "" {
		fmt.Fprintf(&b, ": package %q", e.Name)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *EntryError) Unwrap() error { return e.Err }

// PartialError is returned by Analyze, together with the packages it read,
// when it skipped malformed entries. It keeps the first MaxSkipped of them.
type PartialError struct {
	Skipped []*EntryError
	Total   int // number of skipped entries, kept or not
}

func (e *PartialError) Error() string {
	if len(e.Skipped) == 0 {
		return fmt.Sprintf("skipped %d malformed package entries", e.Total)
	}
	return fmt.Sprintf("skipped %d malformed package entries, first: %v", e.Total, e.Skipped[0])
}

// add records a skipped entry.
func (e *PartialError) add(err *EntryError) {
	e.Total++
	if len(e.Skipped) < MaxSkipped {
		e.Skipped = append(e.Skipped, err)
	}
}

// errOrNil returns e when it recorded anything, else nil; a nil
// *PartialError must never travel as a non-nil error.
func (e *PartialError) errOrNil() error {
	if e == nil || e.Total == 0 {
		return nil
	}
	return e
}

// Analyzers returns the default analyzers, dpkg, apk and rpm, with opts
// (default options when none): fresh values on every call.
func Analyzers(opts ...Option) ([]Analyzer, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("analyzers: %w", err)
	}
	return []Analyzer{&Dpkg{opts: o}, &APK{opts: o}, &RPM{opts: o}}, nil
}

// Inventory runs the analyzers (the default ones when none are given) over
// fsys and merges their packages. Entries the analyzers skipped are listed
// in Result.Skipped; any other analyzer error fails the inventory.
func Inventory(ctx context.Context, fsys fs.FS, analyzers ...Analyzer) (Result, error) {
	if len(analyzers) == 0 {
		o := defaultOptions()
		analyzers = []Analyzer{&Dpkg{opts: o}, &APK{opts: o}, &RPM{opts: o}}
	}
	var res Result
	for _, a := range analyzers {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		pkgs, err := a.Analyze(ctx, fsys)
		var partial *PartialError
		switch {
		case errors.As(err, &partial):
			res.SkippedTotal += partial.Total
			for _, e := range partial.Skipped {
				if len(res.Skipped) < MaxSkipped {
					res.Skipped = append(res.Skipped, e)
				}
			}
		case err != nil:
			return Result{}, fmt.Errorf("%s analyzer: %w", a.Type(), err)
		}
		res.Packages = append(res.Packages, pkgs...)
		res.Analyzers = append(res.Analyzers, AnalyzerInfo{Type: a.Type(), Version: a.Version()})
	}
	res.Packages = sortPackages(res.Packages)
	slices.SortFunc(res.Analyzers, func(a, b AnalyzerInfo) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Version, b.Version))
	})
	return res, nil
}

// sortPackages sorts packages by name, version, arch, ecosystem and DBPath
// and drops later exact duplicates (same ecosystem, name, version, arch).
func sortPackages(pkgs []Package) []Package {
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.Arch, b.Arch),
			cmp.Compare(a.Ecosystem, b.Ecosystem),
			cmp.Compare(a.DBPath, b.DBPath),
		)
	})
	return slices.CompactFunc(pkgs, func(a, b Package) bool {
		return a.Name == b.Name && a.Version == b.Version && a.Arch == b.Arch && a.Ecosystem == b.Ecosystem
	})
}

// Option configures an analyzer made with NewDpkg, NewAPK or NewRPM.
type Option func(*options) error

type options struct {
	files       bool
	maxFileSize int64
	maxPackages int
	maxBytes    int64
}

// DefaultMaxFileSize bounds each database file an analyzer reads.
const DefaultMaxFileSize = 512 << 20

func defaultOptions() options { return options{maxFileSize: DefaultMaxFileSize} }

// limit is the file size bound, DefaultMaxFileSize for a zero options (the
// zero Dpkg, APK and RPM values work as the defaults do).
func (o options) limit() int64 {
	if o.maxFileSize <= 0 {
		return DefaultMaxFileSize
	}
	return o.maxFileSize
}

func newOptions(opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, err
		}
	}
	return o, nil
}

// WithFiles makes the analyzer fill Package.Files from the database's file
// lists: dpkg's info/<pkg>.list (or status.d/<pkg>.md5sums), apk's F:/R:
// lines, rpm's file tags.
func WithFiles() Option {
	return func(o *options) error { o.files = true; return nil }
}

// WithMaxFileSize bounds the size of each database file the analyzer reads
// (DefaultMaxFileSize unless set); a larger file fails the analysis.
func WithMaxFileSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max database file size %d: must be positive", n)
		}
		o.maxFileSize = n
		return nil
	}
}

// openBounded opens a regular file of fsys no larger than max. It returns
// an error wrapping fs.ErrNotExist when the file is absent.
func openBounded(fsys fs.FS, name string, max int64) (fs.File, int64, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, &refusal.Error{Kind: refusal.Unverifiable, Entry: name,
			Reason: fmt.Sprintf("%s: not a regular file (%v)", name, fi.Mode().Type())}
	}
	if fi.Size() > max {
		f.Close()
		return nil, 0, overFileSize(name, fi.Size(), max)
	}
	return f, fi.Size(), nil
}
