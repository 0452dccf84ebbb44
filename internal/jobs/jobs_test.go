package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

type echoArgs struct {
	N int `json:"n"`
}

func (echoArgs) Kind() string { return "test_echo" }

type failArgs struct {
	N int `json:"n"`
}

func (failArgs) Kind() string { return "test_fail" }

// eachEngine runs fn once per database engine (SQLite, PostgreSQL).
func eachEngine(t *testing.T, fn func(t *testing.T, newTarget func(testing.TB) dbtest.Target)) {
	dbtest.Each(t, fn)
}

// openTest opens a queue on tg with fast polling and retries, closed at the
// end of the test.
func openTest(t *testing.T, tg dbtest.Target, opts ...Option) *Queue {
	t.Helper()
	base := []Option{WithPollInterval(20 * time.Millisecond), WithRetryBackoff(func(int) time.Duration { return 10 * time.Millisecond })}
	q, err := Open(t.Context(), tg.Opener(t), append(base, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

func start(t *testing.T, q *Queue) {
	t.Helper()
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

func enqueue(t *testing.T, q *Queue, args JobArgs, opts EnqueueOptions) int64 {
	t.Helper()
	id, err := q.Enqueue(t.Context(), args, opts)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

// waitJobs polls until every listed job matching f satisfies done, and
// returns them.
func waitJobs(t *testing.T, q *Queue, f Filter, timeout time.Duration, done func([]Job) bool) []Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		js, err := q.Jobs(t.Context(), f)
		if err != nil {
			t.Fatalf("Jobs: %v", err)
		}
		if done(js) {
			return js
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s; jobs: %+v", timeout, js)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func allIn(n int, states ...State) func([]Job) bool {
	return func(js []Job) bool {
		if len(js) != n {
			return false
		}
		for _, j := range js {
			ok := false
			for _, s := range states {
				ok = ok || j.State == s
			}
			if !ok {
				return false
			}
		}
		return true
	}
}

func TestEnqueueRunsHandler(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		q := openTest(t, newTarget(t))
		var got atomic.Int64
		var info Info
		if err := Register(q, func(ctx context.Context, a echoArgs) error {
			info, _ = JobInfo(ctx)
			got.Store(int64(a.N))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		id := enqueue(t, q, echoArgs{N: 42}, EnqueueOptions{})
		js := waitJobs(t, q, Filter{}, 10*time.Second, allIn(1, StateCompleted))
		j := js[0]
		if j.ID != id || j.Kind != "test_echo" || j.Queue != DefaultQueue || j.Attempt != 1 || len(j.Errors) != 0 {
			t.Errorf("job = %+v", j)
		}
		var args echoArgs // PostgreSQL keeps args as jsonb: compare values, not bytes
		if json.Unmarshal(j.Args, &args) != nil || args.N != 42 || j.FinalizedAt.IsZero() || j.AttemptedAt.IsZero() || j.CreatedAt.IsZero() {
			t.Errorf("job = %+v", j)
		}
		if got.Load() != 42 {
			t.Errorf("handler saw N=%d, want 42", got.Load())
		}
		if info.ID != id || info.Attempt != 1 || info.Kind != "test_echo" || info.MaxAttempts != DefaultMaxAttempts {
			t.Errorf("JobInfo = %+v", info)
		}
	})
}

func TestFailingHandler(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		t.Run("retried then discarded", func(t *testing.T) {
			t.Parallel()
			q := openTest(t, newTarget(t), WithMaxAttempts(3))
			var runs atomic.Int32
			if err := Register(q, func(ctx context.Context, a failArgs) error {
				info, _ := JobInfo(ctx)
				runs.Add(1)
				return fmt.Errorf("boom %d attempt %d", a.N, info.Attempt)
			}); err != nil {
				t.Fatal(err)
			}
			start(t, q)
			enqueue(t, q, failArgs{N: 7}, EnqueueOptions{})
			j := waitJobs(t, q, Filter{}, 15*time.Second, allIn(1, StateDiscarded))[0]
			if j.Attempt != 3 || runs.Load() != 3 || len(j.Errors) != 3 {
				t.Fatalf("attempt %d, runs %d, errors %+v; want 3 each", j.Attempt, runs.Load(), j.Errors)
			}
			for i, e := range j.Errors {
				if want := fmt.Sprintf("boom 7 attempt %d", i+1); e.Error != want || e.Attempt != i+1 || e.At.IsZero() {
					t.Errorf("error %d = %+v, want %q", i, e, want)
				}
			}
		})
		t.Run("waiting for retry", func(t *testing.T) {
			t.Parallel()
			q := openTest(t, newTarget(t), WithRetryBackoff(func(int) time.Duration { return time.Hour }))
			if err := Register(q, func(context.Context, failArgs) error { return errors.New("registry unreachable") }); err != nil {
				t.Fatal(err)
			}
			start(t, q)
			enqueue(t, q, failArgs{N: 1}, EnqueueOptions{})
			j := waitJobs(t, q, Filter{}, 10*time.Second, allIn(1, StateRetryable))[0]
			if j.Attempt != 1 || len(j.Errors) != 1 || j.Errors[0].Error != "registry unreachable" {
				t.Errorf("job = %+v", j)
			}
			if d := time.Until(j.ScheduledAt); d < 50*time.Minute {
				t.Errorf("retry scheduled in %s, want about 1h", d)
			}
		})
		t.Run("permanent", func(t *testing.T) {
			t.Parallel()
			q := openTest(t, newTarget(t))
			var runs atomic.Int32
			if err := Register(q, func(context.Context, failArgs) error {
				runs.Add(1)
				return Permanent(errors.New("unsupported media type"))
			}); err != nil {
				t.Fatal(err)
			}
			start(t, q)
			enqueue(t, q, failArgs{N: 1}, EnqueueOptions{})
			j := waitJobs(t, q, Filter{}, 10*time.Second, allIn(1, StateCancelled))[0]
			if runs.Load() != 1 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "unsupported media type") {
				t.Errorf("runs %d, job %+v", runs.Load(), j)
			}
		})
	})
}

func TestUniqueKey(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		q := openTest(t, newTarget(t))
		var mu sync.Mutex
		runs := map[int]int{}
		if err := Register(q, func(_ context.Context, a echoArgs) error {
			mu.Lock()
			defer mu.Unlock()
			runs[a.N]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		const n = 20
		ids := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				// Different args, same key: only the key counts.
				id, err := q.Enqueue(t.Context(), echoArgs{N: 1000 + i}, EnqueueOptions{UniqueKey: "scan:sha256:aaaa"})
				if err != nil {
					t.Errorf("Enqueue %d: %v", i, err)
				}
				ids[i] = id
			})
		}
		wg.Wait()
		for i := range ids {
			if ids[i] != ids[0] || ids[0] == 0 {
				t.Fatalf("ids = %v, want one id", ids)
			}
		}
		other := enqueue(t, q, echoArgs{N: 1}, EnqueueOptions{UniqueKey: "scan:sha256:bbbb"})
		if other == ids[0] {
			t.Fatalf("different key got the same job %d", other)
		}
		js, err := q.Jobs(t.Context(), Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 2 || js[0].UniqueKey != "scan:sha256:aaaa" || strings.Contains(string(js[0].Args), uniqueKeyField) {
			t.Fatalf("jobs = %+v", js)
		}

		start(t, q)
		waitJobs(t, q, Filter{}, 10*time.Second, allIn(2, StateCompleted))
		// A finished job does not block the key: a rescan is a new job.
		again := enqueue(t, q, echoArgs{N: 2}, EnqueueOptions{UniqueKey: "scan:sha256:aaaa"})
		if again == ids[0] {
			t.Errorf("re-enqueue after completion returned the completed job %d", again)
		}
		waitJobs(t, q, Filter{}, 10*time.Second, allIn(3, StateCompleted))
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, c := range runs {
			total += c
		}
		if total != 3 || runs[2] != 1 || runs[1] != 1 {
			t.Errorf("handler runs = %v, want one per job (3)", runs)
		}
	})
}

