package workflow

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/scan"
)

// Reading an image's layers (decompressing and hashing them) is what a
// scan costs when the gate has not scanned the image before. The engine
// reads each platform image once per process at a time, through the
// patcher (patch.Inspect: the patch then replays the layers from its
// layer cache instead of reading them again), and stores the inventory
// in the cache the gate shares; the trigger task reads a run's images
// concurrently before their jobs scan and patch them one by one.

// readCost is an estimate of what one layer read holds in memory
// (decompression windows, the tar index and its record, the kept files:
// the package database, the apt sources) for the test images; the memory
// budget divided by it bounds the reads that run at once. bench-workflow
// samples the run's RSS and names the tasks at its peak.
const readCost = 48 << 20

// readBudget is the memory the engine's concurrent reads may take beside
// a patch (the server's whole budget is 300 MB).
const readBudget = 96 << 20

// maxReads is how many layer reads run at once: one per CPU, within the
// memory budget.
func maxReads() int {
	return max(1, min(runtime.GOMAXPROCS(0), readBudget/readCost))
}

// readSlot waits until no other read of key runs in this process and a
// read slot is free, and returns the function that gives both back. A
// second scan of an image waits for the first and then finds its
// inventory in the cache.
func (e *Engine) readSlot(ctx context.Context, key string) (func(), error) {
	var ch chan struct{}
	for ch == nil {
		e.mu.Lock()
		other, busy := e.reads[key]
		if !busy {
			ch = make(chan struct{})
			e.reads[key] = ch
		}
		e.mu.Unlock()
		if busy {
			select {
			case <-other:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	done := func() {
		e.mu.Lock()
		delete(e.reads, key)
		close(ch)
		e.mu.Unlock()
	}
	select {
	case e.readSem <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	return func() { <-e.readSem; done() }, nil
}

// scanImage scans one platform image: from the inventory cache when the
// gate (or an earlier run) has read it, else reading its layers through
// the patcher. With layers, an image whose inventory came from the cache
// is read through the patcher all the same (the patcher's layer cache
// replays an image it has read): its plan or patch will read the layers,
// and the trigger's reads run several at a time, the plans one by one. An
// image skipped before its plan (end of life, unsupported) is not read.
func (v *env) scanImage(ctx context.Context, img v1.Image, layers bool) (*scan.Report, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading the image manifest: %w", err)
	}
	release, err := v.e.readSlot(ctx, d.String())
	if err != nil {
		return nil, err
	}
	defer release()
	read := false
	rep, err := v.scanner.ImageVia(ctx, img, func(ctx context.Context) (*scan.Snapshot, error) {
		read = true
		return v.e.o.Patcher.Inspect(ctx, img)
	})
	if err == nil && layers && !read && rep.Status != scan.StatusEndOfLife && rep.Status != scan.StatusUnsupported {
		// A cache warm: a failure is the plan's to report.
		_, _ = v.e.o.Patcher.Inspect(ctx, img)
	}
	return rep, err
}

// readAhead reads the inventories of the images the run's scan tasks
// will scan (each match's target, and the original a patch is built
// from), a few at a time, into the inventory cache: part of the trigger
// task. It is a cache warm: an image it cannot read is left to its scan
// task, which reports why. Without an inventory cache there is nothing
// to keep, and nothing is read. With layers (the run plans the security
// suite's updates), images the gate has scanned are read too, into the
// patcher's layer cache (see scanImage).
func (e *Engine) readAhead(ctx context.Context, runID, taskID string, matches []Match, layers bool) {
	if e.o.InventoryCache == nil {
		return
	}
	var refs [][2]string
	for _, m := range matches {
		repo, tag := m.Target()
		for _, ref := range [][2]string{{repo, tag}, {m.Source, m.Tag}} {
			if ref[1] != "" && !slices.Contains(refs, ref) {
				refs = append(refs, ref)
			}
		}
	}
	if len(refs) == 0 {
		return
	}
	start := time.Now()
	env, err := e.openEnv(ctx, e.o.HTTPClient, nil)
	if err != nil {
		return // the scan tasks say why
	}
	defer env.Close()
	var imgs []v1.Image
	seen := map[string]bool{}
	for _, ref := range refs {
		a, err := e.read(ctx, ref[0], ref[1])
		if err != nil {
			continue
		}
		ps, err := platforms(a)
		if err != nil {
			continue
		}
		for _, img := range ps {
			if d, err := img.Digest(); err == nil && !seen[d.String()] {
				seen[d.String()] = true
				imgs = append(imgs, img)
			}
		}
	}
	n := maxReads()
	e.logf(ctx, runID, taskID, "reading the inventories of %d platform images, %d at a time", len(imgs), n)
	work := make(chan v1.Image)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range n {
		wg.Go(func() {
			for img := range work {
				if _, err := env.scanImage(ctx, img, layers); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	for _, img := range imgs {
		select {
		case work <- img:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	msg := fmt.Sprintf("read the inventories in %s", time.Since(start).Round(10*time.Millisecond))
	if failed > 0 {
		msg += fmt.Sprintf(" (%d could not be read: their scan tasks say why)", failed)
	}
	e.logf(ctx, runID, taskID, "%s", msg)
}
