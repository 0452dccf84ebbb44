package workflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

func openImage(t *testing.T, s testimage.Spec) *testimage.Image {
	t.Helper()
	return testimage.Require(t, s)
}

// TestEngineSeedFlow runs the seed's flow through the engine: dry run,
// run, the ledger's three tasks, no second patch when nothing is new, and
// the floating convention.
func TestEngineSeedFlow(t *testing.T) {
	ti := openImage(t, testimage.BookwormNginx)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, true)
	h.start()
	ctx := t.Context()
	orig := h.push(img, "quarantine/nginx:1.27.1")

	dry, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.DryRun.Images) != 1 || dry.DryRun.Images[0].Action != workflow.ActionPatch || dry.DryRun.Images[0].Tag != "nginx:1.27.1-1" {
		t.Fatalf("dry run: %+v", dry.DryRun)
	}
	if ws, _ := h.store.Workflows(ctx); len(ws) != 0 {
		t.Fatalf("a dry run stored a workflow")
	}
	if tags := h.tags("quarantine/nginx"); !slices.Equal(tags, []string{"1.27.1"}) {
		t.Fatalf("a dry run wrote tags: %v", tags)
	}

	res, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	t.Logf("log:\n%s", h.log(r.ID))
	if r.State != workflow.StateSucceeded || len(r.Tasks) != 3 {
		t.Fatalf("run %s: %d tasks\n%+v", r.State, len(r.Tasks), r.Tasks)
	}
	p := r.ImageTask(workflow.TaskPatch, "nginx:1.27.1")
	if p == nil || p.State != workflow.StateSucceeded || !p.Patch.TagWritten || p.Patch.Tag != "1.27.1-1" || p.Patch.SourceDigest != orig {
		t.Fatalf("patch task: %+v %+v", p, p.Patch)
	}
	if got := h.digest("quarantine/nginx", "1.27.1-1"); got != p.Patch.Digest {
		t.Errorf("quarantine/nginx:1.27.1-1 is %q, the ledger says %s", got, p.Patch.Digest)
	}
	if p.Patch.FixableAfter.Total() != 0 || len(p.Patch.Packages) == 0 {
		t.Errorf("fixable before %v after %v, %d packages", p.Patch.FixableBefore, p.Patch.FixableAfter, len(p.Patch.Packages))
	}

	// Nothing new: the second run decides on 1.27.1-1 and writes no -2.
	r2, err := h.eng.RunNow(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	r2 = h.waitRun(r2.ID, 10*time.Minute)
	s := r2.ImageTask(workflow.TaskScan, "nginx:1.27.1")
	if r2.State != workflow.StateSucceeded || s.Scan.Patch || s.Scan.Target != "quarantine/nginx:1.27.1-1" || r2.ImageTask(workflow.TaskPatch, "nginx:1.27.1") != nil {
		t.Fatalf("second run: %s, scan %+v\n%s", r2.State, s.Scan, h.log(r2.ID))
	}
	if s.Scan.Fixable.Total() != 0 || len(s.Scan.SecurityUpdates) != 0 {
		t.Errorf("1.27.1-1 has %v fixable and %d pending security updates", s.Scan.Fixable, len(s.Scan.SecurityUpdates))
	}
	if tags := h.tags("quarantine/nginx"); !slices.Equal(tags, []string{"1.27.1", "1.27.1-1"}) {
		t.Errorf("tags after the second run: %v", tags)
	}
}
