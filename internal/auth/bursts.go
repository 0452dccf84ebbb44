package auth

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"
)

// FailureBursts turns refused logins into few audit records: the first
// refusal of a claimed name from a client address is recorded at once
// (count 1); the refusals that follow it within Window are counted into
// one record (count N, first and last time, how many were throttled),
// written when the burst is over: at the first refusal after the window,
// at Sweep once the window has passed, or at Flush. A guesser trying for
// an hour leaves about one record a minute per name and address, not one
// per guess.
//
// The counts live in this process (as MemoryThrottle's do): a crash loses
// the unwritten count of open bursts, at most Window's worth.
type FailureBursts struct {
	window time.Duration
	now    func() time.Time
	record func(context.Context, Burst)

	mu        sync.Mutex
	open      map[burstKey]*openBurst
	lastSweep time.Time
}

// Burst is one audit record of refused logins.
type Burst struct {
	// Name is who the credentials claimed to be; Address the client
	// address (see ClientAddress).
	Name, Address string
	// Reason is the message the last refusal gave.
	Reason string
	// Count is the number of refusals the record stands for; Throttled
	// how many of them were answered 429 without checking the password.
	Count, Throttled int
	// First and Last are the times of the first and last of them.
	First, Last time.Time
	// Method and Path are those of the first request.
	Method, Path string
}

type burstKey struct{ name, addr string }

// openBurst is the refusals of one name and address counted since start,
// not recorded yet (rec.Count of them).
type openBurst struct {
	start time.Time // of the window
	last  time.Time // of the last refusal, recorded or not
	rec   Burst
}

func (o *openBurst) count(now time.Time, r *http.Request, reason string, throttled bool) {
	if o.rec.Count == 0 {
		o.rec.First, o.rec.Method, o.rec.Path = now, r.Method, r.URL.Path
	}
	o.rec.Count++
	if throttled {
		o.rec.Throttled++
	}
	o.rec.Reason, o.rec.Last, o.last = reason, now, now
}

// take returns the pending record, if any, and starts a new window at now.
func (o *openBurst) take(now time.Time) (Burst, bool) {
	b := o.rec
	o.start = now
	o.rec = Burst{Name: b.Name, Address: b.Address}
	return b, b.Count > 0
}

// maxOpenBursts bounds the bursts held: past it, the oldest are written.
const maxOpenBursts = 10_000

// DefaultBurstWindow is the window of FailureBursts when none is given.
const DefaultBurstWindow = time.Minute

// NewFailureBursts returns an aggregator that writes records with record;
// now is the clock (time.Now when nil), window DefaultBurstWindow when
// not positive.
func NewFailureBursts(window time.Duration, now func() time.Time, record func(context.Context, Burst)) *FailureBursts {
	if window <= 0 {
		window = DefaultBurstWindow
	}
	if now == nil {
		now = time.Now
	}
	return &FailureBursts{window: window, now: now, record: record, open: map[burstKey]*openBurst{}}
}

// Refused counts one refused login of name from r's client address.
func (f *FailureBursts) Refused(ctx context.Context, r *http.Request, name, reason string, throttled bool) {
	now := f.now()
	k := burstKey{name, ClientAddress(r)}
	var out []Burst
	f.mu.Lock()
	o := f.open[k]
	if o != nil && now.Sub(o.start) >= f.window {
		if b, ok := o.take(now); ok {
			out = append(out, b)
		}
		if now.Sub(o.last) >= f.window {
			delete(f.open, k) // quiet for a window: a new burst
			o = nil
		}
	}
	if o == nil {
		// The first refusal of a burst is recorded at once.
		first := openBurst{rec: Burst{Name: name, Address: k.addr}}
		first.count(now, r, reason, throttled)
		out = append(out, first.rec)
		f.open[k] = &openBurst{start: now, last: now, rec: Burst{Name: name, Address: k.addr}}
	} else {
		o.count(now, r, reason, throttled)
	}
	out = append(out, f.sweepLocked(now, len(f.open) > maxOpenBursts)...)
	f.mu.Unlock()
	for _, b := range out {
		f.record(ctx, b)
	}
}

// Sweep writes the bursts whose window has passed. It is cheap to call
// often: it looks at the bursts at most twice a window.
func (f *FailureBursts) Sweep(ctx context.Context) {
	now := f.now()
	f.mu.Lock()
	out := f.sweepLocked(now, false)
	f.mu.Unlock()
	for _, b := range out {
		f.record(ctx, b)
	}
}

// Flush writes every open burst (at shutdown).
func (f *FailureBursts) Flush(ctx context.Context) {
	now := f.now()
	f.mu.Lock()
	var out []Burst
	for k, o := range f.open {
		if b, ok := o.take(now); ok {
			out = append(out, b)
		}
		delete(f.open, k)
	}
	f.mu.Unlock()
	sortBursts(out)
	for _, b := range out {
		f.record(ctx, b)
	}
}

// sweepLocked closes the windows that have passed (removing the bursts
// that have been quiet for a window, and, over the bound, the oldest ones)
// and returns the records to write.
func (f *FailureBursts) sweepLocked(now time.Time, over bool) []Burst {
	if !over && now.Sub(f.lastSweep) < f.window/2 {
		return nil
	}
	f.lastSweep = now
	var out []Burst
	for k, o := range f.open {
		if now.Sub(o.start) < f.window {
			continue
		}
		if b, ok := o.take(now); ok {
			out = append(out, b)
		}
		if now.Sub(o.last) >= f.window {
			delete(f.open, k) // over: the next refusal is recorded at once
		}
	}
	if len(f.open) > maxOpenBursts {
		keys := make([]burstKey, 0, len(f.open))
		for k := range f.open {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b burstKey) int { return f.open[a].last.Compare(f.open[b].last) })
		for _, k := range keys[:len(keys)-maxOpenBursts*9/10] {
			if b, ok := f.open[k].take(now); ok {
				out = append(out, b)
			}
			delete(f.open, k)
		}
	}
	sortBursts(out)
	return out
}

// sortBursts orders records by their first refusal, then name and address.
func sortBursts(bs []Burst) {
	slices.SortFunc(bs, func(a, b Burst) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.Address < b.Address {
			return -1
		}
		if a.Address > b.Address {
			return 1
		}
		return 0
	})
}
