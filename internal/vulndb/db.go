package vulndb

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go "sqlite" database/sql driver
)

// DefaultPrecedence orders sources when several feeds speak about the same
// vulnerability, package and release: the vendors' own feeds (the Debian
// security tracker, the Alpine secdb) before OSV, which is derived from them.
// Sources not listed rank after these, by name.
var defaultPrecedence = []string{"debian-tracker", "alpine-secdb", "osv"}

// DefaultPrecedence returns the default source precedence (a copy).
func DefaultPrecedence() []string { return slices.Clone(defaultPrecedence) }

// DB is an open, read-only vulnerability database. It is safe for
// concurrent use. The file is opened immutable: Update and Pull never
// modify a database file in place, they replace it, so an open DB keeps
// reading the file it opened.
type DB struct {
	path    string
	db      *sql.DB
	rank    map[string]int
	advOne  *sql.Stmt
	advMany *sql.Stmt
	meta    Meta

	mu      sync.Mutex
	details map[int64]detail      // cache; strings are shared, never copied
	merged  map[string][]Advisory // cache of merged results by distro, release, package
	cached  int                   // advisories (+1 per package) in merged
}

// maxCachedAdvisories bounds the merged-results cache (about 250 bytes
// each, plus the shared texts). The cache is dropped whole when full.
const maxCachedAdvisories = 200000

type detail struct {
	title, description string
	refs               []string
}

// detailCacheSize bounds the details cache (entries). The cache is dropped
// whole when full: simple, and the working set of a scan is far smaller.
const detailCacheSize = 20000

// OpenOption configures Open.
type OpenOption func(*DB) error

// WithPrecedence sets the source precedence used to merge records (first
// wins); sources not listed rank after the listed ones, by name.
func WithPrecedence(sources ...string) OpenOption {
	return func(d *DB) error {
		if len(sources) == 0 {
			return errors.New("vulndb.WithPrecedence: no sources")
		}
		d.rank = make(map[string]int, len(sources))
		for i, s := range sources {
			if _, dup := d.rank[s]; dup {
				return fmt.Errorf("vulndb.WithPrecedence: %q listed twice", s)
			}
			d.rank[s] = i
		}
		return nil
	}
}

// Open opens the database at path read-only, checking that it is a
// complete SQLite file (ErrCorrupt otherwise) of SchemaVersion
// (*SchemaError otherwise).
func Open(path string, opts ...OpenOption) (*DB, error) {
	d := &DB{path: path, details: map[int64]detail{}, merged: map[string][]Advisory{}}
	if err := WithPrecedence(defaultPrecedence...)(d); err != nil {
		return nil, err
	}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: "mode=ro&immutable=1&_pragma=query_only(1)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("opening vulnerability database %s: %w", path, err)
	}
	d.db = db
	if err := d.init(); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) init() error {
	var v int
	if err := d.db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("%w %s: %v", ErrCorrupt, d.path, err)
	}
	if v != SchemaVersion {
		return &SchemaError{Path: d.path, Found: v, Supported: SchemaVersion}
	}
	const cols = `SELECT package, a.id, source, status, fixed_version, severity, severity_source, fixed_by, published, modified, detail_id, title, description, refs
		FROM advisories AS a JOIN details ON details.id = a.detail_id`
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = d.db.Prepare(q)
		return s
	}
	d.advOne = prep(cols + ` WHERE distro = ? AND release = ? AND package = ?`)
	d.advMany = prep(cols + ` WHERE distro = ? AND release = ? AND package IN (SELECT value FROM json_each(?))`)
	if err != nil {
		return fmt.Errorf("%w %s: preparing queries: %v", ErrCorrupt, d.path, err)
	}
	if d.meta, err = readMeta(context.Background(), d.db); err != nil {
		return fmt.Errorf("%w %s: reading metadata: %v", ErrCorrupt, d.path, err)
	}
	return nil
}

// Close releases the database.
func (d *DB) Close() error { return d.db.Close() }

// Path is the file the DB was opened from.
func (d *DB) Path() string { return d.path }

// Advisories returns the advisories for one source package of one release,
// merged across sources (see Merge), sorted by ID. The result is shared
// with the DB's cache: treat it as read-only (clone it to change it).
func (d *DB) Advisories(ctx context.Context, distro, release, sourcePackage string) ([]Advisory, error) {
	res, err := d.AdvisoriesFor(ctx, distro, release, []string{sourcePackage})
	if err != nil {
		return nil, err
	}
	return res[sourcePackage], nil
}

