package gc

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

// joinRunning joins a member on tg and runs it until the test ends.
func joinRunning(t *testing.T, tg dbtest.Target) *Member {
	t.Helper()
	m, err := Join(context.Background(), tg.Open(t, Component), WithPollInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; _ = m.Close() })
	return m
}

func armed(t *testing.T, m *Member) *Cycle {
	t.Helper()
	c, err := m.Lead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Finish(context.Background()) })
	if err := c.Arm(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClaimSkipsMarked: a key a write protected in the cycle is not
// claimed; the others are.
func TestClaimSkipsMarked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(t testing.TB) dbtest.Target) {
		ctx := context.Background()
		m := joinRunning(t, newTarget(t))
		c := armed(t, m)
		g, err := m.Enter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Protect(ctx, "blob/k1", "layer/r@k3"); err != nil {
			t.Fatal(err)
		}
		g.Done()
		got, err := c.Claim(ctx, []string{"blob/k1", "blob/k2", "layer/r@k3", "layer/r@k4"})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"blob/k2", "layer/r@k4"}) {
			t.Fatalf("claimed %v", got)
		}
		// A key claimed once is not claimed twice.
		if again, _ := c.Claim(ctx, []string{"blob/k2"}); len(again) != 0 {
			t.Fatalf("claimed again: %v", again)
		}
	})
}

// TestProtectWaitsForRelease: a write protecting a claimed key returns only
// once the claim is released.
func TestProtectWaitsForRelease(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(t testing.TB) dbtest.Target) {
		ctx := context.Background()
		m := joinRunning(t, newTarget(t))
		c := armed(t, m)
		if got, err := c.Claim(ctx, []string{"blob/k"}); err != nil || len(got) != 1 {
			t.Fatalf("claim: %v %v", got, err)
		}
		var released atomic.Bool
		errc := make(chan error, 1)
		go func() {
			g, err := m.Enter(ctx)
			if err != nil {
				errc <- err
				return
			}
			defer g.Done()
			err = g.Protect(ctx, "blob/k")
			if err == nil && !released.Load() {
				err = errors.New("Protect returned while the key was claimed")
			}
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond) // give a broken Protect the chance to return early
		released.Store(true)
		if err := c.Release(ctx, []string{"blob/k"}); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// Marked now: a later claim leaves it.
		if got, _ := c.Claim(ctx, []string{"blob/k"}); len(got) != 0 {
			t.Fatalf("claimed a key marked after its release: %v", got)
		}
	})
}

// TestArmWaitsForUnmarkedWrites: Arm returns only once the writes that
// entered before it (which protect nothing) are done, and the writes that
// enter after it protect.
func TestArmWaitsForUnmarkedWrites(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(t testing.TB) dbtest.Target) {
		ctx := context.Background()
		m := joinRunning(t, newTarget(t))
		g, err := m.Enter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Protect(ctx, "blob/before"); err != nil {
			t.Fatal(err)
		}
		c, err := m.Lead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Finish(ctx)
		var done atomic.Bool
		errc := make(chan error, 1)
		go func() {
			err := c.Arm(ctx)
			if err == nil && !done.Load() {
				err = errors.New("Arm returned before an unmarked write finished")
			}
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond)
		done.Store(true)
		g.Done()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// The write before Arm marked nothing: its key is claimable.
		// A write after Arm marks.
		g2, _ := m.Enter(ctx)
		if err := g2.Protect(ctx, "blob/after"); err != nil {
			t.Fatal(err)
		}
		g2.Done()
		got, err := c.Claim(ctx, []string{"blob/after", "blob/before"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{"blob/before"}) {
			t.Fatalf("claimed %v, want [blob/before]", got)
		}
		// Finished: writes protect nothing any more.
		if err := c.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		g3, _ := m.Enter(ctx)
		if g3.(*guard).active {
			t.Error("a write after Finish marks")
		}
		g3.Done()
	})
}

// TestSQLiteOneServer: a second server process on one SQLite installation
// cannot join.
func TestSQLiteOneServer(t *testing.T) {
	tg := dbtest.SQLite(t)
	joinRunning(t, tg)
	if _, err := Join(context.Background(), tg.Open(t, Component)); !errors.Is(err, ErrOtherServer) {
		t.Fatalf("second member: %v, want ErrOtherServer", err)
	}
}

// TestMembersAcrossProcesses: on PostgreSQL, a collection waits for every
// member's unmarked writes, one member leads at a time, and a dead member
// (its connection gone) neither blocks a collection nor keeps its
// collector's claims.
func TestMembersAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	tg := dbtest.Postgres(t)
	a, b := joinRunning(t, tg), joinRunning(t, tg)

	// b has a write in flight: a's collection waits for it.
	g, _ := b.Enter(ctx)
	c, err := a.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lead(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("second collector: %v, want ErrBusy", err)
	}
	var done atomic.Bool
	errc := make(chan error, 1)
	go func() {
		err := c.Arm(ctx)
		if err == nil && !done.Load() {
			err = errors.New("Arm returned before another member's write finished")
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	done.Store(true)
	g.Done()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// b's writes now mark; a's claim skips them.
	g, _ = b.Enter(ctx)
	if err := g.Protect(ctx, "blob/b"); err != nil {
		t.Fatal(err)
	}
	g.Done()
	if got, _ := c.Claim(ctx, []string{"blob/b", "blob/x"}); !slices.Equal(got, []string{"blob/x"}) {
		t.Fatalf("claimed %v", got)
	}

	// The collector dies holding a claim: b, protecting that key, ends
	// the dead collector's cycle instead of waiting forever, and may lead.
	b.staleAfter = 50 * time.Millisecond
	a.mu.Lock()
	_ = a.hold.close()
	a.mu.Unlock()
	g, _ = b.Enter(ctx)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := g.Protect(pctx, "blob/x"); err != nil {
		t.Fatalf("protecting a dead collector's claim: %v", err)
	}
	g.Done()
	c2, err := b.Lead(ctx)
	if err != nil {
		t.Fatalf("leading after the collector died: %v", err)
	}
	defer c2.Finish(ctx)

	// A member that died without leaving does not block Arm.
	d := joinRunning(t, tg)
	d.mu.Lock()
	_ = d.hold.close()
	d.mu.Unlock()
	actx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	if err := c2.Arm(actx); err != nil {
		t.Fatalf("arming with a dead member: %v", err)
	}
}

// TestIdleWritesCostNoMark: while no cycle runs, a write's Protect
// writes nothing to the database (the registry's writes pay for the
// barrier only during a collection); once a cycle is armed, the same
// Protect marks its key.
func TestIdleWritesCostNoMark(t *testing.T) {
	ctx := context.Background()
	m := joinRunning(t, dbtest.SQLite(t))
	keys := func() int {
		t.Helper()
		n, err := m.keys.count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	protect := func() {
		t.Helper()
		g, err := m.Enter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Done()
		if err := g.Protect(ctx, "blob/k1", "layer/r@k1"); err != nil {
			t.Fatal(err)
		}
	}
	protect()
	if n := keys(); n != 0 {
		t.Fatalf("an idle Protect wrote %d keys", n)
	}
	armed(t, m)
	protect()
	if n := keys(); n != 2 {
		t.Fatalf("a Protect during a cycle marked %d keys, want 2", n)
	}
}
