package registry

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// paceSlice is how long a paced collection works before it rests: short
// enough that a request arriving during a slice waits little for the
// machine, long enough that the pacing costs nothing measurable.
const paceSlice = 20 * time.Millisecond

// pacer makes a collection alternate slices of work with rests, so that it
// works at most share of the wall time and leaves the rest of the machine
// (its cores, its disk) to the registry's requests. A slice is measured in
// wall time, so on a loaded machine, where the same work takes longer,
// the rests grow with it.
//
// Pacing decides nothing about what is deleted, only how fast: it reads
// the system clock, not the registry's.
type pacer struct {
	share float64 // 1: never rests
	steps atomic.Int64
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu        sync.Mutex
	workStart time.Time // the current slice's start (zero: none yet)
	restUntil time.Time
}

// yieldEvery is how many units of work the collection does between two
// yields of the processor.
const yieldEvery = 64

// newPacer returns a pacer for share (0 < share < 1; 0 or 1: no rests).
func newPacer(share float64) *pacer {
	if share <= 0 || share >= 1 {
		share = 1
	}
	return &pacer{share: share, now: time.Now, sleep: sleepCtx}
}

// sleepCtx waits for d, or returns the context's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// step is called before each unit of the collection's work (a listing, a
// stat, a read, a deletion); it returns when the collection may work, or
// the context's error.
func (p *pacer) step(ctx context.Context) error {
	// Now and then, let the requests' goroutines run: the collection's
	// goroutines rarely block (a stat of a cached file is a short system
	// call), and Go lets a goroutine that does not block run for up to
	// 10 ms while others wait for a processor; every hop of a request
	// (the accept, the handler after each disk sync, the response) waited
	// behind them. Not at every unit: on a loaded machine each yield can
	// cost a full turn of every runnable goroutine (yielding at every unit
	// made a collection over 100,000 blobs 70 times longer).
	if p.steps.Add(1)%yieldEvery == 0 {
		runtime.Gosched()
	}
	if p.share >= 1 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := p.now()
	var wait time.Duration
	switch {
	case now.Before(p.restUntil):
		wait = p.restUntil.Sub(now)
	case p.workStart.IsZero():
		p.workStart = now
	case now.Sub(p.workStart) >= paceSlice:
		worked := now.Sub(p.workStart)
		wait = time.Duration(float64(worked) * (1 - p.share) / p.share)
		p.restUntil = now.Add(wait)
		p.workStart = p.restUntil
	}
	p.mu.Unlock()
	if wait <= 0 {
		return ctx.Err()
	}
	return p.sleep(ctx, wait)
}

// inflight counts the registry's writes in progress (write requests and
// library writes through a guard), for a collection's sweep to yield to,
// and records that storage changed, for Writeback.
type inflight struct {
	n    atomic.Int64
	mu   sync.Mutex
	idle chan struct{} // closed when n drops to 0; nil when nobody waits
	// changed is set when a write ends or anything is deleted, and
	// cleared by Writeback when it syncs.
	changed atomic.Bool
}

func (w *inflight) begin() { w.n.Add(1) }

func (w *inflight) end() {
	w.changed.Store(true)
	if w.n.Add(-1) != 0 {
		return
	}
	w.mu.Lock()
	if w.idle != nil {
		close(w.idle)
		w.idle = nil
	}
	w.mu.Unlock()
}

// waitIdle returns when no write is in progress, at deadline, or with the
// context's error.
func (w *inflight) waitIdle(ctx context.Context, deadline time.Time) error {
	w.mu.Lock()
	if w.n.Load() == 0 {
		w.mu.Unlock()
		return ctx.Err()
	}
	if w.idle == nil {
		w.idle = make(chan struct{})
	}
	idle := w.idle
	w.mu.Unlock()
	d := time.Until(deadline)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-idle:
	case <-t.C:
	}
	return nil
}

// meteredGuard counts a guarded write as in progress until Done.
type meteredGuard struct {
	Guard
	w    *inflight
	once sync.Once
}

func (g *meteredGuard) Done() {
	g.Guard.Done()
	g.once.Do(g.w.end)
}

// yielder makes a collection's sweep give way to the registry's writes:
// before each unit of deletions it waits until no write is in progress,
// for at most max since its previous unit. Deleting competes with writes
// for the filesystem's journal (on ext4 a write's fsync commits the
// deletions pending in the same transaction) far more than reading does,
// so the sweep deletes in the gaps between writes, the way idle-priority
// I/O works, and under writes that never pause still deletes one unit
// every max: a collection always finishes, at least one unit of
// sweepChunk deletions per max. Yielding orders work in time and decides
// nothing: what is deleted is decided by the marking and the claims.
type yielder struct {
	w    *inflight // nil: never yields
	max  time.Duration
	last time.Time // the previous unit's start
	// waited is the time spent yielding, for the report.
	waited time.Duration
}

// sweepChunk is how many deletions a yielding sweep does between two
// yields.
const sweepChunk = 64

// yield waits for the writes in progress to end, for at most max since the
// previous unit, and starts a unit.
func (y *yielder) yield(ctx context.Context) error {
	if y == nil || y.w == nil || y.max <= 0 {
		return ctx.Err()
	}
	start := time.Now()
	if y.last.IsZero() {
		y.last = start
	}
	if err := y.w.waitIdle(ctx, y.last.Add(y.max)); err != nil {
		return err
	}
	y.last = time.Now()
	y.waited += y.last.Sub(start)
	return nil
}
