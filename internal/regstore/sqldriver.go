package regstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/drydock-project/drydock/internal/database"
)

// Component is the registry index's database name.
const Component = "registry"

// Migrations create the table the index lives in: one row per small file
// (a link, a media type, a referrer descriptor), keyed by its path. Paths
// compare byte by byte (COLLATE "C" on PostgreSQL, SQLite's default), so a
// directory's files are one range of keys.
var Migrations = []database.Migration{{
	Version: 1, Name: "registry index files",
	SQLite: `CREATE TABLE IF NOT EXISTS registry_files (
	path        TEXT PRIMARY KEY,
	content     BLOB NOT NULL,
	modified_at TEXT NOT NULL
)`,
	Postgres: `CREATE TABLE registry_files (
	path        TEXT COLLATE "C" PRIMARY KEY,
	content     BYTEA NOT NULL,
	modified_at TEXT NOT NULL
)`,
}}

// maxIndexFile bounds what the index keeps in one row: its files are links
// and descriptors of a few hundred bytes.
const maxIndexFile = 1 << 20

// SQLDriver is a storage driver for small files on a database: the
// registry index (tags, manifest revisions, layer links, referrers) that
// replicas must read consistently. Every write is one statement or one
// transaction, so PutContent is atomic (AtomicPut).
type SQLDriver struct {
	db  *database.DB
	now func() time.Time
}

var _ storagedriver.StorageDriver = (*SQLDriver)(nil)

// NewSQLDriver migrates the index table in db and returns the driver,
// which closes db with Close.
func NewSQLDriver(ctx context.Context, db *database.DB) (*SQLDriver, error) {
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, fmt.Errorf("registry index: %w", err)
	}
	return &SQLDriver{db: db, now: time.Now}, nil
}

// Close closes the database.
func (d *SQLDriver) Close() error { return d.db.Close() }

// Name implements storagedriver.StorageDriver.
func (d *SQLDriver) Name() string { return "drydock-sql" }

// AtomicPut reports that PutContent replaces a file atomically.
func (d *SQLDriver) AtomicPut(string) bool { return true }

func notFound(p string) error {
	return storagedriver.PathNotFoundError{Path: p, DriverName: "drydock-sql"}
}

