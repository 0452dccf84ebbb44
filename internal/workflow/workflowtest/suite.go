// Package workflowtest is the conformance suite of workflow.Store: every
// implementation, on every database engine, passes Run.
package workflowtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/workflow"
)

// Factory makes a fresh, empty store for t and returns a function that
// opens handles on it; two handles behave as two processes sharing the
// store would. Handles are closed when t ends.
type Factory func(t *testing.T) (open func() workflow.Store)

// Run runs the suite.
func Run(t *testing.T, factory Factory) {
	one := func(t *testing.T) workflow.Store { return factory(t)() }
	t.Run("Workflows", func(t *testing.T) { testWorkflows(t, one(t)) })
	t.Run("UpdateWorkflow", func(t *testing.T) { testUpdateWorkflow(t, one(t)) })
	t.Run("DeleteWorkflow", func(t *testing.T) { testDeleteWorkflow(t, one(t)) })
	t.Run("Runs", func(t *testing.T) { testRuns(t, one(t)) })
	t.Run("RunFilter", func(t *testing.T) { testRunFilter(t, one(t)) })
	t.Run("ConcurrentUpdateRun", func(t *testing.T) {
		open := factory(t)
		testConcurrentUpdateRun(t, open(), open())
	})
	t.Run("Logs", func(t *testing.T) {
		open := factory(t)
		testLogs(t, open(), open())
	})
	t.Run("Locks", func(t *testing.T) {
		open := factory(t)
		testLocks(t, open(), open())
	})
	t.Run("State", func(t *testing.T) { testState(t, one(t)) })
}

var t0 = time.Date(2026, 12, 6, 14, 7, 0, 0, time.UTC)

// Workflow returns a valid workflow named name.
func Workflow(name string) *workflow.Workflow {
	cfg, err := workflow.ParseConfig([]byte(`{"version":"v1","repositories":[{"repository":"nginx","tags":["1.27.1"]}]}`))
	if err != nil {
		panic(err)
	}
	return &workflow.Workflow{Name: name, Config: *cfg, ConfigText: `{"version":"v1"}`,
		Schedule: workflow.Schedule{Days: 1, Hour: 14, Minute: 7}, SecuritySuite: true,
		CreatedAt: t0, UpdatedAt: t0, NextRunAt: t0.Add(24 * time.Hour)}
}