func TestRestartDurability(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		const n = 50
		q, err := Open(t.Context(), tg.Opener(t))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			enqueue(t, q, echoArgs{N: i}, EnqueueOptions{UniqueKey: fmt.Sprint("k", i)})
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}

		q = openTest(t, tg, WithWorkers(4))
		var mu sync.Mutex
		seen := map[int]int{}
		if err := Register(q, func(_ context.Context, a echoArgs) error {
			mu.Lock()
			defer mu.Unlock()
			seen[a.N]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		waitJobs(t, q, Filter{Limit: 1000}, 20*time.Second, allIn(n, StateCompleted))
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			if seen[i] != 1 {
				t.Errorf("job %d ran %d times, want 1", i, seen[i])
			}
		}
		if len(seen) != n {
			t.Errorf("handler saw %d distinct jobs, want %d", len(seen), n)
		}
	})
}

func TestStuck(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		q := openTest(t, newTarget(t))
		release := make(chan struct{})
		running := make(chan struct{}, 1)
		if err := Register(q, func(context.Context, echoArgs) error {
			running <- struct{}{}
			<-release // hangs, ignoring its context, like a wedged scan
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		defer close(release)
		id := enqueue(t, q, echoArgs{N: 1}, EnqueueOptions{})
		enqueue(t, q, echoArgs{N: 2}, EnqueueOptions{ScheduledAt: time.Now().Add(time.Hour)})
		<-running
		j := waitJobs(t, q, Filter{States: []State{StateRunning}}, 10*time.Second, allIn(1, StateRunning))[0]

		now := j.AttemptedAt.Add(time.Minute)
		if s, err := q.Stuck(t.Context(), 5*time.Minute, now); err != nil || len(s) != 0 {
			t.Errorf("Stuck(5m) at +1m = %+v, %v; want none", s, err)
		}
		now = j.AttemptedAt.Add(6 * time.Minute)
		s, err := q.Stuck(t.Context(), 5*time.Minute, now)
		if err != nil || len(s) != 1 || s[0].ID != id || s[0].State != StateRunning {
			t.Errorf("Stuck(5m) at +6m = %+v, %v; want job %d", s, err, id)
		}
	})
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		q := openTest(t, newTarget(t), WithQueue("rescan", 1))
		var ids []int64
		for i := range 5 {
			ids = append(ids, enqueue(t, q, echoArgs{N: i}, EnqueueOptions{}))
		}
		ids = append(ids, enqueue(t, q, failArgs{N: 9}, EnqueueOptions{Queue: "rescan"}))
		cases := []struct {
			name string
			f    Filter
			want []int64
		}{
			{"all", Filter{}, ids},
			{"page", Filter{AfterID: ids[1], Limit: 2}, ids[2:4]},
			{"kind", Filter{Kinds: []string{"test_fail"}}, ids[5:]},
			{"queue", Filter{Queues: []string{DefaultQueue}}, ids[:5]},
			{"state", Filter{States: []State{StateCompleted}}, nil},
		}
		for _, c := range cases {
			js, err := q.Jobs(t.Context(), c.f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			var got []int64
			for _, j := range js {
				got = append(got, j.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: ids %v, want %v", c.name, got, c.want)
			}
		}
		b, err := json.Marshal(Job{ID: 1, State: StateAvailable})
		if err != nil || strings.Contains(string(b), "attempted_at") {
			t.Errorf("unset times should be omitted: %s %v", b, err)
		}
	})
}

