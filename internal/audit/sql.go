package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

// Component is the audit log's database name (DATA/audit/audit.db on
// SQLite).
const Component = "audit"

// DefaultPath is where the embedded setup keeps the audit log under its
// data directory.
func DefaultPath(dataDir string) string { return database.SQLitePath(dataDir, Component) }

// Migrations create the audit_log table and what makes it append-only: any
// UPDATE, DELETE (or, on PostgreSQL, TRUNCATE) aborts. Someone with owner
// rights on the database can still drop them; the hash chain detects what
// they do next.
var Migrations = []database.Migration{{
	Version: 1, Name: "append-only audit_log",
	SQLite: `
CREATE TABLE IF NOT EXISTS audit_log (
	seq        INTEGER PRIMARY KEY,
	time       TEXT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	repository TEXT NOT NULL DEFAULT '',
	reference  TEXT NOT NULL DEFAULT '',
	digest     TEXT NOT NULL DEFAULT '',
	outcome    TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '',
	prev_hash  TEXT NOT NULL,
	hash       TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;`,
	Postgres: `
CREATE TABLE audit_log (
	seq        BIGINT PRIMARY KEY,
	time       TEXT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	repository TEXT NOT NULL DEFAULT '',
	reference  TEXT NOT NULL DEFAULT '',
	digest     TEXT NOT NULL DEFAULT '',
	outcome    TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '',
	prev_hash  TEXT NOT NULL,
	hash       TEXT NOT NULL
);
CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();`,
}, {
	// Pages of one action (the refused bypasses on the dashboard, the
	// exceptions) read only their own rows.
	Version: 2, Name: "audit_log action index",
	SQLite:   `CREATE INDEX IF NOT EXISTS audit_log_action_seq ON audit_log (action, seq);`,
	Postgres: `CREATE INDEX audit_log_action_seq ON audit_log (action, seq);`,
}}

const sqlColumns = `seq, time, actor, action, repository, reference, digest, outcome, detail, prev_hash, hash`

// Tables is the audit log's table, for copying an installation: rows are
// copied as stored, hashes and all, so the chain verifies on the copy.
var Tables = []database.Table{
	{Name: "audit_log", Columns: strings.Split(strings.ReplaceAll(sqlColumns, " ", ""), ","), Key: "seq"},
}

// scanBatch is how many rows Scan reads per query; rows are released before
// fn runs, so a slow reader never holds a read transaction open.
const scanBatch = 256

// appendLock serialises appends across processes on PostgreSQL.
const appendLock = "audit log append"

// SQLBackend stores the audit log in the audit_log table of a database
// opened by internal/database.
type SQLBackend struct{ db *database.DB }

// NewSQL migrates the audit_log schema in db and returns the backend.
// Appends run in a write transaction that holds the append lock (SQLite's
// write lock; an advisory lock on PostgreSQL), so processes and replicas
// sharing the database extend the chain one entry at a time.
func NewSQL(ctx context.Context, db *database.DB) (*SQLBackend, error) {
	if db == nil {
		return nil, errors.New("audit: nil database")
	}
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &SQLBackend{db: db}, nil
}

