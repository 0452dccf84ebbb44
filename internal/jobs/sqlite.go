package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// sqliteQuery holds the connection settings for the queue database:
//   - busy_timeout first, so that the switch to WAL waits for other processes;
//   - WAL: River's own test suite found "database is locked" errors without it;
//   - synchronous FULL: an acknowledged Enqueue survives power loss, not only
//     a killed process (which WAL with NORMAL would already survive);
//   - _txlock=immediate: transactions take the write lock at BEGIN, so two
//     processes sharing the file (server and CLI) wait on busy_timeout instead
//     of failing a read-to-write upgrade with SQLITE_BUSY.
const sqliteQuery = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"

// openSQLite opens (creating if needed) the queue database at path and
// migrates River's schema up to the version of the linked River.
func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*sql.DB, error) {
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: sqliteQuery}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("opening job queue %q: %w", path, err)
	}
	// River runs many small operations concurrently (producers, completer,
	// elector, maintenance); SQLite allows one writer, and riversqlite
	// recommends a single connection to avoid SQLITE_BUSY inside the process.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening job queue %q: %w", path, err)
	}
	migrator, err := rivermigrate.New(riversqlite.New(db), &rivermigrate.Config{Logger: logger})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrating job queue %q: %w", path, err)
	}
	// Up with no options applies only missing versions: idempotent.
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrating job queue %q: %w", path, err)
	}
	return db, nil
}
