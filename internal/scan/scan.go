// Package scan matches an image's installed OS packages against the
// vulnerability database and reports the findings, as
// `trivy image --pkg-types os` does, with more explanation.
//
// The pipeline: a rootfs.FS of the image that keeps, during its single pass
// over the layers, the files the inventory analyzers require and the OS
// release files; osinfo.Detect; the release's lifecycle from the DB's
// distro-info releases (an end-of-life OS is said first and is never
// clean; an OS drydock does not support is "unsupported", never "0
// vulnerabilities"); inventory; the packages grouped by source package;
// one AdvisoriesFor query; then, for each advisory of each installed
// source package:
//
//   - status fixed and the installed source version orders before the fixed
//     version (version.For(ecosystem)): a fixable finding;
//   - status fixed and the installed version is not older, or fixed
//     without a version (never vulnerable in the release): nothing;
//   - not_affected: nothing;
//   - affected, will_not_fix, no_dsa, postponed, end_of_life, undetermined:
//     an unfixed finding carrying the vendor's status.
//
// A finding is reported once per binary package built from the source
// package (PkgName binary, SrcName source), as Trivy does. Source packages
// on debian-security-support's "ended" or "limited" lists are listed in
// Report.PackageSupport. A release the database knows nothing about (no
// release data, no advisory for any installed package) is unsupported.
// Findings are sorted; the report is deterministic for the same image, DB
// and clock. Filters (WithIgnoreUnfixed, WithSeverities) apply to the
// findings only: an end-of-life report stays not Clean when they drop
// every finding.
//
// An image that cannot be judged is refused with a *refusal.Error, never
// reported as clean (see Inspect, the one validation the gate, `drydock
// scan` and `drydock patch` share): corrupt or over-limit layers (from
// rootfs), hostile entries, an unverifiable package database, more
// packages or findings than the Limits allow. A refused image's inventory
// is not stored in the InventoryCache.
//
// Time is read only from the clock given with WithClock.
package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/version"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// SchemaVersion is the version of drydock's own JSON report schema
// (WriteJSON).
const SchemaVersion = 1

// DefaultMaxDBAge is the data age (since the database's newest record)
// above which a report warns that the database is stale.
const DefaultMaxDBAge = vulndb.DefaultMaxDataAge

// ErrLibraryScanning is returned by WithPkgTypes for any package type other
// than "os".
var ErrLibraryScanning = errors.New("library scanning not supported")

// Database is what the scanner needs of a vulnerability database;
// *vulndb.DB implements it.
type Database interface {
	AdvisoriesFor(ctx context.Context, distro, release string, packages []string) (map[string][]vulndb.Advisory, error)
	Releases(ctx context.Context, distro string) ([]vulndb.Release, error)
	PackageSupport(ctx context.Context, distro, release string, packages ...string) ([]vulndb.PackageSupport, error)
	Meta() vulndb.Meta
}

// Status is the outcome of a scan as a whole.
type Status string

// Report statuses.
const (
	// StatusOK: the OS is supported and was scanned; Findings may be empty.
	StatusOK Status = "ok"
	// StatusEndOfLife: the OS release no longer has public security
	// support; the findings are reported but the image is never clean.
	StatusEndOfLife Status = "end_of_life"
	// StatusUnsupported: drydock cannot scan this OS; no findings mean
	// nothing.
	StatusUnsupported Status = "unsupported"
)

// Option configures a Scanner.
type Option func(*Scanner) error

// WithClock sets the clock the end-of-life and stale-DB decisions read.
func WithClock(now func() time.Time) Option {
	return func(s *Scanner) error {
		if now == nil {
			return errors.New("scan.WithClock: nil clock")
		}
		s.now = now
		return nil
	}
}

// WithIgnoreUnfixed drops findings without a fixed version, as Trivy's
// --ignore-unfixed does.
func WithIgnoreUnfixed(ignore bool) Option {
	return func(s *Scanner) error { s.ignoreUnfixed = ignore; return nil }
}

