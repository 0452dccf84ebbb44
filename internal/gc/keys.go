package gc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

// keyStore holds the keys of the running cycle: the writes' marks and the
// collector's claims, one entry per key, where the first to write a key
// decides whether it is marked (kept) or claimed (deleted). While a cycle
// runs, every registry write marks, so a mark is on every push's path and
// must not wait for the collector.
//
// On PostgreSQL, where members in other processes share the keys and a
// database server's crash does not end the cycle, they are the table
// gc_keys, whose unique key decides, in the database's own transactions
// (durable, row locks, no global writer).
//
// On SQLite they live in this process's memory, under a mutex. One server
// process is the only member and the only collector of a SQLite
// installation (a second one cannot join, see liveness), so every mark
// and claim of a cycle is made here; in gc_keys they all went through
// SQLite's single writer, one transaction at a time on one connection,
// and a push's mark queued behind the collector's claims and the other
// pushes' marks: whichever was off the processor (on a loaded machine) or
// syncing a checkpoint held up all the others (BenchmarkPushDuringGC: a
// mark of 2 keys waited 241 ms for the connection, at load 10 to 21). In
// memory nothing is lost that is needed: a process that dies ends its
// cycle (the member that joins next ends it, register and resetDead),
// so a cycle's keys never outlive the process that made them.
type keyStore struct {
	db *database.DB

	// mu guards mem, the keys on SQLite (nil on PostgreSQL): true for a
	// claim, false for a mark.
	mu  sync.Mutex
	mem map[string]bool

	// released is closed, and replaced, whenever this process releases
	// claims: its writes waiting for a claimed key look again at once
	// rather than at their next poll (other processes' collectors, on
	// PostgreSQL, are polled for).
	relMu    sync.Mutex
	released chan struct{}
}

func newKeyStore(db *database.DB) *keyStore {
	k := &keyStore{db: db}
	if db.Driver() != database.Postgres {
		k.mem = map[string]bool{}
	}
	return k
}

// keyTimes is where key operations spent their time: the wait for the
// store (SQLite: the mutex), BEGIN, the statements (SQLite: the map's
// work; PostgreSQL: the whole transaction) and COMMIT.
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

// each runs fn on every key with the mutex held (SQLite), taken for one
// key at a time: a holder the machine takes off the processor holds it
// for one map operation at most, not for a whole batch (a claim of 64
// keys held it up to 34 ms at load 20, and a mark waited 103 ms behind
// it). The keys are independent: which came first is decided per key.
// The turn counted is the longest wait for the mutex.
func (k *keyStore) each(keys []string, fn func(key string)) keyTimes {
	tm := keyTimes{txs: 1}
	start := time.Now()
	for _, key := range keys {
		t0 := time.Now()
		k.mu.Lock()
		tm.turn = max(tm.turn, time.Since(t0))
		fn(key)
		k.mu.Unlock()
	}
	tm.run = time.Since(start) - tm.turn
	return tm
}

// update runs fn in a database transaction (PostgreSQL) and times it.
func (k *keyStore) update(ctx context.Context, fn func(tx *database.Tx) error) (keyTimes, error) {
	t0 := time.Now()
	err := k.db.Update(ctx, fn)
	return keyTimes{run: time.Since(t0), txs: 1}, err
}

// mark marks keys not claimed and returns those claimed.
func (k *keyStore) mark(ctx context.Context, keys []string) ([]string, keyTimes, error) {
	var claimed []string
	if k.mem != nil {
		tm := k.each(keys, func(key string) {
			c, ok := k.mem[key]
			if !ok {
				k.mem[key] = false
			} else if c {
				claimed = append(claimed, key)
			}
		})
		return claimed, tm, nil
	}
	tm, err := k.update(ctx, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO gc_keys (key, state) VALUES `+values(len(keys), "(?, 'mark')")+
			` ON CONFLICT (key) DO NOTHING`, anys(keys)...); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT key FROM gc_keys WHERE state = 'mark' AND key IN (`+values(len(keys), "?")+`)`, anys(keys)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		marked := map[string]bool{}
		for rows.Next() {
			var key string
			if err := rows.Scan(&key); err != nil {
				return err
			}
			marked[key] = true
		}
		claimed = claimed[:0:0]
		for _, key := range keys {
			if !marked[key] {
				claimed = append(claimed, key)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, tm, fmt.Errorf("marking: %w", err)
	}
	return claimed, tm, nil
}

// claim claims the keys nobody marked or claimed and returns them.
func (k *keyStore) claim(ctx context.Context, keys []string) ([]string, keyTimes, error) {
	var got []string
	if k.mem != nil {
		tm := k.each(keys, func(key string) {
			if _, ok := k.mem[key]; !ok {
				k.mem[key] = true
				got = append(got, key)
			}
		})
		return got, tm, nil
	}
	tm, err := k.update(ctx, func(tx *database.Tx) error {
		got = got[:0:0]
		rows, err := tx.QueryContext(ctx, `INSERT INTO gc_keys (key, state) VALUES `+values(len(keys), "(?, 'claim')")+
			` ON CONFLICT (key) DO NOTHING RETURNING key`, anys(keys)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var key string
			if err := rows.Scan(&key); err != nil {
				return err
			}
			got = append(got, key)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, tm, fmt.Errorf("claiming: %w", err)
	}
	return got, tm, nil
}

// release ends the claims of keys (marks stay) and wakes this process's
// writes waiting for one.
func (k *keyStore) release(ctx context.Context, keys []string) (keyTimes, error) {
	defer k.wake()
	if k.mem != nil {
		return k.each(keys, func(key string) {
			if k.mem[key] {
				delete(k.mem, key)
			}
		}), nil
	}
	tm, err := k.update(ctx, func(tx *database.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM gc_keys WHERE state = 'claim' AND key IN (`+values(len(keys), "?")+`)`, anys(keys)...)
		return err
	})
	if err != nil {
		return tm, fmt.Errorf("releasing: %w", err)
	}
	return tm, nil
}

// reset forgets the keys in memory (SQLite), once a transaction that
// starts or ends a cycle has deleted gc_keys' rows, and wakes the writes
// waiting for a claim.
func (k *keyStore) reset() {
	if k.mem != nil {
		k.mu.Lock()
		clear(k.mem)
		k.mu.Unlock()
	}
	k.wake()
}

// count is the number of keys of the running cycle.
func (k *keyStore) count(ctx context.Context) (int, error) {
	if k.mem != nil {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.mem), nil
	}
	var n int
	err := k.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM gc_keys`).Scan(&n)
	return n, err
}

// releases returns a channel closed at the next release of claims by this
// process.
func (k *keyStore) releases() <-chan struct{} {
	k.relMu.Lock()
	defer k.relMu.Unlock()
	if k.released == nil {
		k.released = make(chan struct{})
	}
	return k.released
}

// wake wakes the writes waiting for a release.
func (k *keyStore) wake() {
	k.relMu.Lock()
	defer k.relMu.Unlock()
	if k.released != nil {
		close(k.released)
		k.released = nil
	}
}
