package gc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-project/drydock/internal/database"
)

// Which members are alive is decided without clocks: a member holds a lock
// for as long as its process lives, and the lock is released by the
// operating system or the database server when the process dies.
//
//   - On PostgreSQL, each member holds a session advisory lock on its own
//     connection; a member whose lock can be taken by someone else is dead
//     (its process died, or its connection did: then it stops taking
//     writes and joins again under a new id).
//   - On SQLite the installation has one server process, which holds an
//     exclusive lock on a file next to the database; every member but the
//     holder is dead.

// liveness decides whether members are alive.
type liveness interface {
	// hold makes id alive until the returned hold is closed.
	hold(ctx context.Context, id string) (hold, error)
	// alive reports whether id is alive.
	alive(ctx context.Context, id string) (bool, error)
	// exclusive reports that only one process can be a member (SQLite):
	// members other than the holder are dead.
	exclusive() bool
}

// hold is a member's claim to be alive.
type hold interface {
	// check reports an error once the hold is lost.
	check(ctx context.Context) error
	close() error
}

// ErrOtherServer is returned when another server process uses the SQLite
// installation.
var ErrOtherServer = errors.New("another drydock server uses this data directory")

func newLiveness(db *database.DB) liveness {
	if db.Driver() == database.Postgres {
		return pgLiveness{db: db}
	}
	return &fileLiveness{path: db.String() + ".member"}
}

func memberLockKey(id string) int64 { return database.LockKey("gc member " + id) }

type pgLiveness struct{ db *database.DB }

func (pgLiveness) exclusive() bool { return false }

func (l pgLiveness) hold(ctx context.Context, id string) (hold, error) {
	pc, err := l.db.Pool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("member lock: %w", err)
	}
	// The connection leaves the pool: its session lock lives with it.
	conn := pc.Hijack()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, memberLockKey(id)); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("member lock: %w", err)
	}
	return &pgHold{conn: conn}, nil
}

func (l pgLiveness) alive(ctx context.Context, id string) (bool, error) {
	pc, err := l.db.Pool().Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("checking member %s: %w", id, err)
	}
	defer pc.Release()
	var got bool
	if err := pc.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, memberLockKey(id)).Scan(&got); err != nil {
		return false, fmt.Errorf("checking member %s: %w", id, err)
	}
	if !got {
		return true, nil
	}
	if _, err := pc.Exec(ctx, `SELECT pg_advisory_unlock($1)`, memberLockKey(id)); err != nil {
		pc.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // dropping the connection drops the lock
	}
	return false, nil
}

type pgHold struct{ conn *pgx.Conn }

func (h *pgHold) check(ctx context.Context) error {
	_, err := h.conn.Exec(ctx, `SELECT 1`)
	return err
}

func (h *pgHold) close() error { return h.conn.Close(context.Background()) }

// fileLiveness is the SQLite installation's: one server process, holding
// an exclusive lock on a file next to the database.
type fileLiveness struct {
	path string
	self string
}

func (*fileLiveness) exclusive() bool { return true }

func (l *fileLiveness) hold(_ context.Context, id string) (hold, error) {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return nil, fmt.Errorf("member lock: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("member lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked)", ErrOtherServer, l.path)
		}
		return nil, fmt.Errorf("member lock %s: %w", l.path, err)
	}
	l.self = id
	return fileHold{f}, nil
}

func (l *fileLiveness) alive(_ context.Context, id string) (bool, error) { return id == l.self, nil }

type fileHold struct{ f *os.File }

func (fileHold) check(context.Context) error { return nil }
func (h fileHold) close() error              { return h.f.Close() }
