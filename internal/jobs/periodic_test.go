package jobs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

type tickArgs struct{}

func (tickArgs) Kind() string { return "test_tick" }

// scheduled starts a queue on tg that runs the "tick" schedule every
// period, counting runs per job.
func scheduled(t *testing.T, tg dbtest.Target, period time.Duration, runs map[int64]int, mu *sync.Mutex) *Queue {
	t.Helper()
	q := openTest(t, tg)
	if err := Register(q, func(ctx context.Context, _ tickArgs) error {
		info, _ := JobInfo(ctx)
		mu.Lock()
		runs[info.ID]++
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := Schedule(q, "tick", period, tickArgs{}); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	return q
}

// ticks returns the tick jobs per period (unix seconds of its start).
func ticks(t *testing.T, tg dbtest.Target, period time.Duration) (map[int64]int, int) {
	t.Helper()
	js, err := openTest(t, tg).Jobs(t.Context(), Filter{Kinds: []string{"test_tick"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]int{}
	for _, j := range js {
		out[j.ScheduledAt.Truncate(period).Unix()]++
	}
	return out, len(js)
}

// TestScheduleOncePerPeriod runs one schedule on three queues sharing a
// database, as three replicas would: one job per period, run once.
func TestScheduleOncePerPeriod(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		var mu sync.Mutex
		runs := map[int64]int{}
		const period = 2 * time.Second
		for range 3 {
			scheduled(t, tg, period, runs, &mu)
		}
		if err := Schedule(openTest(t, tg), "x", 0, tickArgs{}); err == nil {
			t.Error("a zero interval was accepted")
		}
		// Wait for at least three periods' jobs, however slow the machine:
		// the assertion is once per period, not a deadline.
		perPeriod, n := ticks(t, tg, period)
		for deadline := time.Now().Add(20 * period); n < 3 && time.Now().Before(deadline); {
			time.Sleep(period / 2)
			perPeriod, n = ticks(t, tg, period)
		}
		for p, k := range perPeriod {
			if k > 1 {
				t.Errorf("period starting %s has %d jobs, want 1", time.Unix(p, 0).UTC().Format(time.TimeOnly), k)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for id, k := range runs {
			if k != 1 {
				t.Errorf("job %d ran %d times", id, k)
			}
		}
		if n < 3 {
			t.Errorf("%d jobs in 20 periods (%v): the schedule did not run", n, perPeriod)
		}
	})
}

// TestScheduleSurvivesLeaderChange stops the queue that leads in the
// middle of a period and starts another, whose schedule fires at its
// start: the period still has one job.
func TestScheduleSurvivesLeaderChange(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		var mu sync.Mutex
		runs := map[int64]int{}
		const period = 20 * time.Second
		for time.Since(time.Now().Truncate(period)) > time.Second {
			time.Sleep(50 * time.Millisecond) // start early in a period
		}
		first := scheduled(t, tg, period, runs, &mu)
		var p0 int64 // the period the first leader's job is in
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if perPeriod, n := ticks(t, tg, period); n == 1 {
				for p := range perPeriod {
					p0 = p
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first leader's schedule did not fire at its start")
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := first.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		scheduled(t, tg, period, runs, &mu)
		time.Sleep(8 * time.Second) // the new leader is elected and its schedule fires
		// On a slow machine the new leader's start can fall in the next
		// period, which rightly gets its own job: count per period.
		perPeriod, _ := ticks(t, tg, period)
		for p, k := range perPeriod {
			if k > 1 {
				t.Errorf("period starting %s has %d jobs across a change of leader, want 1", time.Unix(p, 0).UTC().Format(time.TimeOnly), k)
			}
		}
		if perPeriod[p0] != 1 {
			t.Errorf("the first leader's period has %d jobs (%v), want 1", perPeriod[p0], perPeriod)
		}
		if len(perPeriod) > 1 {
			t.Logf("the new leader started in the next period (%v): the change of leader within one period was not exercised", perPeriod)
		}
	})
}

type echoSnooze struct {
	N int `json:"n"`
}

func (echoSnooze) Kind() string { return "test_snooze" }

// TestSnooze: a snoozed job runs again later, without using an attempt.
func TestSnooze(t *testing.T) {
	t.Parallel()
	q := openTest(t, dbtest.SQLite(t), WithMaxAttempts(1))
	var mu sync.Mutex
	calls := 0
	if err := Register(q, func(ctx context.Context, a echoSnooze) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 2 {
			return Snooze(50 * time.Millisecond)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	enqueue(t, q, echoSnooze{N: 1}, EnqueueOptions{})
	js := waitJobs(t, q, Filter{}, 15*time.Second, allIn(1, StateCompleted, StateDiscarded))
	mu.Lock()
	defer mu.Unlock()
	if js[0].State != StateCompleted || calls != 3 {
		t.Errorf("after two snoozes with one attempt allowed: %s after %d calls", js[0].State, calls)
	}
}

// TestScheduleInQueue: InQueue puts the scheduled jobs in a queue of
// their own; an unconfigured queue is refused.
func TestScheduleInQueue(t *testing.T) {
	t.Parallel()
	q := openTest(t, dbtest.SQLite(t), WithQueue("other", 1))
	if err := Register(q, func(context.Context, tickArgs) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := Schedule(q, "tick", time.Second, tickArgs{}, InQueue("nope")); err == nil {
		t.Error("an unconfigured queue was accepted")
	}
	if err := Schedule(q, "tick", time.Second, tickArgs{}, InQueue("other")); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	js := waitJobs(t, q, Filter{Kinds: []string{"test_tick"}}, 15*time.Second, func(js []Job) bool { return len(js) > 0 })
	if js[0].Queue != "other" {
		t.Errorf("scheduled job in queue %q, want other", js[0].Queue)
	}
}
