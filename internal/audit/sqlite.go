package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteSchema creates the audit_log table and the triggers that make it
// append-only: any UPDATE or DELETE aborts. (Someone with write access to
// the file can still drop the triggers; the hash chain detects what they do
// next.)
var sqliteSchema = []string{
	`CREATE TABLE IF NOT EXISTS audit_log (
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
	)`,
	`CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
	BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`,
	`CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
	BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END`,
}

const sqliteColumns = `seq, time, actor, action, repository, reference, digest, outcome, detail, prev_hash, hash`

// scanBatch is how many rows Scan reads per query; rows are released before
// fn runs, so a slow reader never holds a read transaction open.
const scanBatch = 256

// SQLiteBackend stores the audit log in the audit_log table of a SQLite
// database opened with the modernc.org/sqlite driver ("sqlite").
type SQLiteBackend struct {
	db *sql.DB
	mu sync.Mutex // serializes this process's appends; BEGIN IMMEDIATE serializes processes
}

// NewSQLite creates the audit_log table and its append-only triggers in db
// if they do not exist. Appends use BEGIN IMMEDIATE on a dedicated
// connection and retry while another process holds the write lock, so
// several processes may share the file; a busy_timeout pragma in the DSN
// (e.g. _pragma=busy_timeout(5000)) and WAL journal mode make that cheaper.
func NewSQLite(db *sql.DB) (*SQLiteBackend, error) {
	if db == nil {
		return nil, errors.New("audit: nil database")
	}
	ctx := context.Background()
	for _, stmt := range sqliteSchema {
		if err := retryBusy(ctx, func() error { _, err := db.ExecContext(ctx, stmt); return err }); err != nil {
			return nil, fmt.Errorf("creating audit_log schema: %w", err)
		}
	}
	return &SQLiteBackend{db: db}, nil
}

// Append implements Backend.
func (b *SQLiteBackend) Append(ctx context.Context, next func(prev *Entry) (*Entry, error)) (*Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("appending audit entry: %w", err)
	}
	defer conn.Close()
	exec := func(q string) func() error {
		return func() error { _, err := conn.ExecContext(ctx, q); return err }
	}
	if err := retryBusy(ctx, exec("BEGIN IMMEDIATE")); err != nil {
		return nil, fmt.Errorf("appending audit entry: begin: %w", err)
	}
	e, err := b.appendTx(ctx, conn, next)
	if err == nil {
		if err = retryBusy(ctx, exec("COMMIT")); err != nil {
			err = fmt.Errorf("appending audit entry %d: commit: %w", e.Seq, err)
		}
	}
	if err != nil {
		if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			// The transaction may still be open; never hand this
			// connection back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return nil, err
	}
	return e, nil
}

func (b *SQLiteBackend) appendTx(ctx context.Context, conn *sql.Conn, next func(*Entry) (*Entry, error)) (*Entry, error) {
	prev, err := lastRow(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("appending audit entry: reading last entry: %w", err)
	}
	e, err := next(prev)
	if err != nil {
		return nil, err
	}
	if err := checkNext(prev, e); err != nil {
		return nil, err
	}
	_, err = conn.ExecContext(ctx, `INSERT INTO audit_log (`+sqliteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Actor, string(e.Action), e.Repository, e.Reference,
		e.Digest, e.Outcome, string(e.Detail), e.PrevHash, e.Hash)
	if err != nil {
		return nil, fmt.Errorf("appending audit entry %d: %w", e.Seq, err)
	}
	return cloneEntry(e), nil
}

// Scan implements Backend.
func (b *SQLiteBackend) Scan(ctx context.Context, fromSeq int64, fn func(*Entry) error) error {
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
func (b *SQLiteBackend) readBatch(ctx context.Context, fromSeq int64) ([]*Entry, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT `+sqliteColumns+` FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`, fromSeq, scanBatch)
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

// Last implements Backend.
func (b *SQLiteBackend) Last(ctx context.Context) (*Entry, error) {
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
	rows, err := q.QueryContext(ctx, `SELECT `+sqliteColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`)
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

// maxBusyRetries bounds retryBusy to roughly 30s of waiting.
const maxBusyRetries = 600

// retryBusy runs f until it does not fail with SQLITE_BUSY or SQLITE_LOCKED,
// backing off up to 50ms between tries.
func retryBusy(ctx context.Context, f func() error) error {
	delay := time.Millisecond
	for i := 0; ; i++ {
		err := f()
		if !isBusy(err) || i == maxBusyRetries {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while database busy: %v)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}
