package gc

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/drydock-project/drydock/internal/database"
)

// keyWriter runs the transactions on gc_keys: the writes' marks and the
// collector's claims and releases. While a cycle runs, every registry
// write marks, so these are the only database writes on a push's path;
// they must not queue behind each other for longer than the write itself.
//
// On SQLite the database has one writer at a time, and a connection that
// finds it busy polls with sleeps of up to 100 ms (SQLite's busy handler):
// four concurrent pushes made single marks wait close to a second. So
// the member keeps one connection for them, entered in turn (a channel:
// waiters are served in order, and a cancelled context stops waiting),
// with synchronous=NORMAL: a commit is durable when the process dies but
// not across a power loss, and gc_keys need no more. On SQLite one server
// process is the only member and the only collector (see liveness), so a
// power loss ends every process of the cycle, and the member that joins
// next ends the dead cycle and drops its keys (register, resetDead): no
// mark is ever needed after a loss that can undo it. The other tables
// keep the database's FULL setting.
//
// On PostgreSQL, where members in other processes share the keys and a
// database server's crash does not end the cycle, every transaction is
// the database's own (durable, row locks, no global writer).
type keyWriter struct {
	db *database.DB
	// On SQLite, turn is held for each transaction on conn; conn is nil
	// once closed.
	turn chan struct{}
	conn *sql.Conn
}

// querier is what the key transactions use of a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func newKeyWriter(ctx context.Context, db *database.DB) (*keyWriter, error) {
	w := &keyWriter{db: db}
	if db.Driver() == database.Postgres {
		return w, nil
	}
	w.turn = make(chan struct{}, 1)
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("collection keys' connection: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("collection keys' connection: %w", err)
	}
	w.conn = conn
	return w, nil
}

// update runs fn in a write transaction (queries use ? placeholders).
func (w *keyWriter) update(ctx context.Context, fn func(q querier) error) error {
	if w.turn == nil {
		return w.db.Update(ctx, func(tx *database.Tx) error { return fn(tx) })
	}
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.turn }()
	if w.conn == nil {
		// The member has left; a collection ending after it still
		// releases its claims.
		return w.db.Update(ctx, func(tx *database.Tx) error { return fn(tx) })
	}
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (w *keyWriter) close() error {
	if w.turn == nil {
		return nil
	}
	w.turn <- struct{}{}
	defer func() { <-w.turn }()
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}
