package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

type progressArgs struct {
	N int `json:"n"`
}

func (progressArgs) Kind() string { return "test_progress" }

// TestSetOutput: what a handler records is readable through Job while
// it runs, and the last value stays after it ends.
func TestSetOutput(t *testing.T) {
	eachEngine(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) { testSetOutput(t, newTarget(t)) })
}

func testSetOutput(t *testing.T, tg dbtest.Target) {
	q := openTest(t, tg)
	step := make(chan struct{})
	if err := Register(q, func(ctx context.Context, a progressArgs) error {
		if err := SetOutput(ctx, map[string]any{"phase": "working", "n": a.N}); err != nil {
			return err
		}
		<-step
		return SetOutput(ctx, map[string]any{"phase": "done", "n": a.N})
	}); err != nil {
		t.Fatal(err)
	}
	start(t, q)
	id := enqueue(t, q, progressArgs{N: 7}, EnqueueOptions{})
	output := func() map[string]any {
		j, err := q.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if len(j.Output) > 0 {
			if err := json.Unmarshal(j.Output, &m); err != nil {
				t.Fatalf("output %s: %v", j.Output, err)
			}
		}
		return m
	}
	deadline := time.Now().Add(20 * time.Second)
	for output()["phase"] != "working" {
		if time.Now().After(deadline) {
			t.Fatal("the running job's output never showed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(step)
	for {
		j, err := q.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == StateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job state %s", j.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := output(); m["phase"] != "done" || m["n"] != float64(7) {
		t.Errorf("final output %v", m)
	}
	if _, err := q.Job(t.Context(), id+1000); !errors.Is(err, ErrNoJob) {
		t.Errorf("Job of an unknown id: %v", err)
	}
	if err := SetOutput(t.Context(), 1); err == nil {
		t.Error("SetOutput outside a handler succeeded")
	}
}
