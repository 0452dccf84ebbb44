package gc

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/trace"
	"slices"
	"sync"
	"testing"
	"time"
)

// slowTracer keeps the last seconds of the process's execution trace
// (a flight recorder) and writes them to a file when a request is slow, so
// that what the request waited for (a system call, a lock, the scheduler)
// can be read with go tool trace. DRYDOCK_BENCH_GC_TRACE=DIR turns it on.
type slowTracer struct {
	b    testing.TB
	dir  string
	fr   *trace.FlightRecorder
	mu   sync.Mutex
	last time.Time // when the last snapshot was taken
	n    int
	wg   sync.WaitGroup
}

// slowTraces bounds the snapshots of one run.
const slowTraces = 8

// newSlowTracer starts the flight recorder when DRYDOCK_BENCH_GC_TRACE
// names a directory; nil otherwise.
func newSlowTracer(b testing.TB) *slowTracer {
	dir := os.Getenv("DRYDOCK_BENCH_GC_TRACE")
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: 3 * time.Second, MaxBytes: 256 << 20})
	if err := fr.Start(); err != nil {
		b.Fatal(err)
	}
	return &slowTracer{b: b, dir: dir, fr: fr}
}

// observe takes a snapshot half a second after a request over 100 ms
// ended (one per 3 s at most, slowTraces in all).
func (s *slowTracer) observe(start time.Time, d time.Duration) {
	if s == nil || d < 100*time.Millisecond {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= slowTraces || time.Since(s.last) < 3*time.Second {
		return
	}
	s.n++
	s.last = time.Now()
	name := filepath.Join(s.dir, fmt.Sprintf("slow-%d-%d.trace", start.UnixMilli(), d.Milliseconds()))
	s.wg.Go(func() {
		time.Sleep(500 * time.Millisecond)
		f, err := os.Create(name)
		if err != nil {
			s.b.Error(err)
			return
		}
		defer f.Close()
		if _, err := s.fr.WriteTo(f); err != nil {
			s.b.Errorf("writing %s: %v", name, err)
		}
	})
}

// stop waits for the snapshots and stops the recorder.
func (s *slowTracer) stop() {
	if s == nil {
		return
	}
	s.wg.Wait()
	s.fr.Stop()
}

// TestSlowEvents: BenchmarkPushDuringGC counts stalls, not requests.
func TestSlowEvents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(startMs, durMs int) request {
		s := t0.Add(time.Duration(startMs) * time.Millisecond)
		return request{"blob", s, s.Add(time.Duration(durMs) * time.Millisecond)}
	}
	for _, tc := range []struct {
		name string
		reqs []request
		want int
	}{
		{"none", []request{at(0, 50), at(100, 100)}, 0},
		{"one stall, four requests", []request{at(0, 150), at(5, 140), at(10, 130), at(2, 120)}, 1},
		{"a second stall 2 s later", []request{at(0, 150), at(2150, 120)}, 2},
		{"within a second of the end", []request{at(0, 150), at(1100, 120)}, 1},
		{"chained within a second", []request{at(0, 150), at(1000, 150), at(2000, 150)}, 1},
		{"outside the window", []request{at(-500, 300), at(20000, 300)}, 0},
		{"unsorted", []request{at(5000, 150), at(0, 150), at(5100, 300)}, 2},
	} {
		if got := slowEvents(tc.reqs, t0, t0.Add(10*time.Second), 100*time.Millisecond); got != tc.want {
			t.Errorf("%s: %d events, want %d", tc.name, got, tc.want)
		}
	}
}

// syncStats sums up storage syncs and the slow requests beside them: the
// syncs' median, 99th percentile and longest, how many took over slow, how
// many of the requests over slow overlapped such a sync, and the longest
// sync that overlapped any of those requests. A sync that long means the
// disk stalled, whoever wrote what it carried; a request held while the
// syncs beside it were quick waited for something else.
type syncStats struct {
	n, over                     int
	median, p99, longest        time.Duration
	slowReqs, slowReqsBesideOne int
	longestBeside               time.Duration
}