func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func testWorkflows(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	if _, err := s.Workflow(ctx, "default"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("missing workflow: %v, want ErrNotFound", err)
	}
	if ws, err := s.Workflows(ctx); err != nil || len(ws) != 0 {
		t.Errorf("empty store lists %v, %v", ws, err)
	}
	for _, n := range []string{"b", "a", "c"} {
		if err := s.CreateWorkflow(ctx, Workflow(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateWorkflow(ctx, Workflow("a")); !errors.Is(err, workflow.ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	got, err := s.Workflow(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "workflow round trip", got, Workflow("a"))
	ws, err := s.Workflows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("listed %v, want a, b, c", names)
	}
}

func testUpdateWorkflow(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	if _, err := s.UpdateWorkflow(ctx, "nope", func(*workflow.Workflow) error { return nil }); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("update of a missing workflow: %v", err)
	}
	if err := s.CreateWorkflow(ctx, Workflow("w")); err != nil {
		t.Fatal(err)
	}
	w, err := s.UpdateWorkflow(ctx, "w", func(w *workflow.Workflow) error {
		w.Schedule.Days = 7
		w.Triggers.Pending = append(w.Triggers.Pending, workflow.PendingTrigger{Kind: workflow.TriggerDBUpdate, FirstSeen: t0, LastSeen: t0})
		return nil
	})
	if err != nil || w.Schedule.Days != 7 {
		t.Fatalf("update: %v, %+v", err, w)
	}
	got, _ := s.Workflow(ctx, "w")
	sameJSON(t, "updated workflow", got, w)
	// A failing function writes nothing and its error comes back.
	boom := errors.New("boom")
	if _, err := s.UpdateWorkflow(ctx, "w", func(w *workflow.Workflow) error { w.Schedule.Days = 30; return boom }); !errors.Is(err, boom) {
		t.Errorf("failing update: %v, want boom", err)
	}
	if got, _ := s.Workflow(ctx, "w"); got.Schedule.Days != 7 {
		t.Errorf("a failed update was written: %d days", got.Schedule.Days)
	}
	if _, err := s.UpdateWorkflow(ctx, "w", func(w *workflow.Workflow) error { w.Name = "x"; return nil }); err == nil {
		t.Error("an update renamed the workflow")
	}
}

func newRun(id, wf string, at time.Time) *workflow.Run {
	return &workflow.Run{ID: id, Workflow: wf, Trigger: workflow.Trigger{Kind: workflow.TriggerManual}, State: workflow.StateQueued,
		CreatedAt: at, Tasks: []workflow.Task{{ID: id + "-t", Kind: workflow.TaskTrigger, State: workflow.StateQueued, CreatedAt: at}}}
}

func testDeleteWorkflow(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	if err := s.DeleteWorkflow(ctx, "nope"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("delete of a missing workflow: %v", err)
	}
	for _, n := range []string{"gone", "kept"} {
		if err := s.CreateWorkflow(ctx, Workflow(n)); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRun(ctx, newRun("r-"+n, n, t0)); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendLog(ctx, "r-"+n, "r-"+n+"-t", t0, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteWorkflow(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Workflow(ctx, "gone"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("deleted workflow still there: %v", err)
	}
	if _, err := s.Run(ctx, "r-gone"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("run of a deleted workflow still there: %v", err)
	}
	if l, _ := s.Logs(ctx, "r-gone", 0, 0); len(l) != 0 {
		t.Errorf("log of a deleted workflow still there: %v", l)
	}
	if _, err := s.Run(ctx, "r-kept"); err != nil {
		t.Errorf("another workflow's run went: %v", err)
	}
	if l, _ := s.Logs(ctx, "r-kept", 0, 0); len(l) != 1 {
		t.Errorf("another workflow's log: %v", l)
	}
	// The name can be used again, without the old runs.
	if err := s.CreateWorkflow(ctx, Workflow("gone")); err != nil {
		t.Fatal(err)
	}
	if rs, _ := s.Runs(ctx, workflow.RunFilter{Workflow: "gone"}); len(rs) != 0 {
		t.Errorf("a re-created workflow has %d old runs", len(rs))
	}
}

func testRuns(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	if err := s.CreateRun(ctx, newRun("r1", "w", t0)); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("run of a missing workflow: %v, want ErrNotFound", err)
	}
	if err := s.CreateWorkflow(ctx, Workflow("w")); err != nil {
		t.Fatal(err)
	}
	r := newRun("r1", "w", t0)
	r.Tasks = append(r.Tasks, workflow.Task{ID: "r1-s1", Kind: workflow.TaskScan, Image: "nginx:1.27.1", State: workflow.StateSucceeded,
		CreatedAt: t0, StartedAt: t0, EndedAt: t0.Add(time.Second),
		Scan: &workflow.ScanResult{Target: "quarantine/nginx:1.27.1", Fixable: workflow.Counts{"HIGH": 3}, Signals: []string{workflow.SignalDB}, Patch: true, Tag: "1.27.1-1"}})
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, newRun("r1", "w", t0)); !errors.Is(err, workflow.ErrExists) {
		t.Errorf("second run with one ID: %v, want ErrExists", err)
	}
	got, err := s.Run(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "run round trip", got, r)
	if _, err := s.Run(ctx, "nope"); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("missing run: %v", err)
	}
	up, err := s.UpdateRun(ctx, "r1", func(r *workflow.Run) error {
		r.State = workflow.StateSucceeded
		r.Task("r1-s1").Scan.Fixable["LOW"] = 1
		return nil
	})
	if err != nil || up.State != workflow.StateSucceeded {
		t.Fatalf("update run: %v %+v", err, up)
	}
	got, _ = s.Run(ctx, "r1")
	sameJSON(t, "updated run", got, up)
	boom := errors.New("boom")
	if _, err := s.UpdateRun(ctx, "r1", func(r *workflow.Run) error { r.State = workflow.StateFailed; return boom }); !errors.Is(err, boom) {
		t.Errorf("failing update: %v", err)
	}
	if got, _ := s.Run(ctx, "r1"); got.State != workflow.StateSucceeded {
		t.Errorf("a failed update was written: %s", got.State)
	}
	if _, err := s.UpdateRun(ctx, "nope", func(*workflow.Run) error { return nil }); !errors.Is(err, workflow.ErrNotFound) {
		t.Errorf("update of a missing run: %v", err)
	}
	if _, err := s.UpdateRun(ctx, "r1", func(r *workflow.Run) error { r.Workflow = "x"; return nil }); err == nil {
		t.Error("an update moved the run to another workflow")
	}
	if _, err := s.UpdateRun(ctx, "r1", func(r *workflow.Run) error { r.Tasks = r.Tasks[:1]; return nil }); err == nil {
		t.Error("an update removed a task")
	}
	if _, err := s.UpdateRun(ctx, "r1", func(r *workflow.Run) error { r.Tasks[0], r.Tasks[1] = r.Tasks[1], r.Tasks[0]; return nil }); err == nil {
		t.Error("an update reordered the tasks")
	}
	// A task appended, another changed: read back as written.
	up, err = s.UpdateRun(ctx, "r1", func(r *workflow.Run) error {
		r.Tasks[0].State = workflow.StateSucceeded
		r.Tasks = append(r.Tasks, workflow.Task{ID: "r1-p1", Kind: workflow.TaskPatch, Image: "nginx:1.27.1", State: workflow.StateQueued, CreatedAt: t0,
			Patch: &workflow.PatchResult{Tag: "1.27.1-1", Digest: "sha256:1"}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.Run(ctx, "r1")
	sameJSON(t, "run with an appended task", got, up)
	if runs, _ := s.Runs(ctx, workflow.RunFilter{}); len(runs) != 1 || len(runs[0].Tasks) != 3 {
		t.Errorf("listed runs carry their tasks: %+v", runs)
	}
}

func testRunFilter(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	for _, n := range []string{"a", "b"} {
		if err := s.CreateWorkflow(ctx, Workflow(n)); err != nil {
			t.Fatal(err)
		}
	}
	// a1..a5 one hour apart (a3 and a4 at the same time), b1 in between.
	at := map[string]time.Time{"a1": t0, "a2": t0.Add(time.Hour), "a3": t0.Add(2 * time.Hour), "a4": t0.Add(2 * time.Hour), "a5": t0.Add(3 * time.Hour), "b1": t0.Add(90 * time.Minute)}
	for _, id := range []string{"a3", "a1", "b1", "a5", "a2", "a4"} {
		r := newRun(id, id[:1], at[id])
		if id == "a2" || id == "a4" {
			r.State = workflow.StateFailed
		}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// a5 moves to running through an update: the filter sees it.
	if _, err := s.UpdateRun(ctx, "a5", func(r *workflow.Run) error { r.State = workflow.StateRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	ids := func(f workflow.RunFilter) []string {
		rs, err := s.Runs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    workflow.RunFilter
		want []string
	}{
		{"all, newest first, ties by ID", workflow.RunFilter{}, []string{"a5", "a4", "a3", "b1", "a2", "a1"}},
		{"one workflow", workflow.RunFilter{Workflow: "a"}, []string{"a5", "a4", "a3", "a2", "a1"}},
		{"since", workflow.RunFilter{Workflow: "a", Since: t0.Add(2 * time.Hour)}, []string{"a5", "a4", "a3"}},
		{"states", workflow.RunFilter{States: []workflow.State{workflow.StateFailed, workflow.StateRunning}}, []string{"a5", "a4", "a2"}},
		{"limit", workflow.RunFilter{Limit: 2}, []string{"a5", "a4"}},
		{"nothing", workflow.RunFilter{Workflow: "c"}, nil},
	}
	for _, tc := range tests {
		if got := ids(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// testConcurrentUpdateRun: updates from many goroutines, through two
// handles (two processes), are all applied.
func testConcurrentUpdateRun(t *testing.T, s, s2 workflow.Store) {
	ctx := t.Context()
	if err := s.CreateWorkflow(ctx, Workflow("w")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, newRun("r", "w", t0)); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		h := s
		if i%2 == 1 {
			h = s2
		}
		wg.Go(func() {
			_, err := h.UpdateRun(ctx, "r", func(r *workflow.Run) error {
				r.Tasks = append(r.Tasks, workflow.Task{ID: fmt.Sprintf("r-s%d", i), Kind: workflow.TaskScan, State: workflow.StateQueued, CreatedAt: t0})
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r, _ := s.Run(ctx, "r")
	if len(r.Tasks) != n+1 {
		t.Errorf("%d tasks after %d concurrent appends, want %d", len(r.Tasks), n, n+1)
	}
}

func testLogs(t *testing.T, s, s2 workflow.Store) {
	ctx := t.Context()
	if err := s.CreateWorkflow(ctx, Workflow("w")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r1", "r2"} {
		if err := s.CreateRun(ctx, newRun(id, "w", t0)); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AppendLog(ctx, "r1", "r1-t", t0, "one", "two"))
	must(s.AppendLog(ctx, "r2", "r2-t", t0, "other run"))
	must(s2.AppendLog(ctx, "r1", "r1-s1", t0.Add(time.Second), "three"))
	must(s.AppendLog(ctx, "r1", "r1-s1", t0, []string{}...))
	all, err := s.Logs(ctx, "r1", 0, 0)
	must(err)
	var got []string
	for i, l := range all {
		got = append(got, fmt.Sprintf("%d %s %s", l.Seq, l.Task, l.Text))
		if i > 0 && l.Seq <= all[i-1].Seq {
			t.Errorf("sequence numbers not increasing: %v", all)
		}
	}
	if !slices.Equal(got, []string{"1 r1-t one", "2 r1-t two", "3 r1-s1 three"}) {
		t.Errorf("log %q", got)
	}
	if !all[2].At.Equal(t0.Add(time.Second)) {
		t.Errorf("line time %v", all[2].At)
	}
	after, err := s.Logs(ctx, "r1", 2, 0)
	must(err)
	if len(after) != 1 || after[0].Text != "three" {
		t.Errorf("after 2: %+v", after)
	}
	limited, err := s.Logs(ctx, "r1", 0, 2)
	must(err)
	if len(limited) != 2 {
		t.Errorf("limit 2: %d lines", len(limited))
	}
	if l, _ := s.Logs(ctx, "nope", 0, 0); len(l) != 0 {
		t.Errorf("log of a missing run: %v", l)
	}
	// Appends from two handles at once: every line kept, numbered once.
	var wg sync.WaitGroup
	for i := range 10 {
		h := s
		if i%2 == 1 {
			h = s2
		}
		wg.Go(func() {
			if err := h.AppendLog(ctx, "r2", "r2-t", t0, fmt.Sprintf("line %d", i), "more"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	lines, err := s.Logs(ctx, "r2", 0, 0)
	must(err)
	if len(lines) != 21 {
		t.Fatalf("%d lines after concurrent appends, want 21", len(lines))
	}
	for i, l := range lines {
		if l.Seq != int64(i+1) {
			t.Fatalf("line %d has sequence number %d", i, l.Seq)
		}
	}
}

func testLocks(t *testing.T, s, s2 workflow.Store) {
	ctx := t.Context()
	take := func(me string) func(string) (string, error) {
		return func(h string) (string, error) {
			if h == "" {
				return me, nil
			}
			return h, nil
		}
	}
	h, err := s.UpdateLock(ctx, "img", take("r1"))
	if err != nil || h != "r1" {
		t.Fatalf("first take: %q %v", h, err)
	}
	if h, _ := s.UpdateLock(ctx, "img", take("r2")); h != "r1" {
		t.Errorf("second take: held by %q, want r1", h)
	}
	if h, _ := s.UpdateLock(ctx, "other", take("r2")); h != "r2" {
		t.Errorf("another key: %q", h)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateLock(ctx, "img", func(string) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Errorf("failing update: %v", err)
	}
	if h, _ := s.UpdateLock(ctx, "img", take("r3")); h != "r1" {
		t.Errorf("a failed release freed the lock: held by %q", h)
	}
	if h, err := s.UpdateLock(ctx, "img", func(string) (string, error) { return "", nil }); err != nil || h != "" {
		t.Errorf("release: %q %v", h, err)
	}
	// Many contenders: exactly one wins.
	if _, err := s.UpdateLock(ctx, "race", func(string) (string, error) { return "", nil }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := range 12 {
		hs := s
		if i%2 == 1 {
			hs = s2
		}
		wg.Go(func() {
			me := fmt.Sprintf("r%d", i)
			h, err := hs.UpdateLock(ctx, "race", take(me))
			if err != nil {
				t.Error(err)
				return
			}
			if h == me {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if winners != 1 {
		t.Errorf("%d contenders took the lock, want 1", winners)
	}
}

func testState(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	v, err := s.UpdateState(ctx, "k", func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("absent state read as %q", old)
		}
		return []byte(`{"etag":"a"}`), nil
	})
	if err != nil || string(v) != `{"etag":"a"}` {
		t.Fatalf("set: %q %v", v, err)
	}
	if _, err := s.UpdateState(ctx, "k", func(old []byte) ([]byte, error) {
		if string(old) != `{"etag":"a"}` {
			t.Errorf("read back %q", old)
		}
		return nil, errors.New("keep")
	}); err == nil {
		t.Error("a failing update did not fail")
	}
	if _, err := s.UpdateState(ctx, "k", func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateState(ctx, "k", func(old []byte) ([]byte, error) {
		if old != nil {
			t.Errorf("deleted state read as %q", old)
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}
