package gc

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/registry"
)

// Member is one process's part in online collection (see
// registry.Barrier for the rule): its registry's writes enter through it,
// and its collections coordinate through it with every other member.
//
// Each member keeps, in memory, which mode its writes are in: while no
// cycle runs they protect nothing and cost no database access; once a
// cycle is armed they mark what they reference. A member learns of a new
// cycle by polling gc_state; it then switches its new writes to marking,
// waits for the writes it let in unmarked, and acknowledges the cycle's
// epoch in gc_members. The collector lists the storage only once every
// live member has acknowledged, so the listing sees every unmarked write.
type Member struct {
	db   *database.DB
	keys *keyStore
	live liveness
	log  *slog.Logger
	poll time.Duration
	// staleAfter is how long a write waits on a claim before it checks
	// that the collector holding it is alive.
	staleAfter time.Duration

	// protects, when set, is told how long each write's Protect took
	// while a cycle ran (WithProtectObserver).
	protects atomic.Pointer[func(time.Duration)]
	// trace, when set, is told where key operations spent their time.
	trace atomic.Pointer[keyTrace]

	// syncMu serializes sync (the poller and Arm both call it).
	syncMu sync.Mutex

	mu     sync.Mutex
	id     string
	hold   hold
	ok     bool  // a registered member: writes may enter
	active bool  // writes mark
	epoch  int64 // the epoch of the mode
	gen    *generation
}

// generation counts the writes that entered in one mode.
type generation struct{ wg sync.WaitGroup }

// MemberOption configures a Member.
type MemberOption func(*Member)

// WithProtectObserver sets fn, told how long each write's Protect took
// while a collection cycle ran: its marks, and its waits for the
// collector (a claimed key, the key store the collector's claims
// hold). It is what a write spends on the collection's barrier; outside
// a cycle Protect costs nothing and fn is not called.
func WithProtectObserver(fn func(time.Duration)) MemberOption {
	return func(m *Member) { m.protects.Store(&fn) }
}

// WithPollInterval sets how often a member reads the collection state
// (default 200ms): how soon a cycle can start.
func WithPollInterval(d time.Duration) MemberOption {
	return func(m *Member) {
		if d > 0 {
			m.poll = d
		}
	}
}

// WithLogger sets the member's logger.
func WithLogger(l *slog.Logger) MemberOption {
	return func(m *Member) {
		if l != nil {
			m.log = l
		}
	}
}