// WithSeverities keeps only findings of these severities (all when none
// are given). Unknown names are an error.
func WithSeverities(sev ...vulndb.Severity) Option {
	return func(s *Scanner) error {
		s.severities = nil
		for _, v := range sev {
			if severityRank(v) < 0 {
				return fmt.Errorf("unknown severity %q: want UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL", v)
			}
			s.severities = append(s.severities, v)
		}
		return nil
	}
}

// WithPkgTypes selects the package types to scan. Only "os" is supported;
// any other is an error wrapping ErrLibraryScanning.
func WithPkgTypes(types ...string) Option {
	return func(s *Scanner) error {
		for _, t := range types {
			if t != "os" {
				return fmt.Errorf("package type %q: %w (only \"os\")", t, ErrLibraryScanning)
			}
		}
		return nil
	}
}

// WithMaxDBAge sets the age above which the report warns that the DB is
// stale (DefaultMaxDBAge by default).
func WithMaxDBAge(d time.Duration) Option {
	return func(s *Scanner) error {
		if d <= 0 {
			return fmt.Errorf("scan.WithMaxDBAge: %v is not positive", d)
		}
		s.maxAge = d
		return nil
	}
}

// WithDBPath records the path of the database in the report.
func WithDBPath(p string) Option {
	return func(s *Scanner) error { s.dbPath = p; return nil }
}

// WithAnalyzers replaces the inventory analyzers (by default
// inventory.Analyzers with the limits of WithLimits).
func WithAnalyzers(a ...inventory.Analyzer) Option {
	return func(s *Scanner) error {
		if len(a) == 0 {
			return errors.New("scan.WithAnalyzers: no analyzers")
		}
		s.analyzers = slices.Clone(a)
		return nil
	}
}

// Scanner scans images against one database. It is safe for concurrent
// use once built.
type Scanner struct {
	db            Database
	dbPath        string
	now           func() time.Time
	ignoreUnfixed bool
	severities    []vulndb.Severity
	maxAge        time.Duration
	analyzers     []inventory.Analyzer
	cache         InventoryCache
	versions      *versionMemo
	limits        Limits
	limitsSet     bool
}

// New returns a Scanner over db.
func New(db Database, opts ...Option) (*Scanner, error) {
	if db == nil {
		return nil, errors.New("scan.New: nil database")
	}
	s := &Scanner{db: db, now: time.Now, maxAge: DefaultMaxDBAge, versions: newVersionMemo(), limits: DefaultLimits()}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.analyzers == nil {
		a, err := inventory.Analyzers(s.limits.AnalyzerOptions()...)
		if err != nil {
			return nil, err
		}
		s.analyzers = a
	}
	return s, nil
}

// Scan is New(db, opts...).Image(ctx, img).
func Scan(ctx context.Context, img v1.Image, db Database, opts ...Option) (*Report, error) {
	s, err := New(db, opts...)
	if err != nil {
		return nil, err
	}
	return s.Image(ctx, img)
}

// osFiles are the files osinfo.Detect reads.
var osFiles = []string{"etc/os-release", "usr/lib/os-release", "etc/debian_version",
	"etc/alpine-release", "etc/redhat-release", "etc/centos-release"}

// Image scans img: its root filesystem, then the filesystem's packages
// (see FS). The report's Artifact carries the image's identity. With an
// InventoryCache, an image already seen (same manifest digest, same
// analyzers) is matched from its stored inventory without reading a layer.
func (s *Scanner) Image(ctx context.Context, img v1.Image) (*Report, error) {
	return s.ImageVia(ctx, img, func(ctx context.Context) (*Snapshot, error) {
		keep := func(p string) bool {
			if slices.Contains(osFiles, p) {
				return true
			}
			return slices.ContainsFunc(s.analyzers, func(a inventory.Analyzer) bool { return a.Required(p) })
		}
		fsys, err := rootfs.New(ctx, img, append(s.limits.RootFSOptions(), rootfs.WithContents(keep))...)
		if err != nil {
			return nil, fmt.Errorf("reading image: %w", err)
		}
		defer fsys.Close()
		return s.collect(ctx, fsys)
	})
}

