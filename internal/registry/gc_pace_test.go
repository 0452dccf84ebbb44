package registry

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestPacerRests: a paced collection works a slice, then rests so that
// its work is the pace's share of the time; a rest already decided is
// waited out by every step; no pacing, no rest; a cancelled context
// ends a rest.
func TestPacerRests(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, share := range []float64{0, 1} {
		p := newPacer(share)
		p.now = func() time.Time { clock = clock.Add(time.Second); return clock }
		p.sleep = func(context.Context, time.Duration) error { t.Fatalf("pace %g rested", share); return nil }
		for range 3 {
			if err := p.step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	var slept []time.Duration
	p := newPacer(0.25)
	p.now = func() time.Time { return clock }
	p.sleep = func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}
	step := func(after time.Duration) {
		t.Helper()
		clock = clock.Add(after)
		if err := p.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step(0)                // the first slice starts
	step(paceSlice / 2)    // within it: no rest
	step(paceSlice)        // 1.5 slices worked: rest 3 times that
	step(time.Millisecond) // during the rest: wait for its end
	if want := []time.Duration{3 * paceSlice * 3 / 2, 3*paceSlice*3/2 - time.Millisecond}; len(slept) != 2 || slept[0] != want[0] || slept[1] != want[1] {
		t.Fatalf("rests %v, want %v", slept, want)
	}
	slept = nil
	step(3*paceSlice*3/2 - time.Millisecond) // the rest is over: a new slice
	step(paceSlice / 2)
	if len(slept) != 0 {
		t.Fatalf("rested %v within a slice", slept)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	q := newPacer(0.5)
	q.restUntil = time.Now().Add(time.Hour)
	if err := q.step(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("step in a rest with a cancelled context: %v", err)
	}
}

// TestYieldWaitsForWrites: a yielding sweep waits while a write is in
// progress and goes on when it ends; under a write that never ends it
// still starts a unit once its longest wait is over; with nothing in
// progress, or no yield set, it never waits; a cancelled context ends a
// wait; a guard counts as a write until Done, once however often Done is
// called.
func TestYieldWaitsForWrites(t *testing.T) {
	ctx := context.Background()
	var w inflight
	waiting := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.idle != nil
	}

	y := &yielder{w: &w, max: time.Hour}
	if err := y.yield(ctx); err != nil || waiting() {
		t.Fatalf("idle: yield %v, waiting %v", err, waiting())
	}

	w.begin()
	w.begin()
	done := make(chan error, 1)
	go func() { done <- y.yield(ctx) }()
	for !waiting() {
		runtime.Gosched()
	}
	w.end() // one write still in progress
	select {
	case err := <-done:
		t.Fatalf("yield returned (%v) with a write in progress", err)
	default:
	}
	if !waiting() {
		t.Fatal("the end of one of two writes woke the sweep")
	}
	w.end()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A write that never ends: the sweep still goes on, once per max.
	w.begin()
	short := &yielder{w: &w, max: time.Millisecond}
	for range 3 {
		if err := short.yield(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if short.waited <= 0 {
		t.Fatal("no time spent yielding under a write in progress")
	}
	for _, y := range []*yielder{nil, {w: &w}, {max: time.Hour}} {
		if err := y.yield(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := (&yielder{w: &w, max: time.Hour}).yield(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("yield with a cancelled context: %v", err)
	}
	w.end()

	r := &Registry{barrier: noBarrier{}}
	g, err := r.guard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.writes.n.Load(); n != 1 {
		t.Fatalf("%d writes in progress inside a guard, want 1", n)
	}
	g.Done()
	g.Done()
	if n := r.writes.n.Load(); n != 0 {
		t.Fatalf("%d writes in progress after Done, want 0", n)
	}
}
