package vulndb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// builder writes a new database file. It works on a temporary file beside
// the target, in one transaction, and the file replaces the target only
// when everything succeeded (commit): a failed build leaves the previous
// database untouched, and readers that have the old file open keep reading
// it (the replace is a rename, never a write in place).
type builder struct {
	target string
	tmp    string
	db     *sql.DB
	tx     *sql.Tx

	insAdv, insDetail, insRel, insSup, insFetch *sql.Stmt

	mu         sync.Mutex
	detailIDs  map[[32]byte]int64
	nextDetail int64
	spDetail   int64 // nextDetail at the savepoint
}

func newBuilder(ctx context.Context, target string) (*builder, error) {
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating database directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".build-*.db")
	if err != nil {
		return nil, fmt.Errorf("creating database file: %w", err)
	}
	f.Close()
	b := &builder{target: target, tmp: f.Name(), detailIDs: map[[32]byte]int64{}}
	u := url.URL{Scheme: "file", OmitHost: true, Path: b.tmp,
		RawQuery: "_pragma=journal_mode(MEMORY)&_pragma=synchronous(OFF)&_pragma=cache_size(-65536)&_pragma=page_size(8192)"}
	if b.db, err = sql.Open("sqlite", u.String()); err != nil {
		b.abort()
		return nil, fmt.Errorf("creating database %s: %w", b.tmp, err)
	}
	b.db.SetMaxOpenConns(1)
	if err := b.init(ctx); err != nil {
		b.abort()
		return nil, fmt.Errorf("creating database %s: %w", b.tmp, err)
	}
	return b, nil
}

func (b *builder) init(ctx context.Context) error {
	if _, err := b.db.ExecContext(ctx, schemaSQL); err != nil {
		return err
	}
	var err error
	if b.tx, err = b.db.BeginTx(ctx, nil); err != nil {
		return err
	}
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = b.tx.PrepareContext(ctx, q)
		return s
	}
	b.insAdv = prep(`INSERT INTO advisories VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	b.insDetail = prep(`INSERT INTO details VALUES (?,?,?,?)`)
	b.insRel = prep(`INSERT OR REPLACE INTO releases VALUES (?,?,?,?,?,?,?,?,?,?)`)
	b.insSup = prep(`INSERT INTO package_support VALUES (?,?,?,?,?,?,?,?)`)
	b.insFetch = prep(`INSERT OR REPLACE INTO fetches VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	return err
}

// abort drops the temporary file.
func (b *builder) abort() {
	if b.tx != nil {
		_ = b.tx.Rollback()
	}
	if b.db != nil {
		b.db.Close()
	}
	os.Remove(b.tmp)
	os.Remove(b.tmp + "-journal")
}

// savepoint starts a savepoint (not nested: one at a time).
func (b *builder) savepoint(ctx context.Context, name string) error {
	b.mu.Lock()
	b.spDetail = b.nextDetail
	b.mu.Unlock()
	_, err := b.tx.ExecContext(ctx, "SAVEPOINT "+name)
	return err
}

func (b *builder) release(ctx context.Context, name string) error {
	_, err := b.tx.ExecContext(ctx, "RELEASE "+name)
	return err
}

func (b *builder) rollbackTo(ctx context.Context, name string) error {
	if _, err := b.tx.ExecContext(ctx, "ROLLBACK TO "+name); err != nil {
		return err
	}
	// The details rows written since the savepoint are gone: forget them.
	b.mu.Lock()
	for k, id := range b.detailIDs {
		if id > b.spDetail {
			delete(b.detailIDs, k)
		}
	}
	b.nextDetail = b.spDetail
	b.mu.Unlock()
	return b.release(ctx, name)
}

