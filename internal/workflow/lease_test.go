package workflow_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestResumeOrphans: a lease that runs out while its part of the run is
// unfinished gets one resume job (however often the check runs), and a
// part whose jobs die MaxResumes times fails with the reason; a finished
// part's stale lease is only dropped.
func TestResumeOrphans(t *testing.T) {
	h := newHarness(t, false)
	ctx := t.Context()
	t0 := mustTime(t, "2026-12-06 14:00")
	h.clock.Set(t0)
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d"}); err != nil {
		t.Fatal(err)
	}
	const group = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	r := &workflow.Run{ID: "r0000000a", Workflow: "default", Trigger: workflow.Trigger{Kind: workflow.TriggerManual}, State: workflow.StateRunning,
		CreatedAt: t0, StartedAt: t0, Leases: map[string]workflow.Lease{
			group: {Owner: "job-7.1", Until: t0.Add(workflow.LeaseTTL)},
			// The trigger's job died after recording its task: resumed
			// anyway, since it may have died before queueing the images.
			workflow.LeaseTrigger: {Owner: "job-6.1", Until: t0.Add(workflow.LeaseTTL)},
		},
		Tasks: []workflow.Task{
			{ID: "r0000000a-t", Kind: workflow.TaskTrigger, State: workflow.StateSucceeded, CreatedAt: t0},
			{ID: "r0000000a-s1", Kind: workflow.TaskScan, Image: "nginx:1.27.1", Group: group, State: workflow.StateSucceeded, CreatedAt: t0},
			{ID: "r0000000a-p1", Kind: workflow.TaskPatch, Image: "nginx:1.27.1", Group: group, State: workflow.StateRunning, CreatedAt: t0},
		}}
	if err := h.store.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	resumes := func() []jobs.Job {
		js, err := h.queue.Jobs(ctx, jobs.Filter{Kinds: []string{"workflow.images", "workflow.run"}})
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	check := func(at time.Time, wantJobs int) *workflow.Run {
		t.Helper()
		h.clock.Set(at)
		if err := h.eng.ResumeOrphans(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.ResumeOrphans(ctx); err != nil { // again: no second job
			t.Fatal(err)
		}
		if n := len(resumes()); n != wantJobs {
			t.Fatalf("at %s: %d resume jobs, want %d", at, n, wantJobs)
		}
		got, err := h.store.Run(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	check(t0.Add(10*time.Second), 0) // leases still valid
	got := check(t0.Add(time.Minute), 2)
	if l := got.Leases[group]; !strings.HasPrefix(l.Owner, "resume-") || got.Resumes[group] != 1 || got.Resumes[workflow.LeaseTrigger] != 1 {
		t.Fatalf("after the first resume: lease %+v, resumes %v", l, got.Resumes)
	}
	// Each resumed job dies too.
	for i := 2; i <= workflow.MaxResumes+1; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		if _, err := h.store.UpdateRun(ctx, r.ID, func(r *workflow.Run) error {
			r.Leases[group] = workflow.Lease{Owner: "job-9." + string(rune('0'+i)), Until: at.Add(-time.Second)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := 1 + min(i, workflow.MaxResumes)
		got = check(at, want)
	}
	p := got.ImageTask(workflow.TaskPatch, "nginx:1.27.1")
	if got.State != workflow.StateFailed || p.State != workflow.StateFailed || !strings.Contains(p.Error, "interrupted 4 times") {
		t.Errorf("after %d deaths: run %s, patch %s %q", workflow.MaxResumes+1, got.State, p.State, p.Error)
	}
}

// TestCancel: cancel-run ends queued and running runs and their tasks;
// their jobs then do nothing; a finished run cannot be canceled; delete
// cancels the active runs and removes the workflow with its ledger.
func TestCancel(t *testing.T) {
	h := newHarness(t, false)
	ctx := t.Context()
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d"}); err != nil {
		t.Fatal(err)
	}
	a, b := h.runNow(""), h.runNow("")
	ids, err := h.eng.Cancel(ctx, "", a.ID)
	if err != nil || len(ids) != 1 || ids[0] != a.ID {
		t.Fatalf("cancel %s: %v %v", a.ID, ids, err)
	}
	if _, err := h.eng.Cancel(ctx, "", a.ID); !errorsIs(err, workflow.ErrInvalid) {
		t.Errorf("canceling a canceled run: %v", err)
	}
	if _, err := h.eng.Cancel(ctx, "", "r99999999"); !errorsIs(err, workflow.ErrNotFound) {
		t.Errorf("canceling an unknown run: %v", err)
	}
	h.start()
	b = h.waitRun(b.ID, time.Minute) // nothing matches: ends at its trigger task
	if b.State != workflow.StateSucceeded {
		t.Errorf("the other run: %s", b.State)
	}
	// Wait for the canceled run's job to have run (a fixed sleep passed,
	// vacuously, when the job had not run yet).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		all, err := h.queue.Jobs(ctx, jobs.Filter{Queues: []string{"workflow"}})
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(all, func(j jobs.Job) bool {
			return strings.Contains(string(j.Args), `"`+a.ID+`"`) && !j.FinalizedAt.IsZero()
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canceled run's job did not run in a minute: %+v", all)
		}
	}
	got, err := h.store.Run(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != workflow.StateCanceled || got.Tasks[0].State != workflow.StateCanceled || !got.StartedAt.IsZero() {
		t.Errorf("canceled run after its job: %s, trigger %s, started %v", got.State, got.Tasks[0].State, got.StartedAt)
	}
	c := h.runNow("")
	canceled, err := h.eng.Delete(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Run(ctx, b.ID); !errorsIs(err, workflow.ErrNotFound) {
		t.Errorf("delete kept the ledger: %v", err)
	}
	if len(canceled) > 1 || (len(canceled) == 1 && canceled[0] != c.ID) {
		t.Errorf("delete canceled %v", canceled)
	}
	if _, err := h.eng.Show(ctx, ""); !errorsIs(err, workflow.ErrNotFound) {
		t.Errorf("show after delete: %v", err)
	}
}
