package workflow_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/pgtest"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestScheduleOnceAcrossReplicas is #15's "the same workflow schedule on 3
// replicas produces exactly one run per period": three engines, each with
// its own store handle, its own River client and its own clock (set to the
// same instants), share one real PostgreSQL database and all tick at once,
// several times per instant. Each period gets exactly one run, which runs
// to its end once.
func TestScheduleOnceAcrossReplicas(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	base := newHarness(t, false) // the registry and patcher the replicas share
	const replicas = 3
	var engines []*workflow.Engine
	var clocks []*fakeClock
	var stores []workflow.Store
	for i := range replicas {
		dbs, err := database.NewOpener(database.Config{Driver: database.Postgres, DSN: dsn}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		st, err := workflow.Open(t.Context(), dbs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		q, err := jobs.Open(t.Context(), dbs, jobs.WithPollInterval(50*time.Millisecond),
			jobs.WithQueue("workflow", 1), jobs.WithRetryBackoff(func(int) time.Duration { return 100 * time.Millisecond }))
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { q.Close() })
		clock := &fakeClock{now: mustTime(t, "2026-12-06 14:07")}
		o := base.opts
		o.Store, o.Queue, o.Clock = st, q, clock
		eng, err := workflow.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = q.Stop(ctx)
		})
		engines, clocks, stores = append(engines, eng), append(clocks, clock), append(stores, st)
	}
	if _, err := engines[0].Create(t.Context(), workflow.CreateRequest{Config: config("incremental", "nothing", "1.0"), Schedule: "1d"}); err != nil {
		t.Fatal(err)
	}
	ticks := []string{"2026-12-06 20:00", "2026-12-07 14:07", "2026-12-07 14:08", "2026-12-08 09:00", "2026-12-08 14:07", "2026-12-08 14:09", "2026-12-09 14:07"}
	for _, at := range ticks {
		for _, c := range clocks {
			c.Set(mustTime(t, at))
		}
		var wg sync.WaitGroup
		errs := make(chan error, replicas*3)
		for _, e := range engines {
			for range 3 {
				wg.Go(func() { errs <- e.Tick(t.Context()) })
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("tick at %s: %v", at, err)
			}
		}
	}
	want := sched("2026-12-07 14:07", "2026-12-08 14:07", "2026-12-09 14:07")
	for i, st := range stores {
		h := &harness{t: t, store: st}
		if got := h.scheduledRuns(workflow.DefaultName); !slices.Equal(got, want) {
			t.Errorf("replica %d sees scheduled runs\n got %q\nwant %q", i, got, want)
		}
	}
	runs, err := stores[0].Runs(t.Context(), workflow.RunFilter{Workflow: workflow.DefaultName})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: stores[1]}
	for _, r := range runs {
		if got := h.waitRun(r.ID, 2*time.Minute); got.State == workflow.StateFailed || got.State == workflow.StateCanceled {
			t.Errorf("run %s (%s) ended %s:\n%s", r.ID, r.Trigger.Detail, got.State, h.log(r.ID))
		}
	}
}