// ImageVia is Image with the image's inventory read by read when the
// InventoryCache has none: a caller that reads the layers anyway (the
// patcher, through its layer cache) reads them once. read must return
// what Inspect returns for img within the scanner's limits and with its
// analyzers (the default ones); the snapshot is stored in the cache as
// Image stores its own, so the gate and the workflow engine sharing the
// cache each read an image at most once.
func (s *Scanner) ImageVia(ctx context.Context, img v1.Image, read func(ctx context.Context) (*Snapshot, error)) (*Report, error) {
	art, err := artifactOf(img)
	if err != nil {
		return nil, err
	}
	key := s.cacheKey(art.Digest)
	if s.cache != nil {
		snap, ok, err := s.cache.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("reading stored inventory of %s: %w", art.Digest, err)
		}
		if ok {
			rep, err := s.evaluate(ctx, snap)
			if err != nil {
				return nil, fmt.Errorf("scanning image %s: %w", art.ImageID, err)
			}
			rep.Artifact = art
			rep.InventoryCached = true
			return rep, nil
		}
	}
	snap, err := read(ctx)
	if err != nil {
		return nil, fmt.Errorf("scanning image %s: %w", art.ImageID, err)
	}
	if snap == nil || snap.SchemaVersion != snapshotVersion {
		return nil, fmt.Errorf("scanning image %s: the inventory read is not a current snapshot", art.ImageID)
	}
	if s.cache != nil {
		if err := s.cache.Put(ctx, key, snap); err != nil {
			return nil, fmt.Errorf("storing inventory of %s: %w", art.Digest, err)
		}
	}
	rep, err := s.evaluate(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("scanning image %s: %w", art.ImageID, err)
	}
	rep.Artifact = art
	return rep, nil
}

func artifactOf(img v1.Image) (Artifact, error) {
	var a Artifact
	d, err := img.Digest()
	if err != nil {
		return a, fmt.Errorf("reading image manifest: %w", err)
	}
	a.Digest = d.String()
	cn, err := img.ConfigName()
	if err != nil {
		return a, fmt.Errorf("reading image config digest: %w", err)
	}
	a.ImageID = cn.String()
	cf, err := img.ConfigFile()
	if err != nil {
		return a, fmt.Errorf("reading image config: %w", err)
	}
	if cf != nil {
		for _, h := range cf.RootFS.DiffIDs {
			a.DiffIDs = append(a.DiffIDs, h.String())
		}
		a.Config = cf
	}
	return a, nil
}

// FS scans a root filesystem (an image's, or an fstest.MapFS in tests).
// An OS drydock cannot identify or does not support gives a report with
// StatusUnsupported and no error; a root filesystem that cannot be judged
// (see Inspect) is a *refusal.Error; any other error is a failure to scan.
func (s *Scanner) FS(ctx context.Context, fsys fs.FS) (*Report, error) {
	snap, err := s.collect(ctx, fsys)
	if err != nil {
		return nil, err
	}
	return s.evaluate(ctx, snap)
}

// Match matches a snapshot that Inspect read (with the scanner's limits)
// against the database: the scan of an image whose layers the caller has
// already read, without reading them again.
func (s *Scanner) Match(ctx context.Context, snap *Snapshot) (*Report, error) {
	if snap == nil {
		return nil, errors.New("scan.Match: nil snapshot")
	}
	return s.evaluate(ctx, snap)
}

// collect reads what a scan needs from a root filesystem: the OS and the
// installed packages, validated (see Inspect). It is all that depends on
// the image, so it is what an InventoryCache stores.
func (s *Scanner) collect(ctx context.Context, fsys fs.FS) (*Snapshot, error) {
	return Inspect(ctx, fsys, s.limits, s.analyzers...)
}