func TestMisuse(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		bad := []struct {
			name string
			opts []Option
		}{
			{"workers", []Option{WithWorkers(0)}},
			{"timeout", []Option{WithJobTimeout(0)}},
			{"attempts", []Option{WithMaxAttempts(0)}},
			{"rescue below timeout", []Option{WithJobTimeout(time.Minute), WithRescueStuckAfter(time.Minute)}},
			{"poll", []Option{WithPollInterval(0)}},
			{"queue name", []Option{WithQueue("", 1)}},
			{"default queue", []Option{WithQueue(DefaultQueue, 1)}},
			{"logger", []Option{WithLogger(nil)}},
			{"backoff", []Option{WithRetryBackoff(nil)}},
		}
		for _, c := range bad {
			if q, err := Open(t.Context(), newTarget(t).Opener(t), c.opts...); err == nil {
				_ = q.Close()
				t.Errorf("%s: Open succeeded, want error", c.name)
			}
		}

		q := openTest(t, newTarget(t))
		if err := q.Start(t.Context()); err == nil {
			t.Error("Start without handlers succeeded")
		}
		if err := Register(q, func(context.Context, echoArgs) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := Register(q, func(context.Context, echoArgs) error { return nil }); err == nil {
			t.Error("duplicate Register succeeded")
		}
		var uk *UnknownKindError
		if _, err := q.Enqueue(t.Context(), failArgs{}, EnqueueOptions{}); !errors.As(err, &uk) || uk.Kind != "test_fail" {
			t.Errorf("Enqueue of unregistered kind: %v", err)
		}
		if _, err := q.Enqueue(t.Context(), echoArgs{}, EnqueueOptions{Queue: "nope"}); err == nil {
			t.Error("Enqueue to unconfigured queue succeeded")
		}
		start(t, q)
		if err := Register(q, func(context.Context, failArgs) error { return nil }); !errors.Is(err, ErrStarted) {
			t.Errorf("Register after Start: %v, want ErrStarted", err)
		}
	})
}

func TestStopDeadlineCancelsJobs(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		q, err := Open(t.Context(), newTarget(t).Opener(t), WithPollInterval(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if err := q.Stop(t.Context()); err != nil {
			t.Errorf("Stop before Start: %v", err)
		}
		running := make(chan struct{}, 1)
		cancelled := make(chan error, 1)
		if err := Register(q, func(ctx context.Context, _ echoArgs) error {
			running <- struct{}{}
			<-ctx.Done()
			cancelled <- ctx.Err()
			return ctx.Err()
		}); err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
			t.Fatal(err)
		}
		enqueue(t, q, echoArgs{N: 1}, EnqueueOptions{})
		<-running
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := q.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop = %v, want deadline exceeded", err)
		}
		select {
		case err := <-cancelled:
			if err == nil {
				t.Error("handler context not cancelled")
			}
		default:
			t.Error("Stop returned before the handler saw its cancellation")
		}
		js, err := q.Jobs(t.Context(), Filter{})
		if err != nil || len(js) != 1 || js[0].State == StateCompleted || js[0].State == StateRunning {
			t.Errorf("after hard stop, jobs = %+v, %v; want one job waiting to run again", js, err)
		} else {
			t.Logf("after hard stop the job is %s with errors %+v", js[0].State, js[0].Errors)
		}
	})
}