// AdvisoriesFor returns the merged advisories of each of the source
// packages of one release, keyed by package, in one query for the
// packages not yet cached. Packages without advisories have no key. This
// is the scanner's batch API; the same sharing rule as Advisories holds.
//
// Merged results are cached per package (the file is immutable, so the
// cache never goes stale), which makes rescanning many inventories that
// share packages cheap; the cache is bounded (maxCachedAdvisories).
func (d *DB) AdvisoriesFor(ctx context.Context, distro, release string, packages []string) (map[string][]Advisory, error) {
	out := make(map[string][]Advisory, len(packages))
	var miss []string
	d.mu.Lock()
	for _, p := range packages {
		if advs, ok := d.merged[cacheKey3(distro, release, p)]; ok {
			if len(advs) > 0 {
				out[p] = advs
			}
		} else {
			miss = append(miss, p)
		}
	}
	d.mu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	slices.Sort(miss)
	miss = slices.Compact(miss)
	var rows *sql.Rows
	var err error
	if len(miss) == 1 {
		rows, err = d.advOne.QueryContext(ctx, distro, release, miss[0])
	} else {
		var list string
		if list, err = jsonStrings(miss); err == nil {
			rows, err = d.advMany.QueryContext(ctx, distro, release, list)
		}
	}
	var recs []Advisory
	if err == nil {
		recs, err = d.scan(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("querying advisories for %d packages of %s %s: %w", len(miss), distro, release, err)
	}
	slices.SortStableFunc(recs, func(a, b Advisory) int { return strings.Compare(a.Package, b.Package) })
	fresh := make(map[string][]Advisory, len(miss))
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && recs[end].Package == recs[start].Package {
			end++
		}
		group := recs[start:end:end]
		for i := range group {
			group[i].Distro, group[i].Release = distro, release
		}
		fresh[recs[start].Package] = d.merge(group)
		start = end
	}
	d.mu.Lock()
	for _, p := range miss {
		advs := fresh[p]
		if d.cached+len(advs) > maxCachedAdvisories {
			clear(d.merged)
			d.cached = 0
		}
		d.merged[cacheKey3(distro, release, p)] = advs
		d.cached += len(advs) + 1
		if len(advs) > 0 {
			out[p] = advs
		}
	}
	d.mu.Unlock()
	return out, nil
}

func cacheKey3(distro, release, pkg string) string { return distro + "\x00" + release + "\x00" + pkg }

func jsonStrings(ss []string) (string, error) {
	b, err := json.Marshal(ss)
	if err != nil {
		return "", fmt.Errorf("encoding package list: %w", err)
	}
	return string(b), nil
}

// scan reads advisory rows (without distro and release) with their
// details. Details shared by many rows are decoded once (cached by id).
func (d *DB) scan(rows *sql.Rows) ([]Advisory, error) {
	defer rows.Close()
	var out []Advisory
	for rows.Next() {
		var a Advisory
		var status, severity, fixedBy string
		var published, modified, detailID int64
		var title, description, refs sql.RawBytes
		if err := rows.Scan(&a.Package, &a.ID, &a.Source, &status, &a.FixedVersion, &severity, &a.SeveritySource, &fixedBy, &published, &modified,
			&detailID, &title, &description, &refs); err != nil {
			return nil, err
		}
		a.Status, a.Severity = Status(status), Severity(severity)
		a.FixedBy = splitList(fixedBy)
		a.Published, a.Modified = fromNanos(published), fromNanos(modified)
		d.mu.Lock()
		det, ok := d.details[detailID]
		if !ok {
			det = detail{title: string(title), description: string(description), refs: splitList(string(refs))}
			if len(d.details) >= detailCacheSize {
				clear(d.details)
			}
			d.details[detailID] = det
		}
		d.mu.Unlock()
		a.Title, a.Description, a.References = det.title, det.description, det.refs
		out = append(out, a)
	}
	return out, rows.Err()
}

// splitList decodes a list stored one item per line.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// joinList encodes a sorted, de-duplicated list one item per line.
func joinList(ss []string) string {
	ss = slices.Clone(ss)
	slices.Sort(ss)
	ss = slices.Compact(ss)
	if len(ss) > 0 && ss[0] == "" {
		ss = ss[1:]
	}
	return strings.Join(ss, "\n")
}

