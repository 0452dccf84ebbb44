package gc

import (
	"context"
	"database/sql"
	"fmt"
	"time"

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

// keyTimes is where one or more key transactions spent their time: the
// wait for the member's connection (SQLite: the turn), BEGIN (SQLite:
// the database's write lock, which another connection to the file may
// hold), the statements, and COMMIT (the WAL append, and a checkpoint
// when the commit runs one). On PostgreSQL the whole transaction counts
// as statements.
type keyTimes struct {
	turn, begin, run, commit time.Duration
	txs                      int
}

func (t *keyTimes) add(u keyTimes) {
	t.turn += u.turn
	t.begin += u.begin
	t.run += u.run
	t.commit += u.commit
	t.txs += u.txs
}

func (t keyTimes) total() time.Duration { return t.turn + t.begin + t.run + t.commit }

// update runs fn in a write transaction (queries use ? placeholders) and
// says where its time went.
func (w *keyWriter) update(ctx context.Context, fn func(q querier) error) (keyTimes, error) {
	t0 := time.Now()
	tm := keyTimes{txs: 1}
	if w.turn == nil {
		err := w.db.Update(ctx, func(tx *database.Tx) error { return fn(tx) })
		tm.run = time.Since(t0)
		return tm, err
	}
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return tm, ctx.Err()
	}
	defer func() { <-w.turn }()
	t1 := time.Now()
	tm.turn = t1.Sub(t0)
	if w.conn == nil {
		// The member has left; a collection ending after it still
		// releases its claims.
		err := w.db.Update(ctx, func(tx *database.Tx) error { return fn(tx) })
		tm.run = time.Since(t1)
		return tm, err
	}
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		return tm, fmt.Errorf("begin: %w", err)
	}
	t2 := time.Now()
	tm.begin = t2.Sub(t1)
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return tm, err
	}
	t3 := time.Now()
	tm.run = t3.Sub(t2)
	if err := tx.Commit(); err != nil {
		return tm, fmt.Errorf("commit: %w", err)
	}
	tm.commit = time.Since(t3)
	return tm, nil
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