// Open opens the audit log in the "audit" database of o. close releases
// the database.
func Open(ctx context.Context, o *database.Opener, opts ...Option) (l *Log, close func() error, err error) {
	db, err := o.Open(ctx, Component)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	b, err := NewSQL(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if l, err = New(b, opts...); err != nil {
		db.Close()
		return nil, nil, err
	}
	return l, db.Close, nil
}

// OpenFile opens (creating when missing) the audit log in the SQLite file at
// path, for tests and tools that want a log of their own; servers use
// Open. close releases the database.
func OpenFile(path string, opts ...Option) (l *Log, close func() error, err error) {
	ctx := context.Background()
	db, err := database.OpenFile(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	b, err := NewSQL(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if l, err = New(b, opts...); err != nil {
		db.Close()
		return nil, nil, err
	}
	return l, db.Close, nil
}

// Append implements Backend.
func (b *SQLBackend) Append(ctx context.Context, next func(prev *Entry) (*Entry, error)) (*Entry, error) {
	var out *Entry
	err := b.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, appendLock); err != nil {
			return err
		}
		prev, err := lastRow(ctx, tx)
		if err != nil {
			return fmt.Errorf("appending audit entry: reading last entry: %w", err)
		}
		e, err := next(prev)
		if err != nil {
			return err
		}
		if err := checkNext(prev, e); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (`+sqlColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Actor, string(e.Action), e.Repository, e.Reference,
			e.Digest, e.Outcome, string(e.Detail), e.PrevHash, e.Hash); err != nil {
			return fmt.Errorf("appending audit entry %d: %w", e.Seq, err)
		}
		out = cloneEntry(e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Scan implements Backend.
func (b *SQLBackend) Scan(ctx context.Context, fromSeq int64, fn func(*Entry) error) error {
	for {
		batch, err := b.readBatch(ctx, fromSeq)
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		if len(batch) < scanBatch {
			return nil
		}
		fromSeq = batch[len(batch)-1].Seq + 1
	}
}

// readBatch returns up to scanBatch entries from fromSeq on; when a row
// cannot be read it returns the entries before it and the error.
func (b *SQLBackend) readBatch(ctx context.Context, fromSeq int64) ([]*Entry, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT `+sqlColumns+` FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`, fromSeq, scanBatch)
	if err != nil {
		return nil, fmt.Errorf("reading audit entries from %d: %w", fromSeq, err)
	}
	defer rows.Close()
	var out []*Entry
	for rows.Next() {
		e, err := scanRow(rows)
		if err != nil {
			return out, err // the rows before a bad one still count
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit entries from %d: %w", fromSeq, err)
	}
	return out, nil
}

// Newest implements Backend: one indexed query, newest first.
func (b *SQLBackend) Newest(ctx context.Context, before int64, action Action, limit int) ([]*Entry, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	q, args := `SELECT `+sqlColumns+` FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?`, []any{before, limit}
	if action != "" {
		q, args = `SELECT `+sqlColumns+` FROM audit_log WHERE action = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, []any{string(action), before, limit}
	}
	rows, err := b.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading audit entries before %d: %w", before, err)
	}
	defer rows.Close()
	var out []*Entry
	for rows.Next() {
		e, err := scanRow(rows)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading audit entries before %d: %w", before, err)
	}
	return out, nil
}

// Last implements Backend.
func (b *SQLBackend) Last(ctx context.Context) (*Entry, error) {
	e, err := lastRow(ctx, b.db)
	if err != nil {
		return nil, fmt.Errorf("reading last audit entry: %w", err)
	}
	return e, nil
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func lastRow(ctx context.Context, q queryer) (*Entry, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+sqlColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	return scanRow(rows)
}

func scanRow(rows *sql.Rows) (*Entry, error) {
	var seq int64
	var cols [10]any
	dest := []any{&seq}
	for i := range cols {
		dest = append(dest, &cols[i])
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, fmt.Errorf("reading audit entry: %w", err)
	}
	return decodeRow(seq, cols)
}

// decodeRow turns the stored columns after seq (time, actor, action,
// repository, reference, digest, outcome, detail, prev_hash, hash) into an
// Entry. Only text is accepted, the time must be in canonical form and the
// detail valid JSON, so that whatever decodes hashes as it is stored.
func decodeRow(seq int64, cols [10]any) (*Entry, error) {
	var s [10]string
	for i, c := range cols {
		switch v := c.(type) {
		case string:
			s[i] = v
		case []byte:
			s[i] = string(v)
		default:
			return nil, &RowError{Seq: seq, Err: fmt.Errorf("column %d holds %T, not text", i+2, c)}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s[0])
	if err != nil {
		return nil, &RowError{Seq: seq, Err: fmt.Errorf("time: %w", err)}
	}
	if t.UTC().Format(time.RFC3339Nano) != s[0] {
		return nil, &RowError{Seq: seq, Err: fmt.Errorf("time %q is not in canonical UTC form", s[0])}
	}
	e := &Entry{
		Seq: seq, Time: t.UTC(), Actor: s[1], Action: Action(s[2]), Repository: s[3], Reference: s[4],
		Digest: s[5], Outcome: s[6], PrevHash: s[8], Hash: s[9],
	}
	if s[7] != "" {
		if !json.Valid([]byte(s[7])) {
			return nil, &RowError{Seq: seq, Err: errors.New("detail is not valid JSON")}
		}
		e.Detail = json.RawMessage(s[7])
	}
	return e, nil
}