// Join migrates the collector's schema in db and registers this process
// as a member. The member's writes may enter at once; Run keeps it in step
// with collections. On SQLite, where one server process owns the
// installation, Join fails with ErrOtherServer while another holds it.
func Join(ctx context.Context, db *database.DB, opts ...MemberOption) (*Member, error) {
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, fmt.Errorf("collector schema: %w", err)
	}
	m := &Member{db: db, keys: newKeyStore(db), live: newLiveness(db), log: slog.New(slog.DiscardHandler), poll: 200 * time.Millisecond, staleAfter: 5 * time.Second, gen: &generation{}}
	for _, o := range opts {
		o(m)
	}
	if err := m.register(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// ID is the member's id in gc_members.
func (m *Member) ID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// register joins under a new id: hold its liveness, add its row, and take
// the current mode.
func (m *Member) register(ctx context.Context) error {
	id := newID()
	h, err := m.live.hold(ctx, id)
	if err != nil {
		return err
	}
	err = m.db.Update(ctx, func(tx *database.Tx) error {
		if m.live.exclusive() {
			// The only server process: every other member is dead.
			if _, err := tx.ExecContext(ctx, `DELETE FROM gc_members WHERE id <> ?`, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO gc_members (id, acked_epoch, joined_at) VALUES (?, 0, ?)`, id, now())
		return err
	})
	if err != nil {
		_ = h.close()
		return fmt.Errorf("joining the collection barrier: %w", err)
	}
	m.mu.Lock()
	old := m.hold
	m.id, m.hold, m.ok = id, h, true
	m.active, m.epoch = false, 0
	m.mu.Unlock()
	if old != nil {
		_ = old.close()
	}
	if m.live.exclusive() {
		// A collection left running by a dead process (this one, before
		// a restart) is over: nothing of it is still deleting.
		if err := m.resetDead(ctx); err != nil {
			return err
		}
	}
	return m.sync(ctx)
}

// Close leaves: the member's row is removed and its liveness released.
func (m *Member) Close() error {
	m.mu.Lock()
	id, h := m.id, m.hold
	m.ok, m.hold = false, nil
	m.mu.Unlock()
	if h == nil {
		return nil
	}
	_, err := m.db.ExecContext(context.Background(), `DELETE FROM gc_members WHERE id = ?`, id)
	return errors.Join(err, h.close())
}

// Run keeps the member in step with collections until ctx ends: it polls
// the collection state, acknowledges new cycles, checks its own liveness
// (joining again under a new id when it was lost) and ends cycles whose
// collector died.
func (m *Member) Run(ctx context.Context) {
	t := time.NewTicker(m.poll)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.tick(ctx, n); err != nil && ctx.Err() == nil {
			m.log.Warn("collection barrier", "err", err)
		}
	}
}

// staleEvery is how many polls pass between checks for a dead collector.
const staleEvery = 25

func (m *Member) tick(ctx context.Context, n int) error {
	m.mu.Lock()
	h, ok := m.hold, m.ok
	m.mu.Unlock()
	if h != nil {
		if err := h.check(ctx); err != nil {
			// The database no longer knows this process is alive: take
			// no writes until joined again.
			m.mu.Lock()
			m.ok = false
			m.mu.Unlock()
			ok = false
			m.log.Warn("collection barrier: membership lost, joining again", "err", err)
		}
	}
	if !ok {
		return m.register(ctx)
	}
	if n%staleEvery == staleEvery-1 {
		if err := m.resetDead(ctx); err != nil {
			return err
		}
	}
	return m.sync(ctx)
}

// state is gc_state's row.
type state struct {
	epoch  int64
	active bool
	runner string
}

func readState(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (state, error) {
	var st state
	var phase string
	if err := q.QueryRowContext(ctx, `SELECT epoch, phase, runner FROM gc_state WHERE id = 1`).Scan(&st.epoch, &phase, &st.runner); err != nil {
		return st, fmt.Errorf("reading the collection state: %w", err)
	}
	st.active = phase == phaseActive
	return st, nil
}

const (
	phaseIdle   = "idle"
	phaseActive = "active"
)

// sync takes the mode gc_state says: on a new cycle, new writes mark, the
// writes that entered before are waited for, and the epoch is
// acknowledged.
func (m *Member) sync(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	st, err := readState(ctx, m.db)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if !st.active {
		m.active, m.epoch = false, st.epoch
		m.mu.Unlock()
		return nil
	}
	if m.active && m.epoch == st.epoch {
		m.mu.Unlock()
		return nil
	}
	old := m.gen
	m.gen = &generation{}
	m.active, m.epoch = true, st.epoch
	id := m.id
	m.mu.Unlock()
	// Every write from now on marks; wait for those that may not have.
	done := make(chan struct{})
	go func() { old.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	res, err := m.db.ExecContext(ctx, `UPDATE gc_members SET acked_epoch = ? WHERE id = ? AND acked_epoch < ?`, st.epoch, id, st.epoch)
	if err != nil {
		return fmt.Errorf("acknowledging collection %d: %w", st.epoch, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := m.db.QueryRowContext(ctx, `SELECT 1 FROM gc_members WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			// Declared dead (its lock was lost for a moment): join again.
			m.mu.Lock()
			m.ok = false
			m.mu.Unlock()
		}
	}
	return nil
}

// resetDead ends a cycle whose collector is no longer alive: its claims are
// dropped (nothing deletes them any more) and writes stop marking.
func (m *Member) resetDead(ctx context.Context) error {
	st, err := readState(ctx, m.db)
	if err != nil || st.runner == "" || st.runner == m.ID() {
		return err
	}
	alive, err := m.live.alive(ctx, st.runner)
	if err != nil || alive {
		return err
	}
	reset := false
	err = m.db.Update(ctx, func(tx *database.Tx) error {
		reset = false
		if err := tx.Lock(ctx, runnerLock); err != nil {
			return err
		}
		cur, err := readState(ctx, tx)
		if err != nil || cur.runner != st.runner {
			return err
		}
		m.log.Warn("collection barrier: the collector died; ending its cycle", "epoch", cur.epoch, "collector", cur.runner)
		if _, err := tx.ExecContext(ctx, `DELETE FROM gc_keys`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE gc_state SET phase = ?, runner = '', changed_at = ? WHERE id = 1`, phaseIdle, now())
		reset = err == nil
		return err
	})
	if err == nil && reset {
		m.keys.reset()
	}
	return err
}

// Enter implements registry.Barrier.
func (m *Member) Enter(context.Context) (registry.Guard, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ok {
		return nil, errors.New("this process is not a member of the collection barrier (is the database reachable?)")
	}
	g := m.gen
	g.wg.Add(1)
	return &guard{m: m, gen: g, active: m.active}, nil
}

type guard struct {
	m      *Member
	gen    *generation
	active bool
	once   sync.Once
}

// Protect implements registry.Guard.
func (g *guard) Protect(ctx context.Context, keys ...string) error {
	if !g.active || len(keys) == 0 {
		return nil
	}
	fn := g.m.protects.Load()
	if fn == nil {
		return g.m.mark(ctx, keys)
	}
	start := time.Now()
	err := g.m.mark(ctx, keys)
	(*fn)(time.Since(start))
	return err
}

// Done implements registry.Guard.
func (g *guard) Done() { g.once.Do(g.gen.wg.Done) }

// keyBatch bounds the keys of one statement (PostgreSQL).
const keyBatch = 400

// keyTrace, when set on a member, is told of each key operation: a
// write's mark (all of it, and waited, the time it slept on claimed
// keys), or one batch of a claim or a release, with where their time
// went. The benchmarks use it to split a Protect's time.
type keyTrace func(op string, keys int, tm keyTimes, waited time.Duration)

func (m *Member) traceKeys(op string, keys int, tm keyTimes, waited time.Duration) {
	if fn := m.trace.Load(); fn != nil {
		(*fn)(op, keys, tm, waited)
	}
}

// mark marks keys in the running cycle, waiting while any of them is
// claimed (being deleted): those are marked again once released, and the
// caller then finds their objects gone.
func (m *Member) mark(ctx context.Context, keys []string) error {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	n := len(keys)
	var tm keyTimes
	var waited time.Duration
	defer func() { m.traceKeys("mark", n, tm, waited) }()
	wait := 2 * time.Millisecond
	for start := time.Now(); ; {
		// Taken before looking, so that a release after the look wakes
		// the wait below.
		released := m.keys.releases()
		var pending []string
		for i := 0; i < len(keys); i += keyBatch {
			claimed, t, err := m.keys.mark(ctx, keys[i:min(i+keyBatch, len(keys))])
			tm.add(t)
			if err != nil {
				return err
			}
			pending = append(pending, claimed...)
		}
		if len(pending) == 0 {
			return nil
		}
		keys = pending
		slept := time.Now()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-released:
			t.Stop()
		}
		waited += time.Since(slept)
		wait = min(2*wait, 50*time.Millisecond)
		if time.Since(start) > m.staleAfter {
			if err := m.resetDead(ctx); err != nil {
				return err
			}
			start = time.Now()
		}
	}
}

// values returns n copies of tuple joined by commas.
func values(n int, tuple string) string {
	return strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

var _ registry.Barrier = (*Member)(nil)