func (b *builder) addAdvisory(ctx context.Context, a Advisory) error {
	switch {
	case a.ID == "":
		return errors.New("advisory without ID")
	case a.Distro == "" || a.Release == "" || a.Package == "":
		return fmt.Errorf("advisory %s: distro, release and package are required (got %q, %q, %q)", a.ID, a.Distro, a.Release, a.Package)
	}
	if a.Severity == "" {
		a.Severity = SeverityUnknown
	}
	refs := joinList(a.References)
	b.mu.Lock()
	defer b.mu.Unlock()
	key := sha256.Sum256([]byte(a.Title + "\x00" + a.Description + "\x00" + refs))
	id, ok := b.detailIDs[key]
	if !ok {
		b.nextDetail++
		id = b.nextDetail
		if _, err := b.insDetail.ExecContext(ctx, id, a.Title, a.Description, refs); err != nil {
			return fmt.Errorf("storing advisory %s: %w", a.ID, err)
		}
		b.detailIDs[key] = id
	}
	_, err := b.insAdv.ExecContext(ctx, a.Distro, a.Release, a.Package, a.ID, a.Source, string(a.Status), a.FixedVersion,
		string(a.Severity), a.SeveritySource, joinList(a.FixedBy), nanos(a.Published), nanos(a.Modified), id)
	if err != nil {
		return fmt.Errorf("storing advisory %s: %w", a.ID, err)
	}
	return nil
}

