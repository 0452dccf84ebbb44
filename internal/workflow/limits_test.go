package workflow_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestWorkflowRefusesOverTheGateLimits: the engine, its patcher and a
// real gate share one set of limits (as the server wires them from
// gate.limits), a findings limit below the image's findings (the
// patcher's reads check the packages, the scanner the findings). The gate refuses the
// pushed image over the limit; the workflow's scan of it fails with the
// same refusal, and nothing is patched.
func TestWorkflowRefusesOverTheGateLimits(t *testing.T) {
	img, err := openImage(t, testimage.DistrolessBookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	limits := scan.Limits{MaxFindings: 1}
	opts := []scan.Option{scan.WithLimits(limits)}
	var keeper *gatekeeper.Keeper
	parts := harnessParts{registry: []registry.Option{registry.WithManifestListener(registry.ManifestListenerFunc(
		func(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
			return keeper.ManifestPushed(ctx, repo, tag, desc)
		}))}}
	h := newHarnessWith(t, true, 2, parts, func(o *workflow.Options) {
		o.ScanOptions = opts
		o.Patcher.(*workflow.LibraryPatcher).Options = []patch.Option{patch.WithLimits(limits)}
	})
	st, err := store.Open(t.Context(), h.dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	al, closeAudit, err := audit.Open(t.Context(), h.dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAudit() })
	if keeper, err = gatekeeper.New(gatekeeper.Options{Registry: h.reg, Store: st, Queue: h.queue, Audit: al,
		DBPath: h.opts.DBPath, Now: h.clock.Now, ScanOptions: opts}); err != nil {
		t.Fatal(err)
	}
	h.start()
	d := h.push(img, "quarantine/app:1.0")

	// The gate's verdict on the pushed image.
	var refused string
	for deadline := time.Now().Add(5 * time.Minute); refused == ""; {
		im, err := st.Image(t.Context(), d)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err == nil && im.Verdict.State != gate.StatePending {
			for _, r := range im.Verdict.Reasons {
				refused += r.Message
			}
			if im.Verdict.State != gate.StateFail || !strings.Contains(refused, "over the findings limit") {
				t.Fatalf("the gate's verdict: %+v", im.Verdict)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gate has not scanned the image in 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}

	res, err := h.eng.Create(t.Context(), workflow.CreateRequest{Config: config("incremental", "app", "1.0"), Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 5*time.Minute)
	s := task(t, r, workflow.TaskScan, "app:1.0")
	_, why, _ := strings.Cut(refused, "over-limit image: ")
	if s.State != workflow.StateFailed || !strings.HasSuffix(s.Error, "over-limit image: "+why) {
		t.Errorf("the workflow's scan: %s %q; the gate refused with %q\n%s", s.State, s.Error, refused, h.log(r.ID))
	}
	if p := r.ImageTask(workflow.TaskPatch, "app:1.0"); p != nil {
		t.Errorf("an image the gate refuses was patched: %+v", p)
	}
	if tags := h.tags("quarantine/app"); len(tags) != 1 {
		t.Errorf("tags: %v", tags)
	}
}
