package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// rebound caches the PostgreSQL form of each query.
var rebound sync.Map // string -> string

// Rebind rewrites the ? placeholders of q as $1, $2, ... for PostgreSQL;
// question marks inside quoted strings and identifiers are kept.
func Rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

func (db *DB) q(query string) string {
	if db.driver == Postgres {
		return Rebind(query)
	}
	return query
}

// ExecContext runs a statement with ? placeholders.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, db.q(query), args...)
}

// QueryContext runs a query with ? placeholders.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.q(query), args...)
}

// QueryRowContext runs a query with ? placeholders that returns one row.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, db.q(query), args...)
}

// Tx is a write transaction opened by DB.Update.
type Tx struct {
	tx *sql.Tx
	db *DB
}

// Driver is the engine the transaction runs on.
func (tx *Tx) Driver() Driver { return tx.db.driver }

// ExecContext runs a statement with ? placeholders in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, tx.db.q(query), args...)
}

// QueryContext runs a query with ? placeholders in the transaction.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, tx.db.q(query), args...)
}

// QueryRowContext runs a one-row query with ? placeholders in the
// transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, tx.db.q(query), args...)
}

// Lock takes the lock named key until the transaction ends: no other
// transaction holding the same key, in this process or another, runs
// between this call and the commit. On PostgreSQL it is a transaction-level
// advisory lock on a 64-bit hash of key; on SQLite the write transaction
// already excludes every other writer, so it does nothing.
func (tx *Tx) Lock(ctx context.Context, key string) error {
	if tx.db.driver != Postgres {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, LockKey(key)); err != nil {
		return fmt.Errorf("lock %q: %w", key, err)
	}
	return nil
}

// LockKey is the 64-bit advisory lock key of a lock name.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("drydock\x00" + name))
	return int64(h.Sum64())
}

// maxTxAttempts bounds how often Update retries a transaction the database
// aborted for contention.
const maxTxAttempts = 8

// Update runs fn in a write transaction and commits it when fn returns nil.
// On SQLite the transaction holds the database's write lock from its
// start; on PostgreSQL it runs at READ COMMITTED, and fn takes what locks
// it needs (Tx.Lock, SELECT ... FOR UPDATE). A transaction the database
// aborts for contention (SQLite busy past its timeout, a PostgreSQL
// serialization failure or deadlock) is retried, so fn may run more than
// once and must not have effects outside the transaction. fn's own error
// is returned unchanged.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	delay := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := db.updateOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt == maxTxAttempts {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retrying after: %v)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

func (db *DB) updateOnce(ctx context.Context, fn func(*Tx) error) error {
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("database %s: begin: %w", db.where, err)
	}
	if err := fn(&Tx{tx: stx, db: db}); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("database %s: commit: %w", db.where, err)
	}
	return nil
}

// retryable reports whether err is the database refusing a transaction for
// contention, so that running it again may succeed.
func retryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
