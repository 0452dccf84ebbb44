package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

// throttleLock serialises the throttle's read-modify-write across
// processes on PostgreSQL (SQLite's write transaction already does).
const throttleLock = "auth login throttle"

// SQLThrottle is a Throttle whose counts live in the database, shared by
// every replica that opens it: N replicas let the same rate through as
// one. The token-bucket arithmetic is MemoryThrottle's.
type SQLThrottle struct {
	db         *database.DB
	user, addr ThrottleLimit
	now        func() time.Time
}

var _ Throttle = (*SQLThrottle)(nil)

// newSQLThrottle returns the throttle on db, the auth store's database
// (whose migrations made login_throttle), with the limits of user keys
// and address keys; now is the clock.
func newSQLThrottle(db *database.DB, user, addr ThrottleLimit, now func() time.Time) (*SQLThrottle, error) {
	if err := errors.Join(user.validate("user limit"), addr.validate("address limit")); err != nil {
		return nil, err
	}
	return &SQLThrottle{db: db, user: user, addr: addr, now: now}, nil
}

func (t *SQLThrottle) limit(key string) ThrottleLimit { return throttleLimit(t.user, t.addr, key) }

// forgetAfter is how long after its last change a bucket is full again
// whatever it held: the longest refill.
func (t *SQLThrottle) forgetAfter() time.Duration { return max(t.user.Per, t.addr.Per) }

// bucket reads key's bucket brought up to now; a key without a row
// (stored false) is full.
func (t *SQLThrottle) bucket(ctx context.Context, tx *database.Tx, key string, now time.Time) (tokens float64, stored bool, err error) {
	var at int64
	err = tx.QueryRowContext(ctx, `SELECT tokens, at FROM login_throttle WHERE key = ?`, key).Scan(&tokens, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return float64(t.limit(key).Failures), false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading the login throttle of %s: %w", key, err)
	}
	tokens, _ = t.limit(key).refill(tokens, time.Unix(0, at), now)
	return tokens, true, nil
}

func (t *SQLThrottle) put(ctx context.Context, tx *database.Tx, key string, tokens float64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO login_throttle (key, tokens, at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at`, key, tokens, now.UnixNano())
	if err != nil {
		return fmt.Errorf("writing the login throttle of %s: %w", key, err)
	}
	return nil
}

func (t *SQLThrottle) forget(ctx context.Context, tx *database.Tx, key string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_throttle WHERE key = ?`, key); err != nil {
		return fmt.Errorf("clearing the login throttle of %s: %w", key, err)
	}
	return nil
}

func (t *SQLThrottle) update(ctx context.Context, fn func(tx *database.Tx) error) error {
	return t.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, throttleLock); err != nil {
			return err
		}
		return fn(tx)
	})
}

// Attempt implements Throttle. A new key's row is written together with
// the removal of every bucket full again by now, so the table holds only
// keys that failed within the longest refill.
func (t *SQLThrottle) Attempt(ctx context.Context, keys ...string) (*Wait, error) {
	now := t.now()
	var wait *Wait
	err := t.update(ctx, func(tx *database.Tx) error {
		wait = nil
		left := make([]float64, len(keys))
		added := false
		for i, k := range keys {
			tokens, stored, err := t.bucket(ctx, tx, k, now)
			if err != nil {
				return err
			}
			added = added || !stored
			if left[i] = tokens; tokens < 1 {
				if d := t.limit(k).wait(tokens); wait == nil || d > wait.RetryAfter {
					wait = &Wait{Key: k, RetryAfter: d}
				}
			}
		}
		if wait != nil {
			return nil // waiting reserves nothing
		}
		if added {
			if _, err := tx.ExecContext(ctx, `DELETE FROM login_throttle WHERE at < ?`, now.Add(-t.forgetAfter()).UnixNano()); err != nil {
				return fmt.Errorf("clearing the login throttle: %w", err)
			}
		}
		for i, k := range keys {
			if err := t.put(ctx, tx, k, left[i]-1, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return wait, nil
}

// Succeeded implements Throttle.
func (t *SQLThrottle) Succeeded(ctx context.Context, keys ...string) error {
	now := t.now()
	return t.update(ctx, func(tx *database.Tx) error {
		for _, k := range keys {
			tokens, stored, err := t.bucket(ctx, tx, k, now)
			if err != nil {
				return err
			}
			if !stored {
				continue // never failed: full
			}
			if strings.HasPrefix(k, "user:") {
				if err := t.forget(ctx, tx, k); err != nil {
					return err
				}
				continue
			}
			tokens, full := t.limit(k).refill(tokens+1, now, now)
			if full {
				err = t.forget(ctx, tx, k)
			} else {
				err = t.put(ctx, tx, k, tokens, now)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// SQLThrottle returns a throttle whose counts live in the store's own
// database, beside its users, on the store's clock: what replicas that
// share the store share. It lives as long as the store.
func (s *Store) SQLThrottle(user, addr ThrottleLimit) (*SQLThrottle, error) {
	b, ok := s.b.(*SQL)
	if !ok {
		return nil, fmt.Errorf("login throttle: the auth store's backend %T is not a database", s.b)
	}
	return newSQLThrottle(b.db, user, addr, s.now)
}
