package workflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/workflow"
)

// TestImageStatuses is ACR's list (the reference's section 5 and cases
// 20-21) read from the ledger: the newest scan of each image within the
// schedule's window, overall status from the patch task when there is
// one, "skipped" for a scan without a patch (and included in
// "succeeded"), the reasons from the tasks, the last patched image.
func TestImageStatuses(t *testing.T) {
	h := newHarness(t, false)
	ctx := t.Context()
	t0 := mustTime(t, "2026-12-06 14:00")
	h.clock.Set(t0.Add(-10 * 24 * time.Hour))
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "a", "1"), Schedule: "7d"}); err != nil {
		t.Fatal(err)
	}
	scan := func(id, image string, st workflow.State, patch bool, latest, skip, errText string) workflow.Task {
		return workflow.Task{ID: id, Kind: workflow.TaskScan, Image: image, State: st, CreatedAt: t0, StartedAt: t0, Error: errText,
			Scan: &workflow.ScanResult{Match: workflow.Match{Latest: latest}, Patch: patch, SkipReason: skip, Fixable: workflow.Counts{"HIGH": 1}}}
	}
	patch := func(id, image string, st workflow.State, tag, errText string) workflow.Task {
		return workflow.Task{ID: id, Kind: workflow.TaskPatch, Image: image, State: st, CreatedAt: t0, StartedAt: t0, Error: errText,
			Patch: &workflow.PatchResult{Repository: "quarantine/" + image[:1], Tag: tag, TagWritten: tag != "", Digest: "sha256:1"}}
	}
	seed := func(id string, at time.Time, tasks ...workflow.Task) {
		if err := h.store.CreateRun(ctx, &workflow.Run{ID: id, Workflow: "default", State: workflow.StateSucceeded, CreatedAt: at,
			Trigger: workflow.Trigger{Kind: workflow.TriggerSchedule}, Tasks: tasks}); err != nil {
			t.Fatal(err)
		}
	}
	// Outside the 7-day window: ignored.
	seed("r00000001", t0.Add(-8*24*time.Hour), scan("r00000001-s1", "e:1", workflow.StateSucceeded, false, "", "old", ""))
	// An older run, whose rows a newer scan replaces.
	seed("r00000002", t0.Add(-2*24*time.Hour),
		scan("r00000002-s1", "a:1", workflow.StateFailed, false, "", "", "scanning: registry unreachable"))
	seed("r00000003", t0.Add(-time.Hour),
		scan("r00000003-s1", "a:1", workflow.StateSucceeded, true, "1-1", "", ""),
		patch("r00000003-p1", "a:1", workflow.StateSucceeded, "1-2", ""),
		scan("r00000003-s2", "b:1", workflow.StateSucceeded, false, "1-4", "no fixable vulnerability found", ""),
		scan("r00000003-s3", "c:1", workflow.StateSucceeded, true, "", "", ""),
		patch("r00000003-p3", "c:1", workflow.StateFailed, "", "unsupported osType azurelinux"),
		scan("r00000003-s4", "d:1", workflow.StateFailed, false, "", "", "scan timed out"),
		scan("r00000003-s5", "f:1", workflow.StateSucceeded, false, "", "end of life: ended on 2026-08-31", ""),
	)
	h.clock.Set(t0)
	list := func(status workflow.State, image string) map[string]workflow.ImageStatus {
		t.Helper()
		l, err := h.eng.ImageStatuses(ctx, workflow.StatusRequest{Status: status, Image: image})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]workflow.ImageStatus{}
		for _, s := range l.Images {
			out[s.Image] = s
		}
		return out
	}
	all := list("", "")
	if len(all) != 5 {
		t.Fatalf("%d images, want a, b, c, d and f: %+v", len(all), all)
	}
	want := map[string]struct {
		scan, patch        workflow.State
		scanTask, patchTsk string
		last, reason       string
	}{
		"a:1": {workflow.StateSucceeded, workflow.StateSucceeded, "r00000003-s1", "r00000003-p1", "a:1-2", ""},
		"b:1": {workflow.StateSucceeded, workflow.StateSkipped, "r00000003-s2", "", "b:1-4", "no fixable vulnerability found"},
		"c:1": {workflow.StateSucceeded, workflow.StateFailed, "r00000003-s3", "r00000003-p3", workflow.NoPatchImage, "unsupported osType azurelinux"},
		"d:1": {workflow.StateFailed, "", "r00000003-s4", "", workflow.NoPatchImage, "scan timed out"},
		"f:1": {workflow.StateSucceeded, workflow.StateSkipped, "r00000003-s5", "", workflow.NoPatchImage, "end of life: ended on 2026-08-31"},
	}
	for image, w := range want {
		s := all[image]
		reason := s.PatchSkipReason + s.PatchErrorReason + s.ScanErrorReason
		if s.ScanStatus != w.scan || s.PatchStatus != w.patch || s.ScanTask != w.scanTask || s.PatchTask != w.patchTsk || s.LastPatchedImage != w.last || reason != w.reason || s.WorkflowType != "continuouspatchv1" {
			t.Errorf("%s: %+v\nwant %+v", image, s, w)
		}
	}
	for _, tc := range []struct {
		status workflow.State
		want   []string
	}{
		{workflow.StateSkipped, []string{"b:1", "f:1"}},
		{workflow.StateSucceeded, []string{"a:1", "b:1", "f:1"}}, // case 20: skipped counts as succeeded
		{workflow.StateFailed, []string{"c:1", "d:1"}},
		{workflow.StateRunning, nil},
	} {
		var got []string
		for im := range list(tc.status, "") {
			got = append(got, im)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("--status %s: %v, want %v", tc.status, got, tc.want)
		}
	}
	if got := list("", "quarantine/b:1"); len(got) != 1 || got["b:1"].Image != "b:1" {
		t.Errorf("--image quarantine/b:1: %+v", got)
	}
	if _, err := h.eng.ImageStatuses(ctx, workflow.StatusRequest{Image: "b"}); !errorsIs(err, workflow.ErrInvalid) {
		t.Errorf("--image without a tag: %v", err)
	}
}