// Merge combines the records of one package in one release, as several
// sources give them, into one Advisory per vulnerability ID, sorted by
// package then ID. It is what Advisories does; exported for callers that
// hold records of their own.
//
// The precedence (WithPrecedence; by default debian-tracker, alpine-secdb,
// osv, then others by name) picks, for each ID, the primary record: the one
// from the highest-ranked source; among records of one source, a fixed one
// before others, then the newest Modified. The merged advisory takes from
// the primary Status, FixedVersion and Source; Severity (with its source),
// Title and Description from the highest-ranked record that has one;
// FixedBy and References are the sorted union of all records; Published is
// the earliest, Modified the latest.
func Merge(recs []Advisory, precedence ...string) []Advisory {
	if len(precedence) == 0 {
		precedence = defaultPrecedence
	}
	rank := make(map[string]int, len(precedence))
	for i, s := range precedence {
		if _, ok := rank[s]; !ok {
			rank[s] = i
		}
	}
	return mergeRanked(slices.Clone(recs), rank)
}

func (d *DB) merge(recs []Advisory) []Advisory { return mergeRanked(recs, d.rank) }

// mergeRanked merges in place (recs is reordered).
func mergeRanked(recs []Advisory, rank map[string]int) []Advisory {
	rankOf := func(s string) int {
		if r, ok := rank[s]; ok {
			return r
		}
		return len(rank)
	}
	slices.SortFunc(recs, func(a, b Advisory) int {
		return cmp.Or(
			strings.Compare(a.Package, b.Package),
			strings.Compare(a.ID, b.ID),
			cmp.Compare(rankOf(a.Source), rankOf(b.Source)),
			strings.Compare(a.Source, b.Source),
			cmp.Compare(fixedFirst(a.Status), fixedFirst(b.Status)),
			b.Modified.Compare(a.Modified),
			strings.Compare(a.FixedVersion, b.FixedVersion),
		)
	})
	out := recs[:0:0]
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && recs[end].ID == recs[start].ID && recs[end].Package == recs[start].Package {
			end++
		}
		out = append(out, mergeGroup(recs[start:end]))
		start = end
	}
	return out
}

func fixedFirst(s Status) int {
	if s == StatusFixed {
		return 0
	}
	return 1
}

// mergeGroup merges records of one ID, sorted primary first.
func mergeGroup(g []Advisory) Advisory {
	m := g[0]
	if len(g) == 1 {
		return m
	}
	var fixedBy, refs []string
	for _, a := range g {
		fixedBy = append(fixedBy, a.FixedBy...)
		refs = append(refs, a.References...)
		if (m.Severity == "" || m.Severity == SeverityUnknown) && a.Severity != "" && a.Severity != SeverityUnknown {
			m.Severity, m.SeveritySource = a.Severity, a.SeveritySource
		}
		if m.Title == "" {
			m.Title = a.Title
		}
		if m.Description == "" {
			m.Description = a.Description
		}
		if !a.Published.IsZero() && (m.Published.IsZero() || a.Published.Before(m.Published)) {
			m.Published = a.Published
		}
		if a.Modified.After(m.Modified) {
			m.Modified = a.Modified
		}
	}
	m.FixedBy = splitList(joinList(fixedBy))
	m.References = splitList(joinList(refs))
	return m
}

// Packages returns the source packages that have advisories in one
// release, sorted.
func (d *DB) Packages(ctx context.Context, distro, release string) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT DISTINCT package FROM advisories WHERE distro = ? AND release = ? ORDER BY package`, distro, release)
	if err != nil {
		return nil, fmt.Errorf("listing packages of %s %s: %w", distro, release, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("listing packages of %s %s: %w", distro, release, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Release returns the release of distro whose version, series or codename
// (case-insensitive) is version ("12", "bookworm", "Bookworm"), and whether
// there is one. When several
// sources describe it, the one first by name wins.
func (d *DB) Release(ctx context.Context, distro, version string) (Release, bool, error) {
	rels, err := d.queryReleases(ctx, `WHERE distro = ? AND (version = ? OR series = ? OR lower(codename) = lower(?))`, distro, version, version, version)
	if err != nil || len(rels) == 0 {
		return Release{}, false, err
	}
	return rels[0], true, nil
}

// Releases returns every release of distro, sorted by release date then
// version; one per version.
func (d *DB) Releases(ctx context.Context, distro string) ([]Release, error) {
	rels, err := d.queryReleases(ctx, `WHERE distro = ?`, distro)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(rels, func(a, b Release) int {
		return cmp.Or(a.Released.Compare(b.Released), a.Created.Compare(b.Created), strings.Compare(a.Version, b.Version))
	})
	return rels, nil
}

func (d *DB) queryReleases(ctx context.Context, where string, args ...any) ([]Release, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT distro, version, codename, series, created, released, eol, eol_lts, eol_elts, source FROM releases `+where+` ORDER BY distro, version, source`, args...)
	if err != nil {
		return nil, fmt.Errorf("querying releases: %w", err)
	}
	defer rows.Close()
	var out []Release
	seen := map[string]bool{}
	for rows.Next() {
		var r Release
		var t [5]int64
		if err := rows.Scan(&r.Distro, &r.Version, &r.Codename, &r.Series, &t[0], &t[1], &t[2], &t[3], &t[4], &r.Source); err != nil {
			return nil, fmt.Errorf("querying releases: %w", err)
		}
		if seen[r.Distro+"\x00"+r.Version] {
			continue
		}
		seen[r.Distro+"\x00"+r.Version] = true
		r.Created, r.Released, r.EOL, r.EOLLTS, r.EOLELTS = fromNanos(t[0]), fromNanos(t[1]), fromNanos(t[2]), fromNanos(t[3]), fromNanos(t[4])
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("querying releases: %w", err)
	}
	return out, nil
}