// evaluate matches a snapshot against the database at the scanner's time.
func (s *Scanner) evaluate(ctx context.Context, snap *Snapshot) (*Report, error) {
	now := s.now().UTC()
	meta := s.db.Meta()
	rep := &Report{
		SchemaVersion: SchemaVersion,
		ScannedAt:     now,
		DB:            dbInfo(s.dbPath, meta, now, s.maxAge),
		Filters:       Filters{IgnoreUnfixed: s.ignoreUnfixed, Severities: slices.Clone(s.severities)},
	}
	if rep.DB.Stale {
		rep.Warnings = append(rep.Warnings, meta.Freshness(now, s.maxAge).Warning())
	}
	o := snap.OS
	rep.OS = osOf(o)
	if snap.Unsupported != "" {
		rep.Status = StatusUnsupported
		rep.StatusReason = snap.Unsupported
		return rep, nil
	}
	distro, release := o.ID, o.ReleaseKey()
	if distro != vulndb.Debian && distro != vulndb.Ubuntu && distro != vulndb.Alpine {
		rep.Status = StatusUnsupported
		rep.StatusReason = fmt.Sprintf("%s: no vulnerability data for %q", displayOS(rep.OS), distro)
		return rep, nil
	}
	rels, err := s.db.Releases(ctx, distro)
	if err != nil {
		return nil, fmt.Errorf("reading %s releases: %w", distro, err)
	}
	sup := osinfo.Lifecycle(o, rels, now)
	rep.Support = Support{State: string(sup.State), Until: sup.Until, Codename: sup.Release.Codename}
	rep.Status = StatusOK
	if sup.Ended() {
		rep.Status = StatusEndOfLife
		rep.Support.PublicSupportEnded = publicEnd(sup)
		rep.StatusReason = fmt.Sprintf("%s is end-of-life: public security support ended %s", displayOS(rep.OS), rep.Support.PublicSupportEnded.Format(time.DateOnly))
		rep.OS.EOSL = true
	}
	if snap.Skipped > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d malformed package database entries skipped", snap.Skipped))
	}
	if len(snap.Packages) > s.limits.MaxPackages { // a stored inventory, read under other limits
		return nil, overPackages(len(snap.Packages), s.limits.MaxPackages)
	}
	groups := groupBySource(snap.Packages)
	rep.Packages = len(snap.Packages)
	rep.SourcePackages = len(groups)
	if len(groups) == 0 {
		rep.Warnings = append(rep.Warnings, "no installed OS packages found")
	}
	names := make([]string, 0, len(groups))
	for _, g := range groups {
		names = append(names, g.name)
	}
	advs, err := s.db.AdvisoriesFor(ctx, distro, release, names)
	if err != nil {
		return nil, fmt.Errorf("reading advisories: %w", err)
	}
	if len(advs) == 0 && len(groups) > 0 {
		if sup.State == osinfo.StateUnknown {
			rep.Status = StatusUnsupported
			rep.StatusReason = fmt.Sprintf("%s: the vulnerability database has neither release data nor advisories for %s %s", displayOS(rep.OS), distro, release)
			return rep, nil
		}
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the vulnerability database has no advisory for any installed package of %s %s", distro, release))
	}
	m := matcher{compare: s.versions.compare, left: s.limits.MaxFindings}
	for _, g := range groups {
		fs, ok := m.match(g, advs[g.name])
		if !ok {
			return nil, overFindings(s.limits.MaxFindings, g.name)
		}
		rep.Findings = append(rep.Findings, fs...)
	}
	rep.Warnings = append(rep.Warnings, m.warns...)
	if m.dropped > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("and %d more version comparison warnings", m.dropped))
	}
	rep.Findings = s.filter(rep.Findings)
	SortFindings(rep.Findings)
	if len(names) > 0 {
		ps, err := s.db.PackageSupport(ctx, distro, release, names...)
		if err != nil {
			return nil, fmt.Errorf("reading package support: %w", err)
		}
		rep.PackageSupport = supportNotes(ps, groups)
	}
	return rep, nil
}

