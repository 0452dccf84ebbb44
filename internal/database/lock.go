package database

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"
)

// WithLock runs fn while holding the lock named key: no other WithLock of
// the same key runs meanwhile, in this process or, on PostgreSQL, in any
// process sharing the database (a session advisory lock, on a connection
// of its own, released when fn returns or the process dies). Unlike
// Tx.Lock it spans no transaction, so fn may read and write through other
// transactions while it holds the lock. A SQLite database is worked by one
// process (the embedded setup), so there the lock is held in the process.
func (db *DB) WithLock(ctx context.Context, key string, fn func(ctx context.Context) error) error {
	if db.driver != Postgres {
		unlock := db.keyed.lock(key)
		defer unlock()
		return fn(ctx)
	}
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("lock %q: %w", key, err)
	}
	defer conn.Close()
	k := LockKey("session " + key)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, k); err != nil {
		return fmt.Errorf("lock %q: %w", key, err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, k); err != nil {
			// The lock goes with the session: never reuse this connection.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return fn(ctx)
}

// keyedMutex serialises work on one key within a process.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