// PackageSupport returns the debian-security-support entries for the
// given source packages of one release (all of the release's entries when
// packages is empty), sorted by package, kind and source.
func (d *DB) PackageSupport(ctx context.Context, distro, release string, packages ...string) ([]PackageSupport, error) {
	q := `SELECT distro, release, package, kind, last_version, end_date, details, source FROM package_support WHERE distro = ? AND release = ?`
	args := []any{distro, release}
	if len(packages) > 0 {
		list, err := jsonStrings(packages)
		if err != nil {
			return nil, err
		}
		q += ` AND package IN (SELECT value FROM json_each(?))`
		args = append(args, list)
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY package, kind, source, last_version`, args...)
	if err != nil {
		return nil, fmt.Errorf("querying package support for %s %s: %w", distro, release, err)
	}
	defer rows.Close()
	var out []PackageSupport
	for rows.Next() {
		var p PackageSupport
		var end int64
		if err := rows.Scan(&p.Distro, &p.Release, &p.Package, &p.Kind, &p.LastVersion, &end, &p.Details, &p.Source); err != nil {
			return nil, fmt.Errorf("querying package support for %s %s: %w", distro, release, err)
		}
		p.EndDate = fromNanos(end)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("querying package support for %s %s: %w", distro, release, err)
	}
	return out, nil
}

// Meta says what the database was built from and when.
func (d *DB) Meta() Meta { return d.meta.clone() }

// Meta describes a database build.
type Meta struct {
	SchemaVersion int       `json:"schemaVersion"`
	BuiltAt       time.Time `json:"builtAt"`
	// Sources, sorted by name; each with the files it was built from.
	Sources []SourceMeta `json:"sources"`
}

// SourceMeta is one source's part of a build.
type SourceMeta struct {
	Name           string      `json:"name"`
	Advisories     int         `json:"advisories"`
	Releases       int         `json:"releases"`
	PackageSupport int         `json:"packageSupport"`
	DataAsOf       time.Time   `json:"dataAsOf,omitzero"`
	Fetches        []FetchMeta `json:"fetches"`
}

// FetchMeta is one fetched file of a source.
type FetchMeta struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"lastModified,omitempty"`
	SHA256       string    `json:"sha256"`
	Size         int64     `json:"size"`
	FetchedAt    time.Time `json:"fetchedAt"`
	// Unchanged is true when the server answered 304 Not Modified (or the
	// file's hash was the same as last time).
	Unchanged bool `json:"unchanged,omitempty"`
	// DataAsOf is the newest record Modified time in the file, if any.
	DataAsOf       time.Time `json:"dataAsOf,omitzero"`
	Advisories     int       `json:"advisories"`
	Releases       int       `json:"releases"`
	PackageSupport int       `json:"packageSupport"`
	// Error is set when the file failed and the source's previous records
	// were kept (update with keep-going).
	Error string `json:"error,omitempty"`
}

// Age is how old the build is at now.
func (m Meta) Age(now time.Time) time.Duration { return now.Sub(m.BuiltAt) }

// DefaultMaxDataAge is the data age above which drydock warns that the
// database is stale.
const DefaultMaxDataAge = 72 * time.Hour

// DataAsOf is the date of the newest record in the database (of all its
// sources), and whether any source dates its records. A database built
// today from February's files is as old as February's data.
func (m Meta) DataAsOf() (time.Time, bool) {
	var newest time.Time
	for _, s := range m.Sources {
		if s.DataAsOf.After(newest) {
			newest = s.DataAsOf
		}
	}
	return newest, !newest.IsZero()
}

// DataAge is how old the data is at now: since the newest record, or,
// when no source dates its records, since the build.
func (m Meta) DataAge(now time.Time) time.Duration {
	if t, ok := m.DataAsOf(); ok {
		return now.Sub(t)
	}
	return m.Age(now)
}

// Stale reports whether the data is older than maxAge at now (see
// DataAge).
func (m Meta) Stale(now time.Time, maxAge time.Duration) bool { return m.DataAge(now) > maxAge }

// Freshness is how old a database's data is, for reports and warnings.
type Freshness struct {
	BuiltAt time.Time `json:"builtAt"`
	// DataAsOf is the newest record's date (zero when no source dates
	// its records; the age is then the build's).
	DataAsOf time.Time `json:"dataAsOf,omitzero"`
	// DataAgeSeconds is the data's age at the time asked.
	DataAgeSeconds int64 `json:"dataAgeSeconds"`
	MaxAgeSeconds  int64 `json:"maxAgeSeconds"`
	Stale          bool  `json:"stale"`
}

// Freshness reports the data's age at now against maxAge.
func (m Meta) Freshness(now time.Time, maxAge time.Duration) Freshness {
	f := Freshness{BuiltAt: m.BuiltAt, DataAgeSeconds: int64(m.DataAge(now) / time.Second),
		MaxAgeSeconds: int64(maxAge / time.Second), Stale: m.Stale(now, maxAge)}
	f.DataAsOf, _ = m.DataAsOf()
	return f
}

// Warning is the sentence that says the data is stale ("" when it is
// not).
func (f Freshness) Warning() string {
	if !f.Stale {
		return ""
	}
	age := (time.Duration(f.DataAgeSeconds) * time.Second).Round(time.Hour)
	since := "its newest record is of " + f.DataAsOf.UTC().Format(time.RFC3339)
	if f.DataAsOf.IsZero() {
		since = "its records are undated; it was built " + f.BuiltAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("stale vulnerability data, %s old (%s), over the limit of %s: findings published since are missing; run \"drydock db update\"",
		age, since, time.Duration(f.MaxAgeSeconds)*time.Second)
}

// Stale reports whether the database's data is older than maxAge at now.
func (d *DB) Stale(now time.Time, maxAge time.Duration) bool { return d.meta.Stale(now, maxAge) }

func (m Meta) clone() Meta {
	m.Sources = slices.Clone(m.Sources)
	for i := range m.Sources {
		m.Sources[i].Fetches = slices.Clone(m.Sources[i].Fetches)
	}
	return m
}

// querier is what readMeta needs of *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func readMeta(ctx context.Context, q querier) (Meta, error) {
	var m Meta
	var built, schema string
	if err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaBuiltAt).Scan(&built); err != nil {
		return m, fmt.Errorf("reading %s: %w", metaBuiltAt, err)
	}
	if err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaSchema).Scan(&schema); err != nil {
		return m, fmt.Errorf("reading %s: %w", metaSchema, err)
	}
	var err error
	if m.BuiltAt, err = time.Parse(time.RFC3339Nano, built); err != nil {
		return m, fmt.Errorf("reading %s: %w", metaBuiltAt, err)
	}
	if m.SchemaVersion, err = strconv.Atoi(schema); err != nil {
		return m, fmt.Errorf("reading %s: %w", metaSchema, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT source, url, etag, last_modified, sha256, size, fetched_at, unchanged, data_as_of, advisories, releases, package_support, error FROM fetches ORDER BY source, url`)
	if err != nil {
		return m, fmt.Errorf("reading fetches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var f FetchMeta
		var fetched, asOf int64
		if err := rows.Scan(&name, &f.URL, &f.ETag, &f.LastModified, &f.SHA256, &f.Size, &fetched, &f.Unchanged, &asOf, &f.Advisories, &f.Releases, &f.PackageSupport, &f.Error); err != nil {
			return m, fmt.Errorf("reading fetches: %w", err)
		}
		f.FetchedAt, f.DataAsOf = fromNanos(fetched), fromNanos(asOf)
		if n := len(m.Sources); n == 0 || m.Sources[n-1].Name != name {
			m.Sources = append(m.Sources, SourceMeta{Name: name})
		}
		s := &m.Sources[len(m.Sources)-1]
		s.Fetches = append(s.Fetches, f)
		s.Advisories += f.Advisories
		s.Releases += f.Releases
		s.PackageSupport += f.PackageSupport
		if f.DataAsOf.After(s.DataAsOf) {
			s.DataAsOf = f.DataAsOf
		}
	}
	return m, rows.Err()
}
