package workflow_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

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
		p.HostKeyring = apt.DebianArchiveKeyring
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
	signed := &signRecorder{}
	h := newHarness(t, true, withMirror(t), signed.option)
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
	signed.check(t, p1, "quarantine/app", "1.27.1-4")

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

// alpineImage is an Alpine-shaped image (os-release and apk database):
// the scanner knows Alpine, the patcher does not.
func alpineImage(t *testing.T) v1.Image {
	t.Helper()
	layer, err := crane.Layer(map[string][]byte{
		"etc/os-release":       []byte("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n"),
		"etc/alpine-release":   []byte("3.20.3\n"),
		"lib/apk/db/installed": []byte("P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\nP:libssl3\nV:3.3.2-r0\nA:x86_64\no:openssl\n\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return platformImage(t, layer)
}

// scratchImage holds one static file and no operating system.
func scratchImage(t *testing.T) v1.Image {
	t.Helper()
	layer, err := crane.Layer(map[string][]byte{"app": []byte("\x7fELF static binary")})
	if err != nil {
		t.Fatal(err)
	}
	return platformImage(t, layer)
}

func platformImage(t *testing.T, layer v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: mustDiffIDs(t, img)}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDiffIDs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

// TestRunIndexEOLUnsupported: the two-platform distroless index (arm64
// patched on amd64) is patched as one index; bullseye is skipped as end
// of life with the date its support ended; an OS the patcher does not
// know and an image without an OS are skipped with that reason; none of
// these fail the run. The dry run says the same, and writes nothing.
func TestRunIndexEOLUnsupported(t *testing.T) {
	x := testimage.RequireIndex(t, testimage.MultiArchDistroless, testimage.MultiArchDistrolessSpecs)
	idx, err := x.Open()
	if err != nil {
		t.Fatal(err)
	}
	bullseye, err := openImage(t, testimage.BullseyeNginxCurl).Open()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, true, withMirror(t))
	h.start()
	ctx := t.Context()
	base := h.push(idx, "quarantine/base:12")
	h.push(bullseye, "quarantine/old:11")
	h.push(alpineImage(t), "quarantine/tiny:3.20")
	h.push(scratchImage(t), "quarantine/static:1")
	cfg := `{"version":"v1","repositories":[{"repository":"base","tags":["12"]},{"repository":"old","tags":["11"]},` +
		`{"repository":"tiny","tags":["3.20"]},{"repository":"static","tags":["1"]},{"repository":"gone","tags":["1"]}]}`

	dry, err := h.eng.Create(ctx, workflow.CreateRequest{Config: cfg, Schedule: "1d", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]workflow.DryRunImage{}
	for _, im := range dry.DryRun.Images {
		got[im.Image] = im
	}
	for image, want := range map[string][2]string{
		"base:12":   {workflow.ActionPatch, "updates pending from the security suite"},
		"old:11":    {workflow.ActionSkip, "end of life: public security support for debian 11"},
		"tiny:3.20": {workflow.ActionSkip, "unsupported OS"},
		"static:1":  {workflow.ActionSkip, "unsupported OS"},
		"gone:1":    {workflow.ActionSkip, "tag not found"},
	} {
		if im := got[image]; im.Action != want[0] || !strings.Contains(im.Reason, want[1]) {
			t.Errorf("dry run of %s: %s %q, want %s %q", image, im.Action, im.Reason, want[0], want[1])
		}
	}
	if got["base:12"].Tag != "base:12-1" || !strings.Contains(got["old:11"].Reason, "2026-08-31") {
		t.Errorf("dry run: tag %q, bullseye reason %q", got["base:12"].Tag, got["old:11"].Reason)
	}
	if tags := h.tags("quarantine/base"); !slices.Equal(tags, []string{"12"}) {
		t.Errorf("the dry run wrote %v", tags)
	}

	res, err := h.eng.Create(ctx, workflow.CreateRequest{Config: cfg, Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	t.Logf("log:\n%s", h.log(r.ID))
	if r.State != workflow.StateSucceeded {
		t.Errorf("run %s: %s", r.State, r.Error)
	}
	if tr := task(t, r, workflow.TaskTrigger, ""); !slices.Equal(tr.Trigger.NotFound, []string{"gone:1"}) {
		t.Errorf("not found: %v", tr.Trigger.NotFound)
	}
	p := task(t, r, workflow.TaskPatch, "base:12")
	if p.State != workflow.StateSucceeded || p.Patch.Tag != "12-1" || len(p.Patch.Platforms) != 2 {
		t.Fatalf("patch of the index: %s %+v", p.State, p.Patch)
	}
	out, err := h.reg.Resolve(ctx, "quarantine/base", "12-1")
	if err != nil || !types.MediaType(out.MediaType).IsIndex() {
		t.Fatalf("quarantine/base:12-1 is %v (%v), want an index", out.MediaType, err)
	}
	h.checkIndexPatched(base, out.Digest.String())
	for image, want := range map[string]string{
		"old:11":    "ended on 2026-08-31",
		"tiny:3.20": "unsupported OS",
		"static:1":  "unsupported OS",
	} {
		s := task(t, r, workflow.TaskScan, image)
		if s.State != workflow.StateSucceeded || s.Scan.Patch || !strings.Contains(s.Scan.SkipReason, want) || r.ImageTask(workflow.TaskPatch, image) != nil {
			t.Errorf("%s: %s patch=%v %q, want skipped: %q", image, s.State, s.Scan.Patch, s.Scan.SkipReason, want)
		}
	}
	if s := task(t, r, workflow.TaskScan, "old:11"); s.Scan.Fixable.Total() == 0 {
		t.Errorf("bullseye is skipped for its end of life, though it has fixable findings: %v", s.Scan.Fixable)
	}
}

// checkIndexPatched checks that the patched index has the original's
// platforms, each a new image whose base is the original platform image.
func (h *harness) checkIndexPatched(orig, patched string) {
	h.t.Helper()
	read := func(d string) *v1.IndexManifest {
		art, err := remote.Index(h.ref("quarantine/base@"+d), remote.WithTransport(h.reg.Transport()))
		if err != nil {
			h.t.Fatal(err)
		}
		m, err := art.IndexManifest()
		if err != nil {
			h.t.Fatal(err)
		}
		return m
	}
	om, pm := read(orig), read(patched)
	if len(om.Manifests) != 2 || len(pm.Manifests) != 2 {
		h.t.Fatalf("platforms: %d -> %d", len(om.Manifests), len(pm.Manifests))
	}
	for i := range om.Manifests {
		o, p := om.Manifests[i], pm.Manifests[i]
		if o.Platform.String() != p.Platform.String() || o.Digest == p.Digest {
			h.t.Errorf("platform %s (%s) -> %s (%s): want the same platform, patched", o.Platform, o.Digest, p.Platform, p.Digest)
		}
		img, err := remote.Image(h.ref("quarantine/base@"+p.Digest.String()), remote.WithTransport(h.reg.Transport()))
		if err != nil {
			h.t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			h.t.Fatal(err)
		}
		if m.Annotations["org.opencontainers.image.base.digest"] != o.Digest.String() {
			h.t.Errorf("%s: base digest annotation %q, want %s", p.Platform, m.Annotations["org.opencontainers.image.base.digest"], o.Digest)
		}
	}
}
