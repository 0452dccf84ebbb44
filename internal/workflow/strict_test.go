package workflow_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestRunStrictACR: with the security-suite signal off, a workflow
// decides as ACR does, on the database's fixable findings alone. The
// seed's image has none by the test data but security updates pending:
// with the signal on, the dry run would patch it for the security suite;
// with it off, the run skips it, its reason names the database only, no
// patch task is made and no package archive is asked. Turned on again,
// the run patches it, running its scripts in the sandbox.
func TestRunStrictACR(t *testing.T) {
	img, err := openImage(t, testimage.BookwormNginx).Open()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, true, withMirror(t))
	h.start()
	ctx := t.Context()
	h.push(img, "quarantine/nginx:1.27.1")
	cfg := config("incremental", "nginx", "1.27.1")

	on, err := h.eng.Create(ctx, workflow.CreateRequest{Config: cfg, Schedule: "1d", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(on.DryRun.Images) != 1 || on.DryRun.Images[0].Action != workflow.ActionPatch ||
		strings.Join(on.DryRun.Images[0].Signals, ",") != workflow.SignalSecuritySuite || on.DryRun.Images[0].Fixable.Total() != 0 {
		t.Fatalf("dry run with the security-suite signal: %+v", on.DryRun.Images)
	}

	off := false
	res, err := h.eng.Create(ctx, workflow.CreateRequest{Config: cfg, Schedule: "1d", SecuritySuite: &off, RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	if r.State != workflow.StateSucceeded || r.SecuritySuite {
		t.Fatalf("strict run: %s %q (security suite %v)\n%s", r.State, r.Error, r.SecuritySuite, h.log(r.ID))
	}
	s := task(t, r, workflow.TaskScan, "nginx:1.27.1")
	if s.Scan.Patch || len(s.Scan.Signals) != 0 || s.Scan.SkipReason != "no fixable vulnerability found" || len(s.Scan.SecurityUpdates) != 0 {
		t.Errorf("strict scan: patch=%v signals=%v reason %q, %d security updates", s.Scan.Patch, s.Scan.Signals, s.Scan.SkipReason, len(s.Scan.SecurityUpdates))
	}
	if p := r.ImageTask(workflow.TaskPatch, "nginx:1.27.1"); p != nil {
		t.Errorf("strict run made a patch task: %+v", p)
	}
	if len(r.Fetches) != 0 {
		t.Errorf("strict run asked the archive: %v", r.Fetches)
	}

	// With the signal on, the run patches it; the debconf scripts of
	// tzdata and nginx-common run in the patcher's sandbox, which
	// re-executes this process (the harness turns the sandbox on as root).
	testenv.RequireRoot(t, "the debconf scripts run in the patcher's sandbox, which the harness turns on as root")
	on2 := true
	if _, err := h.eng.Update(ctx, workflow.UpdateRequest{SecuritySuite: &on2}); err != nil {
		t.Fatal(err)
	}
	r = h.waitRun(h.runNow("").ID, 10*time.Minute)
	p := task(t, r, workflow.TaskPatch, "nginx:1.27.1")
	if p.State != workflow.StateSucceeded || p.Patch.Tag != "1.27.1-1" || !slices.ContainsFunc(p.Patch.Sandboxed, func(s string) bool { return strings.Contains(s, "tzdata ") }) {
		t.Errorf("patch with the security-suite signal: %s %q %+v\n%s", p.State, p.Error, p.Patch, h.log(r.ID))
	}
}