// publicEnd is the last day of public security support (regular or LTS)
// of an ended release; paid ELTS/ESM does not count.
func publicEnd(sup osinfo.Support) time.Time {
	switch r := sup.Release; {
	case !r.EOLLTS.IsZero():
		return r.EOLLTS
	case !r.EOL.IsZero():
		return r.EOL
	}
	return sup.Until
}

func displayOS(o OS) string {
	if o.PrettyName != "" {
		return o.PrettyName
	}
	return strings.TrimSpace(o.ID + " " + o.Version)
}

func osOf(o osinfo.OS) OS {
	v := o.VersionID
	if o.Family == osinfo.FamilyDebian && o.ID == "debian" && o.DebianVersion != "" {
		if _, err := fmt.Sscanf(o.DebianVersion, "%d", new(int)); err == nil {
			v = o.DebianVersion // "11.11", as Trivy names Debian
		}
	}
	return OS{Family: string(o.Family), ID: o.ID, Name: o.Name, PrettyName: o.PrettyName,
		Version: v, Codename: o.VersionCodename, Distroless: o.Distroless, Release: o.ReleaseKey()}
}

func dbInfo(path string, m vulndb.Meta, now time.Time, maxAge time.Duration) DBInfo {
	d := DBInfo{Path: path, BuiltAt: m.BuiltAt.UTC(), SchemaVersion: m.SchemaVersion}
	for _, s := range m.Sources {
		d.Sources = append(d.Sources, DBSource{Name: s.Name, DataAsOf: s.DataAsOf.UTC()})
	}
	d.Age = m.Age(now).Truncate(time.Second)
	if t, ok := m.DataAsOf(); ok {
		d.DataAsOf = t.UTC()
	}
	d.DataAge = m.DataAge(now).Truncate(time.Second)
	d.Stale = m.Stale(now, maxAge)
	return d
}

// sourceGroup is the installed binary packages of one source package.
type sourceGroup struct {
	name     string
	binaries []inventory.Package
}

// groupBySource groups packages by source name, sorted by name; binaries
// keep the inventory's order.
func groupBySource(pkgs []inventory.Package) []sourceGroup {
	idx := map[string]int{}
	var out []sourceGroup
	for _, p := range pkgs {
		src := cmp.Or(p.SourceName, p.Name)
		i, ok := idx[src]
		if !ok {
			i = len(out)
			idx[src] = i
			out = append(out, sourceGroup{name: src})
		}
		out[i].binaries = append(out[i].binaries, p)
	}
	slices.SortFunc(out, func(a, b sourceGroup) int { return strings.Compare(a.name, b.name) })
	return out
}

// maxMatchWarnings bounds the warnings matching adds to a report.
const maxMatchWarnings = 100

// matcher applies advisories to installed packages within a findings
// budget.
type matcher struct {
	compare func(eco, a, b string) (int, error)
	left    int // findings still allowed
	warns   []string
	dropped int // warnings past maxMatchWarnings
}

func (m *matcher) warn(format string, args ...any) {
	if len(m.warns) >= maxMatchWarnings {
		m.dropped++
		return
	}
	m.warns = append(m.warns, fmt.Sprintf(format, args...))
}