// GetContent implements storagedriver.StorageDriver.
func (d *SQLDriver) GetContent(ctx context.Context, p string) ([]byte, error) {
	var b []byte
	err := d.db.QueryRowContext(ctx, `SELECT content FROM registry_files WHERE path = ?`, p).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(p)
	}
	if err != nil {
		return nil, fmt.Errorf("registry index: read %s: %w", p, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// PutContent implements storagedriver.StorageDriver.
func (d *SQLDriver) PutContent(ctx context.Context, p string, content []byte) error {
	if len(content) > maxIndexFile {
		return fmt.Errorf("registry index: %s: %d bytes, at most %d", p, len(content), maxIndexFile)
	}
	if content == nil {
		content = []byte{}
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO registry_files (path, content, modified_at) VALUES (?, ?, ?)
		ON CONFLICT (path) DO UPDATE SET content = excluded.content, modified_at = excluded.modified_at`,
		p, content, d.now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("registry index: write %s: %w", p, err)
	}
	return nil
}

// Reader implements storagedriver.StorageDriver.
func (d *SQLDriver) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	b, err := d.GetContent(ctx, p)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > int64(len(b)) {
		return nil, storagedriver.InvalidOffsetError{Path: p, Offset: offset, DriverName: d.Name()}
	}
	return io.NopCloser(bytes.NewReader(b[offset:])), nil
}

// Writer implements storagedriver.StorageDriver: the file is buffered and
// written by Commit.
func (d *SQLDriver) Writer(ctx context.Context, p string, append bool) (storagedriver.FileWriter, error) {
	w := &sqlWriter{d: d, path: p}
	if append {
		b, err := d.GetContent(ctx, p)
		if err != nil && !errors.As(err, new(storagedriver.PathNotFoundError)) {
			return nil, err
		}
		w.buf.Write(b)
	}
	return w, nil
}

type sqlWriter struct {
	d                          *SQLDriver
	path                       string
	buf                        bytes.Buffer
	closed, committed, cancled bool
}

func (w *sqlWriter) Write(b []byte) (int, error) {
	if w.closed || w.committed || w.cancled {
		return 0, fmt.Errorf("registry index: write to %s after close", w.path)
	}
	if w.buf.Len()+len(b) > maxIndexFile {
		return 0, fmt.Errorf("registry index: %s: more than %d bytes", w.path, maxIndexFile)
	}
	return w.buf.Write(b)
}

func (w *sqlWriter) Size() int64 { return int64(w.buf.Len()) }

func (w *sqlWriter) Close() error {
	w.closed = true
	return nil
}

func (w *sqlWriter) Cancel(context.Context) error {
	w.cancled = true
	return nil
}

func (w *sqlWriter) Commit(ctx context.Context) error {
	if w.committed || w.cancled {
		return fmt.Errorf("registry index: %s already committed or cancelled", w.path)
	}
	w.committed = true
	return w.d.PutContent(ctx, w.path, w.buf.Bytes())
}

// below returns the key range of the files under directory p.
func below(p string) (from, to string) {
	prefix := strings.TrimSuffix(p, "/") + "/"
	// '0' is the byte after '/': the range holds every key with the prefix.
	return prefix, strings.TrimSuffix(prefix, "/") + "0"
}

// Stat implements storagedriver.StorageDriver.
func (d *SQLDriver) Stat(ctx context.Context, p string) (storagedriver.FileInfo, error) {
	var size int64
	var mod string
	err := d.db.QueryRowContext(ctx, `SELECT LENGTH(content), modified_at FROM registry_files WHERE path = ?`, p).Scan(&size, &mod)
	switch {
	case err == nil:
		t, _ := time.Parse(time.RFC3339Nano, mod)
		return storagedriver.FileInfoInternal{FileInfoFields: storagedriver.FileInfoFields{Path: p, Size: size, ModTime: t}}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("registry index: stat %s: %w", p, err)
	}
	from, to := below(p)
	var one int
	err = d.db.QueryRowContext(ctx, `SELECT 1 FROM registry_files WHERE path >= ? AND path < ? LIMIT 1`, from, to).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound(p)
	case err != nil:
		return nil, fmt.Errorf("registry index: stat %s: %w", p, err)
	}
	return storagedriver.FileInfoInternal{FileInfoFields: storagedriver.FileInfoFields{Path: p, IsDir: true}}, nil
}

// List implements storagedriver.StorageDriver: the files and directories
// directly under p.
func (d *SQLDriver) List(ctx context.Context, p string) ([]string, error) {
	from, to := below(p)
	rows, err := d.db.QueryContext(ctx, `SELECT path FROM registry_files WHERE path >= ? AND path < ? ORDER BY path`, from, to)
	if err != nil {
		return nil, fmt.Errorf("registry index: list %s: %w", p, err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("registry index: list %s: %w", p, err)
		}
		child, _, _ := strings.Cut(k[len(from):], "/")
		if child != "" && !seen[child] {
			seen[child] = true
			out = append(out, from+child)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry index: list %s: %w", p, err)
	}
	if len(out) == 0 && p != "/" {
		return nil, notFound(p)
	}
	sort.Strings(out)
	return out, nil
}

// Move implements storagedriver.StorageDriver for files.
func (d *SQLDriver) Move(ctx context.Context, src, dst string) error {
	return d.db.Update(ctx, func(tx *database.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO registry_files (path, content, modified_at)
			SELECT ?, content, ? FROM registry_files WHERE path = ?
			ON CONFLICT (path) DO UPDATE SET content = excluded.content, modified_at = excluded.modified_at`,
			dst, d.now().UTC().Format(time.RFC3339Nano), src)
		if err != nil {
			return fmt.Errorf("registry index: move %s to %s: %w", src, dst, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(src)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM registry_files WHERE path = ?`, src); err != nil {
			return fmt.Errorf("registry index: move %s to %s: %w", src, dst, err)
		}
		return nil
	})
}

// Delete implements storagedriver.StorageDriver: a file, or a directory and
// everything under it.
func (d *SQLDriver) Delete(ctx context.Context, p string) error {
	from, to := below(p)
	res, err := d.db.ExecContext(ctx, `DELETE FROM registry_files WHERE path = ? OR (path >= ? AND path < ?)`, p, from, to)
	if err != nil {
		return fmt.Errorf("registry index: delete %s: %w", p, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(p)
	}
	return nil
}

// RedirectURL implements storagedriver.StorageDriver: index files are
// served by the registry.
func (d *SQLDriver) RedirectURL(*http.Request, string) (string, error) { return "", nil }

// Walk implements storagedriver.StorageDriver.
func (d *SQLDriver) Walk(ctx context.Context, p string, f storagedriver.WalkFn, options ...func(*storagedriver.WalkOptions)) error {
	return storagedriver.WalkFallback(ctx, d, p, f, options...)
}
