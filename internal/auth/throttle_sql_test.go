package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

// TestSQLThrottle runs the throttle's steps on each engine, then checks
// what only a shared throttle gives: two replicas (two openers on one
// database) count one user's failures together, parallel guesses across
// them pass exactly the limit, and buckets full again are forgotten.
func TestSQLThrottle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		ctx := context.Background()
		// throttle is the throttle of a store opened on tg (one process's
		// worth of connections) with clock.
		throttle := func(t *testing.T, tg dbtest.Target, user, addr ThrottleLimit, clock *fakeClock) (*SQLThrottle, error) {
			st, err := newSQLStore(ctx, tg.Open(t, Component), []StoreOption{WithClock(clock.Now)})
			if err != nil {
				t.Fatal(err)
			}
			return st.SQLThrottle(user, addr)
		}
		t.Run("steps", func(t *testing.T) {
			clock := newFakeClock()
			th, err := throttle(t, newTarget(t), stepsUserLimit, stepsAddrLimit, clock)
			if err != nil {
				t.Fatal(err)
			}
			testThrottle(t, th, clock)
		})
		t.Run("replicas", func(t *testing.T) {
			tg := newTarget(t)
			clock := newFakeClock()
			var replicas [2]*SQLThrottle
			for i := range replicas {
				th, err := throttle(t, tg, DefaultUserLimit, DefaultAddressLimit, clock)
				if err != nil {
					t.Fatal(err)
				}
				replicas[i] = th
			}
			alice := UserKey("alice")
			var allowed atomic.Int32
			var wg sync.WaitGroup
			for i := range 24 {
				wg.Go(func() {
					w, err := replicas[i%2].Attempt(ctx, alice)
					if err != nil {
						t.Error(err)
						return
					}
					if w == nil {
						allowed.Add(1)
					}
				})
			}
			wg.Wait()
			if n := int(allowed.Load()); n != DefaultUserLimit.Failures {
				t.Fatalf("%d of 24 parallel guesses across two replicas allowed; want %d", n, DefaultUserLimit.Failures)
			}
			w, err := replicas[0].Attempt(ctx, alice)
			if err != nil || w == nil || w.Key != alice || w.RetryAfter != 6*time.Second {
				t.Fatalf("after the limit: %+v, %v; want a wait of 6s on %s", w, err, alice)
			}
			// A success on one replica starts alice afresh on the other.
			clock.Advance(6 * time.Second)
			if w, err := replicas[1].Attempt(ctx, alice); err != nil || w != nil {
				t.Fatalf("after the wait: %+v, %v", w, err)
			}
			if err := replicas[1].Succeeded(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if n := rows(t, replicas[0]); n != 0 {
				t.Fatalf("%d buckets after alice's success; want 0", n)
			}
			// Buckets full again are forgotten when a new key fails.
			for _, k := range []string{UserKey("bob"), AddressKey("192.0.2.1")} {
				if _, err := replicas[0].Attempt(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(time.Hour)
			if _, err := replicas[1].Attempt(ctx, UserKey("carol")); err != nil {
				t.Fatal(err)
			}
			if n := rows(t, replicas[0]); n != 1 {
				t.Errorf("%d buckets an hour later; want 1 (carol's)", n)
			}
		})
		if _, err := throttle(t, newTarget(t), ThrottleLimit{}, DefaultAddressLimit, newFakeClock()); err == nil {
			t.Error("a zero limit accepted")
		}
	})
}

func rows(t *testing.T, th *SQLThrottle) int {
	t.Helper()
	var n int
	if err := th.db.QueryRowContext(context.Background(), `SELECT count(*) FROM login_throttle`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