// match applies the advisories of one source package to its binaries. A
// fixed advisory without a fixed version (the release never shipped the
// bug) applies to nothing, like not_affected. ok is false as soon as the
// findings would go past the budget.
func (m *matcher) match(g sourceGroup, advs []vulndb.Advisory) (out []Finding, ok bool) {
	add := func(f Finding) bool {
		if m.left <= 0 {
			return false
		}
		m.left--
		out = append(out, f)
		return true
	}
	for _, bin := range g.binaries {
		srcVer := cmp.Or(bin.SourceVersion, bin.Version)
		_, cerr := version.For(bin.Ecosystem)
		for _, a := range advs {
			switch a.Status {
			case vulndb.StatusNotAffected:
				continue
			case vulndb.StatusFixed:
				if a.FixedVersion == "" {
					continue
				}
				if cerr != nil {
					m.warn("%s: %s %s: %v", a.ID, bin.Name, bin.Version, cerr)
					continue
				}
				n, err := m.compare(bin.Ecosystem, srcVer, a.FixedVersion)
				if err != nil {
					m.warn("%s: comparing %s %s with fixed version %s: %v", a.ID, g.name, srcVer, a.FixedVersion, err)
					continue
				}
				if n >= 0 {
					continue
				}
				if !add(finding(g.name, srcVer, bin, a)) {
					return nil, false
				}
			default:
				f := finding(g.name, srcVer, bin, a)
				f.FixedVersion = ""
				if !add(f) {
					return nil, false
				}
			}
		}
	}
	return out, true
}

func finding(src, srcVer string, bin inventory.Package, a vulndb.Advisory) Finding {
	return Finding{
		VulnerabilityID:  a.ID,
		PkgName:          bin.Name,
		PkgArch:          bin.Arch,
		InstalledVersion: bin.Version,
		SrcName:          src,
		SrcVersion:       srcVer,
		Ecosystem:        bin.Ecosystem,
		FixedVersion:     a.FixedVersion,
		Status:           a.Status,
		Severity:         cmp.Or(a.Severity, vulndb.SeverityUnknown),
		SeveritySource:   a.SeveritySource,
		Title:            a.Title,
		Description:      a.Description,
		References:       slices.Clone(a.References),
		FixedBy:          slices.Clone(a.FixedBy),
		DataSource:       a.Source,
	}
}

func (s *Scanner) filter(fs []Finding) []Finding {
	return slices.DeleteFunc(fs, func(f Finding) bool {
		if s.ignoreUnfixed && f.FixedVersion == "" {
			return true
		}
		return len(s.severities) > 0 && !slices.Contains(s.severities, f.Severity)
	})
}

func supportNotes(ps []vulndb.PackageSupport, groups []sourceGroup) []PackageSupportNote {
	bins := map[string][]string{}
	for _, g := range groups {
		for _, b := range g.binaries {
			bins[g.name] = append(bins[g.name], b.Name)
		}
	}
	var out []PackageSupportNote
	for _, p := range ps {
		b := slices.Compact(slices.Sorted(slices.Values(bins[p.Package])))
		out = append(out, PackageSupportNote{SrcName: p.Package, Binaries: b, Kind: p.Kind,
			LastVersion: p.LastVersion, EndDate: p.EndDate.UTC(), Details: p.Details, Source: p.Source})
	}
	return out
}

// severityRank orders severities; -1 for an unknown name.
func severityRank(s vulndb.Severity) int {
	return slices.Index(Severities, s)
}

// Severities lists the severities lowest first, as the table's Total line
// counts them.
var Severities = []vulndb.Severity{vulndb.SeverityUnknown, vulndb.SeverityLow, vulndb.SeverityMedium, vulndb.SeverityHigh, vulndb.SeverityCritical}

// ParseSeverities parses a comma-separated list such as "HIGH,CRITICAL"
// (case-insensitive; blanks ignored).
func ParseSeverities(list string) ([]vulndb.Severity, error) {
	var out []vulndb.Severity
	for _, f := range strings.Split(list, ",") {
		f = strings.ToUpper(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		s := vulndb.Severity(f)
		if severityRank(s) < 0 {
			return nil, fmt.Errorf("unknown severity %q: want UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL", f)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// SortFindings sorts findings as the report lists them: by binary package,
// then vulnerability ID, then installed version and arch.
func SortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			strings.Compare(a.PkgName, b.PkgName),
			strings.Compare(a.VulnerabilityID, b.VulnerabilityID),
			strings.Compare(a.InstalledVersion, b.InstalledVersion),
			strings.Compare(a.PkgArch, b.PkgArch),
			strings.Compare(a.SrcName, b.SrcName),
		)
	})
}
