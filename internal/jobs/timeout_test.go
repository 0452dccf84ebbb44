package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

type longArgs struct{}

func (longArgs) Kind() string { return "test_long" }

type shortArgs struct{}

func (shortArgs) Kind() string { return "test_short" }

// TestRegisterWithTimeout: a kind registered without a time-out outlives
// the queue's job time-out; a kind using the queue's is cut off by it.
func TestRegisterWithTimeout(t *testing.T) {
	t.Parallel()
	q := openTest(t, dbtest.SQLite(t), WithJobTimeout(100*time.Millisecond), WithMaxAttempts(1))
	sleep := func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return nil
		}
	}
	if err := RegisterWithTimeout(q, -1, func(ctx context.Context, _ longArgs) error { return sleep(ctx) }); err != nil {
		t.Fatal(err)
	}
	if err := Register(q, func(ctx context.Context, _ shortArgs) error { return sleep(ctx) }); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	enqueue(t, q, longArgs{}, EnqueueOptions{})
	enqueue(t, q, shortArgs{}, EnqueueOptions{})
	js := waitJobs(t, q, Filter{}, 30*time.Second, allIn(2, StateCompleted, StateDiscarded))
	for _, j := range js {
		want := StateCompleted
		if j.Kind == "test_short" {
			want = StateDiscarded
		}
		if j.State != want {
			t.Errorf("%s: %s, want %s", j.Kind, j.State, want)
		}
	}
}
