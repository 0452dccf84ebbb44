package workflow_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/workflow"
)

// countingRegistry counts the engine's blob reads from the registry.
type countingRegistry struct {
	workflow.Registry
	mu   sync.Mutex
	gets map[string]int       // blob digest -> GET requests
	last map[string]time.Time // blob digest -> time of the last GET
}

func (c *countingRegistry) Transport() http.RoundTripper {
	return countingTransport{c: c, next: c.Registry.Transport()}
}

type countingTransport struct {
	c    *countingRegistry
	next http.RoundTripper
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, d, ok := strings.Cut(req.URL.Path, "/blobs/"); ok && req.Method == http.MethodGet {
		t.c.mu.Lock()
		t.c.gets[d]++
		if t.c.last != nil {
			t.c.last[d] = time.Now()
		}
		t.c.mu.Unlock()
	}
	return t.next.RoundTrip(req)
}

// TestRunReadsLayersOnce: a run that scans an image, plans its security
// updates, patches it and scans the patch reads each layer of the image
// from the registry once (the trigger's read; the plan, the patch and the
// patch's scan replay it from the patcher's layer cache), and leaves the
// inventories of the original and of the patch in the inventory cache the
// gate shares, so that the gate's scan of the written patch reads no
// layer. The ledger has each phase's time.
func TestRunReadsLayersOnce(t *testing.T) {
	img, err := openImage(t, testimage.DistrolessBookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := scan.NewFileCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var reg *countingRegistry
	cold := t.TempDir()
	h := newHarness(t, true, withMirror(t), func(o *workflow.Options) {
		reg = &countingRegistry{Registry: o.Registry, gets: map[string]int{}}
		o.Registry, o.InventoryCache = reg, inv
		p := o.Patcher.(*workflow.LibraryPatcher)
		p.Options = append(p.Options, patch.WithCacheDir(cold))
	})
	h.start()
	h.push(img, "quarantine/app:1.0")
	res, err := h.eng.Create(t.Context(), workflow.CreateRequest{Config: config("incremental", "app", "1.0"), Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	p := task(t, r, workflow.TaskPatch, "app:1.0")
	if p.State != workflow.StateSucceeded || !p.Patch.TagWritten {
		t.Fatalf("patch: %s %+v\n%s", p.State, p.Patch, h.log(r.ID))
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	reg.mu.Lock()
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if n := reg.gets[d.String()]; n != 1 {
			t.Errorf("layer %s read %d times from the registry, want once", d, n)
		}
	}
	reg.mu.Unlock()
	if !strings.Contains(h.log(r.ID), "reading the inventories of 1 platform images") {
		t.Errorf("the trigger task did not read the inventory ahead:\n%s", h.log(r.ID))
	}
	// The gate's scanner (its own analyzers, the shared cache) finds the
	// patch's inventory: it reads no layer of it.
	ref, err := name.NewDigest("drydock.internal/"+p.Patch.Repository+"@"+p.Patch.Digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := remote.Image(ref, remote.WithTransport(h.reg.Transport()), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(h.opts.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gs, err := scan.New(db, scan.WithInventoryCache(inv))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := gs.Image(t.Context(), patched)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.InventoryCached {
		t.Error("the gate's scan of the written patch read its layers: the engine left no inventory for it")
	}
	s := task(t, r, workflow.TaskScan, "app:1.0")
	for _, ph := range []string{"read", "scan", "plan"} {
		if _, ok := s.Scan.Seconds[ph]; !ok {
			t.Errorf("the scan task has no %s phase: %v", ph, s.Scan.Seconds)
		}
	}
	for _, ph := range []string{"patch", "patch/read", "patch/index", "patch/resolve", "rescan", "write"} {
		if _, ok := p.Patch.Seconds[ph]; !ok {
			t.Errorf("the patch task has no %s phase: %v", ph, p.Patch.Seconds)
		}
	}
}

// TestRunReadsGateScannedLayersAhead: when the gate has scanned the image
// (its inventory is in the shared cache), the trigger task still reads
// the layers, several images at a time, into the patcher's layer cache:
// the scan task's plan and the patch replay them. Every layer is read
// once, and before the scan task starts.
func TestRunReadsGateScannedLayersAhead(t *testing.T) {
	img, err := openImage(t, testimage.DistrolessBookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := scan.NewFileCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var reg *countingRegistry
	h := newHarness(t, true, withMirror(t), func(o *workflow.Options) {
		reg = &countingRegistry{Registry: o.Registry, gets: map[string]int{}, last: map[string]time.Time{}}
		o.Registry, o.InventoryCache, o.Clock = reg, inv, workflow.SystemClock{} // task times to compare with the reads'
		p := o.Patcher.(*workflow.LibraryPatcher)
		p.Options = append(p.Options, patch.WithCacheDir(t.TempDir()))
	})
	// The gate's scan at import: its own analyzers, the shared cache.
	db, err := vulndb.Open(h.opts.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := scan.New(db, scan.WithInventoryCache(inv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Image(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	db.Close()
	h.start()
	h.push(img, "quarantine/app:1.0")
	res, err := h.eng.Create(t.Context(), workflow.CreateRequest{Config: config("incremental", "app", "1.0"), Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	s := task(t, r, workflow.TaskScan, "app:1.0")
	if p := task(t, r, workflow.TaskPatch, "app:1.0"); p.State != workflow.StateSucceeded || !p.Patch.TagWritten {
		t.Fatalf("patch: %s %+v\n%s", p.State, p.Patch, h.log(r.ID))
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if n := reg.gets[d.String()]; n != 1 {
			t.Errorf("layer %s read %d times from the registry, want once", d, n)
		}
		if at := reg.last[d.String()]; !at.Before(s.StartedAt) {
			t.Errorf("layer %s was read at %s, after the scan task started (%s): the plan read it", d, at, s.StartedAt)
		}
	}
}
