package workflow_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

// withMirror points the patcher at the machine's mirror and trusts the
// host's Debian keyring: distroless images have no apt sources.
func withMirror(t *testing.T) harnessOption {
	t.Helper()
	m, err := testimage.Mirror()
	if err != nil {
		if testimage.InCI() {
			t.Fatalf("no Debian mirror: %v", err)
		}
		t.Skipf("no Debian mirror: %v", err)
	}
	return func(o *workflow.Options) {
		p := o.Patcher.(*workflow.LibraryPatcher)
		p.Mirror, p.SecurityMirror = m.URI, m.SecurityURI
		p.Apt = append(p.Apt, apt.WithHostKeyring(apt.DebianArchiveKeyring))
	}
}

func (h *harness) runNow(name string) *workflow.Run {
	h.t.Helper()
	r, err := h.eng.RunNow(h.t.Context(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func task(t *testing.T, r *workflow.Run, kind workflow.TaskKind, image string) *workflow.Task {
	t.Helper()
	tk := r.ImageTask(kind, image)
	if tk == nil {
		t.Fatalf("run %s has no %s task for %s: %+v", r.ID, kind, image, r.Tasks)
	}
	return tk
}

// TestRunTagsFloatingAndLocks runs the real scanner and patcher on the
// distroless bookworm image under many tags:
//   - a wildcard patches only the originals: 1.27.1 and 2.0 (one digest,
//     patched once), never alpine-3 or x-patched; the decision is taken
//     on the latest patch 1.27.1-3 and the patch is built from 1.27.1
//     into 1.27.1-4; 2.0's latest patch is 2.0-999, so 2.0 fails alone;
//   - the floating convention moves 1.27.1-patched from a stale patch to
//     the new one (the same digest as 1.27.1-4: the patch is
//     reproducible), and the next run writes nothing;
//   - two runs at once never work on one image together: the second
//     waits for the first and decides on its result.
func TestRunTagsFloatingAndLocks(t *testing.T) {
	img, err := openImage(t, testimage.DistrolessBookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, true, withMirror(t))
	h.start()
	ctx := t.Context()
	orig := ""
	for _, tag := range []string{"1.27.1", "1.27.1-1", "1.27.1-3", "x-patched", "alpine-3", "2.0", "2.0-999"} {
		orig = h.push(img, "quarantine/app:"+tag)
	}
	res, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "app", "*"), Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range res.Selection.Matches {
		next := m.Next
		if m.NextErr != "" {
			next = "none"
		}
		rows = append(rows, m.Image()+" "+m.Latest+" "+next)
	}
	if !slices.Equal(rows, []string{"app:1.27.1 1.27.1-3 1.27.1-4", "app:2.0 2.0-999 none"}) {
		t.Errorf("selection %q", rows)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	t.Logf("run 1:\n%s", h.log(r.ID))
	if r.State != workflow.StateFailed || !strings.Contains(r.Error, "1 task(s) failed") {
		t.Errorf("run 1: %s %q, want failed by one task (2.0)", r.State, r.Error)
	}
	p1 := task(t, r, workflow.TaskPatch, "app:1.27.1")
	p2 := task(t, r, workflow.TaskPatch, "app:2.0")
	if s := task(t, r, workflow.TaskScan, "app:1.27.1"); s.Scan.Target != "quarantine/app:1.27.1-3" || !s.Scan.Patch {
		t.Errorf("scan of 1.27.1: %+v", s.Scan)
	}
	if p1.State != workflow.StateSucceeded || p1.Patch.Tag != "1.27.1-4" || p1.Patch.SourceDigest != orig || h.digest("quarantine/app", "1.27.1-4") != p1.Patch.Digest {
		t.Fatalf("patch of 1.27.1: %s %+v", p1.State, p1.Patch)
	}
	if p2.State != workflow.StateFailed || !strings.Contains(p2.Error, "2.0-999 is the last incremental patch tag") {
		t.Errorf("patch of 2.0: %s %q", p2.State, p2.Error)
	}
	if n := strings.Count(h.log(r.ID), "patching the original"); n != 1 {
		t.Errorf("one digest under two tags patched %d times", n)
	}
	if tags := h.tags("quarantine/app"); !slices.Equal(tags, []string{"1.27.1", "1.27.1-1", "1.27.1-3", "1.27.1-4", "2.0", "2.0-999", "alpine-3", "x-patched"}) {
		t.Errorf("tags after run 1: %v", tags)
	}
	patched := p1.Patch.Digest

	// Floating: a stale 1.27.1-patched (the unpatched image) moves to the
	// patch; the same inputs give the same digest as 1.27.1-4.
	h.push(img, "quarantine/app:1.27.1-patched")
	cfg := config("floating", "app", "1.27.1")
	if _, err := h.eng.Update(ctx, workflow.UpdateRequest{Config: &cfg}); err != nil {
		t.Fatal(err)
	}
	r = h.waitRun(h.runNow("").ID, 10*time.Minute)
	if p := task(t, r, workflow.TaskPatch, "app:1.27.1"); p.State != workflow.StateSucceeded || p.Patch.Tag != "1.27.1-patched" || p.Patch.Digest != patched {
		t.Fatalf("floating run: %s %+v\n%s", p.State, p.Patch, h.log(r.ID))
	}
	if got := h.digest("quarantine/app", "1.27.1-patched"); got != patched {
		t.Errorf("1.27.1-patched is %s, want %s", got, patched)
	}

	// Two runs at once: the second waits for the image and decides on
	// what the first wrote.
	h.push(img, "quarantine/app:1.27.1-patched")
	a, b := h.runNow(""), h.runNow("")
	a, b = h.waitRun(a.ID, 10*time.Minute), h.waitRun(b.ID, 10*time.Minute)
	winner, loser := a, b
	if a.ImageTask(workflow.TaskPatch, "app:1.27.1") == nil {
		winner, loser = b, a
	}
	if p := task(t, winner, workflow.TaskPatch, "app:1.27.1"); p.State != workflow.StateSucceeded || !p.Patch.TagWritten {
		t.Fatalf("the first run's patch: %s %+v", p.State, p.Patch)
	}
	ls := task(t, loser, workflow.TaskScan, "app:1.27.1")
	if ls.Scan.Digest != patched || ls.Scan.Patch || loser.ImageTask(workflow.TaskPatch, "app:1.27.1") != nil {
		t.Errorf("the second run decided on %s (patch %v), want the first run's patch %s\n%s", ls.Scan.Digest, ls.Scan.Patch, patched, h.log(loser.ID))
	}
	if !strings.Contains(h.log(loser.ID), "is being patched by run "+winner.ID) {
		t.Errorf("the second run did not wait for the first:\n%s", h.log(loser.ID))
	}
}
