package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

type tickArgs struct{}

func (tickArgs) Kind() string { return "test_tick" }

// TestPeriodic: the job is enqueued on start and again every interval,
// and never twice at once while one is running.
func TestPeriodic(t *testing.T) {
	t.Parallel()
	q := openTest(t, "")
	var runs, running, overlap atomic.Int64
	if err := Register(q, func(ctx context.Context, _ tickArgs) error {
		if running.Add(1) > 1 {
			overlap.Add(1)
		}
		defer running.Add(-1)
		runs.Add(1)
		time.Sleep(1500 * time.Millisecond) // longer than the interval
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.AddPeriodic(time.Second, tickArgs{}, PeriodicOptions{RunOnStart: true}); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	waitJobs(t, q, Filter{Kinds: []string{"test_tick"}, States: []State{StateCompleted}}, 20*time.Second,
		func(js []Job) bool { return len(js) >= 2 })
	if overlap.Load() != 0 {
		t.Errorf("%d ticks ran while another was running", overlap.Load())
	}
	js, err := q.Jobs(t.Context(), Filter{Kinds: []string{"test_tick"}, States: []State{StateAvailable, StateRunning, StateScheduled, StatePending, StateRetryable}})
	if err != nil {
		t.Fatal(err)
	}
	if len(js) > 1 {
		t.Errorf("%d unfinished ticks at once: %+v", len(js), js)
	}
}

func TestPeriodicMisuse(t *testing.T) {
	t.Parallel()
	q := openTest(t, "")
	if err := q.AddPeriodic(time.Second, tickArgs{}, PeriodicOptions{}); !errors.As(err, new(*UnknownKindError)) {
		t.Errorf("unregistered kind: %v", err)
	}
	if err := Register(q, func(context.Context, tickArgs) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := q.AddPeriodic(time.Millisecond, tickArgs{}, PeriodicOptions{}); err == nil {
		t.Error("a 1ms interval was accepted")
	}
	if err := q.AddPeriodic(time.Second, tickArgs{}, PeriodicOptions{Queue: "nope"}); err == nil {
		t.Error("an unknown queue was accepted")
	}
	if err := q.AddPeriodic(time.Second, nil, PeriodicOptions{}); err == nil {
		t.Error("nil args were accepted")
	}
}

// TestSnooze: a snoozed job runs again later, without using an attempt.
func TestSnooze(t *testing.T) {
	t.Parallel()
	q := openTest(t, "", WithMaxAttempts(1))
	var calls atomic.Int64
	if err := Register(q, func(ctx context.Context, a echoArgs) error {
		if calls.Add(1) <= 2 {
			return Snooze(50 * time.Millisecond)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	enqueue(t, q, echoArgs{N: 1}, EnqueueOptions{})
	js := waitJobs(t, q, Filter{}, 15*time.Second, allIn(1, StateCompleted, StateDiscarded))
	if js[0].State != StateCompleted || calls.Load() != 3 {
		t.Errorf("after two snoozes with one attempt allowed: %s after %d calls", js[0].State, calls.Load())
	}
}
