package gc

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/trace"
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