func (b *builder) addRelease(ctx context.Context, r Release) error {
	if r.Distro == "" || r.Version == "" {
		return fmt.Errorf("release %q %q: distro and version are required", r.Distro, r.Version)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.insRel.ExecContext(ctx, r.Distro, r.Version, r.Codename, r.Series, nanos(r.Created), nanos(r.Released),
		nanos(r.EOL), nanos(r.EOLLTS), nanos(r.EOLELTS), r.Source)
	if err != nil {
		return fmt.Errorf("storing release %s %s: %w", r.Distro, r.Version, err)
	}
	return nil
}

func (b *builder) addSupport(ctx context.Context, p PackageSupport) error {
	if p.Distro == "" || p.Release == "" || p.Package == "" {
		return fmt.Errorf("package support %q %q %q: distro, release and package are required", p.Distro, p.Release, p.Package)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.insSup.ExecContext(ctx, p.Distro, p.Release, p.Package, p.Kind, p.LastVersion, nanos(p.EndDate), p.Details, p.Source)
	if err != nil {
		return fmt.Errorf("storing package support %s %s %s: %w", p.Distro, p.Release, p.Package, err)
	}
	return nil
}

func (b *builder) addFetch(ctx context.Context, source string, f FetchMeta) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.insFetch.ExecContext(ctx, source, f.URL, f.ETag, f.LastModified, f.SHA256, f.Size, nanos(f.FetchedAt), f.Unchanged,
		nanos(f.DataAsOf), f.Advisories, f.Releases, f.PackageSupport, f.Error)
	if err != nil {
		return fmt.Errorf("storing fetch record of %s %s: %w", source, f.URL, err)
	}
	return nil
}

// commit indexes and stamps the database, then atomically replaces the
// target with it.
func (b *builder) commit(ctx context.Context, builtAt time.Time) error {
	err := b.finish(ctx, builtAt)
	if err == nil {
		err = syncFile(b.tmp)
	}
	if err == nil {
		err = os.Chmod(b.tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(b.tmp, b.target)
	}
	if err != nil {
		b.abort()
		return fmt.Errorf("writing database %s: %w", b.target, err)
	}
	syncDir(filepath.Dir(b.target))
	return nil
}

func (b *builder) finish(ctx context.Context, builtAt time.Time) error {
	for _, q := range []string{indexSQL, `INSERT INTO meta VALUES ('` + metaBuiltAt + `', '` + builtAt.UTC().Format(time.RFC3339Nano) + `')`,
		`INSERT INTO meta VALUES ('` + metaSchema + `', '` + strconv.Itoa(SchemaVersion) + `')`,
		// Last: a file without it is refused by Open as incomplete.
		`PRAGMA user_version = ` + strconv.Itoa(SchemaVersion)} {
		if _, err := b.tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if err := b.tx.Commit(); err != nil {
		return err
	}
	b.tx = nil
	if _, err := b.db.ExecContext(ctx, `ANALYZE`); err != nil {
		return err
	}
	err := b.db.Close()
	b.db = nil
	return err
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// sink is the Sink a Source imports one file into; it counts what it got
// and stamps every record with the source's name.
type sink struct {
	ctx    context.Context
	b      *builder
	source string
	stats  FetchMeta
}

var _ Sink = (*sink)(nil)

func (s *sink) Advisory(a Advisory) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	a.Source = s.source
	if err := s.b.addAdvisory(s.ctx, a); err != nil {
		return err
	}
	s.stats.Advisories++
	if a.Modified.After(s.stats.DataAsOf) {
		s.stats.DataAsOf = a.Modified
	}
	return nil
}

func (s *sink) Release(r Release) error {
	r.Source = s.source
	if err := s.b.addRelease(s.ctx, r); err != nil {
		return err
	}
	s.stats.Releases++
	return nil
}

func (s *sink) PackageSupport(p PackageSupport) error {
	p.Source = s.source
	if err := s.b.addSupport(s.ctx, p); err != nil {
		return err
	}
	s.stats.PackageSupport++
	return nil
}

// copySource re-inserts everything old holds from source (used for the
// sources an update does not touch, or whose update failed with
// keep-going), with the fetch records they were built from, marked with
// failure when it is not empty.
func (b *builder) copySource(ctx context.Context, old *DB, source, failure string) error {
	s := &sink{ctx: ctx, b: b, source: source}
	rows, err := old.db.QueryContext(ctx, `SELECT distro, release, package, advisories.id, status, fixed_version, severity, severity_source, fixed_by, published, modified, title, description, refs
		FROM advisories JOIN details ON details.id = advisories.detail_id WHERE source = ? ORDER BY advisories.rowid`, source)
	if err != nil {
		return fmt.Errorf("copying %s from the previous database: %w", source, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Advisory
		var status, severity, fixedBy, refs string
		var pub, mod int64
		if err := rows.Scan(&a.Distro, &a.Release, &a.Package, &a.ID, &status, &a.FixedVersion, &severity, &a.SeveritySource, &fixedBy, &pub, &mod, &a.Title, &a.Description, &refs); err != nil {
			return fmt.Errorf("copying %s from the previous database: %w", source, err)
		}
		a.Status, a.Severity, a.FixedBy, a.References = Status(status), Severity(severity), splitList(fixedBy), splitList(refs)
		a.Published, a.Modified = fromNanos(pub), fromNanos(mod)
		if err := s.Advisory(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("copying %s from the previous database: %w", source, err)
	}
	rels, err := old.queryReleasesRaw(ctx, source)
	if err != nil {
		return err
	}
	for _, r := range rels {
		if err := s.Release(r); err != nil {
			return err
		}
	}
	sup, err := old.supportOf(ctx, source)
	if err != nil {
		return err
	}
	for _, p := range sup {
		if err := s.PackageSupport(p); err != nil {
			return err
		}
	}
	for _, sm := range old.meta.Sources {
		if sm.Name != source {
			continue
		}
		for _, f := range sm.Fetches {
			f.Error = failure
			if err := b.addFetch(ctx, source, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *DB) queryReleasesRaw(ctx context.Context, source string) ([]Release, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT distro, version, codename, series, created, released, eol, eol_lts, eol_elts, source FROM releases WHERE source = ? ORDER BY distro, version`, source)
	if err != nil {
		return nil, fmt.Errorf("reading releases of %s: %w", source, err)
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var t [5]int64
		if err := rows.Scan(&r.Distro, &r.Version, &r.Codename, &r.Series, &t[0], &t[1], &t[2], &t[3], &t[4], &r.Source); err != nil {
			return nil, fmt.Errorf("reading releases of %s: %w", source, err)
		}
		r.Created, r.Released, r.EOL, r.EOLLTS, r.EOLELTS = fromNanos(t[0]), fromNanos(t[1]), fromNanos(t[2]), fromNanos(t[3]), fromNanos(t[4])
		out = append(out, r)
	}
	return out, rows.Err()
}

func (d *DB) supportOf(ctx context.Context, source string) ([]PackageSupport, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT distro, release, package, kind, last_version, end_date, details, source FROM package_support WHERE source = ? ORDER BY rowid`, source)
	if err != nil {
		return nil, fmt.Errorf("reading package support of %s: %w", source, err)
	}
	defer rows.Close()
	var out []PackageSupport
	for rows.Next() {
		var p PackageSupport
		var end int64
		if err := rows.Scan(&p.Distro, &p.Release, &p.Package, &p.Kind, &p.LastVersion, &end, &p.Details, &p.Source); err != nil {
			return nil, fmt.Errorf("reading package support of %s: %w", source, err)
		}
		p.EndDate = fromNanos(end)
		out = append(out, p)
	}
	return out, rows.Err()
}