func newSyncStats(reqs, syncs []request, slow time.Duration) syncStats {
	st := syncStats{n: len(syncs)}
	ds := make([]time.Duration, len(syncs))
	for i, s := range syncs {
		ds[i] = s.end.Sub(s.start)
		if ds[i] > slow {
			st.over++
		}
	}
	if len(ds) > 0 {
		slices.Sort(ds)
		st.median, st.p99, st.longest = ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
	}
	for _, r := range reqs {
		if r.end.Sub(r.start) <= slow {
			continue
		}
		st.slowReqs++
		var beside time.Duration // the longest sync overlapping r
		for _, s := range syncs {
			if s.start.Before(r.end) && s.end.After(r.start) {
				beside = max(beside, s.end.Sub(s.start))
			}
		}
		if beside > slow {
			st.slowReqsBesideOne++
		}
		st.longestBeside = max(st.longestBeside, beside)
	}
	return st
}

func (st syncStats) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("%d syncs, median %s, p99 %s, longest %s, %d over 100 ms; %d of its %d requests over 100 ms overlapped one of those, and the longest sync beside any of them took %s",
		st.n, r(st.median), r(st.p99), r(st.longest), st.over, st.slowReqsBesideOne, st.slowReqs, r(st.longestBeside))
}

// reportSyncs reports the storage syncs (storage.writeback) of the
// collections [t1, t2) and of the idle phases [t0, t1) and [t2, t3).
func reportSyncs(b *testing.B, reqs, syncs []request, t0, t1, t2, t3 time.Time) {
	const slow = 100 * time.Millisecond
	idle := func(rs []request) []request { return append(startedIn(rs, t0, t1), startedIn(rs, t2, t3)...) }
	sg := newSyncStats(startedIn(reqs, t1, t2), startedIn(syncs, t1, t2), slow)
	si := newSyncStats(idle(reqs), idle(syncs), slow)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(sg.longest), "max-ms-sync-gc")
	b.ReportMetric(ms(si.longest), "max-ms-sync-idle")
	b.ReportMetric(ms(sg.p99), "p99-ms-sync-gc")
	b.ReportMetric(ms(si.p99), "p99-ms-sync-idle")
	b.Logf("storage syncs: collections %v; idle phases %v", sg, si)
}

// TestSyncStats: a slow request counts as beside a slow sync only when
// their spans overlap.
func TestSyncStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(class string, startMs, durMs int) request {
		s := t0.Add(time.Duration(startMs) * time.Millisecond)
		return request{class, s, s.Add(time.Duration(durMs) * time.Millisecond)}
	}
	syncs := []request{at("sync", 0, 10), at("sync", 250, 300), at("sync", 800, 20), at("sync", 1100, 150)}
	reqs := []request{
		at("blob", 260, 200), // inside the 300 ms sync
		at("blob", 100, 160), // ends just after it started
		at("blob", 560, 120), // starts after it ended
		at("blob", 990, 101), // ends before the 150 ms sync
		at("blob", 1200, 90), // fast: not counted
	}
	got := newSyncStats(reqs, syncs, 100*time.Millisecond)
	want := syncStats{n: 4, over: 2, median: 150 * time.Millisecond, p99: 300 * time.Millisecond, longest: 300 * time.Millisecond, slowReqs: 4, slowReqsBesideOne: 2, longestBeside: 300 * time.Millisecond}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// Held while the only sync beside it was quick.
	quick := at("sync", 0, 20)
	got = newSyncStats([]request{at("blob", 5, 150)}, []request{quick}, 100*time.Millisecond)
	want = syncStats{n: 1, median: 20 * time.Millisecond, p99: 20 * time.Millisecond, longest: 20 * time.Millisecond, slowReqs: 1, longestBeside: 20 * time.Millisecond}
	if got != want {
		t.Errorf("quick sync: got %+v\nwant %+v", got, want)
	}
	if got := newSyncStats(nil, nil, 100*time.Millisecond); got != (syncStats{}) {
		t.Errorf("nothing: %+v", got)
	}
}
