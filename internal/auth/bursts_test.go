package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type burstLog struct {
	mu  sync.Mutex
	got []Burst
}

func (l *burstLog) record(_ context.Context, b Burst) {
	l.mu.Lock()
	l.got = append(l.got, b)
	l.mu.Unlock()
}

func (l *burstLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, b := range l.got {
		out = append(out, fmt.Sprintf("%s@%s count=%d throttled=%d %s..%s %s", b.Name, b.Address, b.Count, b.Throttled,
			b.First.Format("15:04:05"), b.Last.Format("15:04:05"), b.Reason))
	}
	l.got = nil
	return out
}

func reqFrom(addr string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.RemoteAddr = addr + ":1234"
	return r
}

// TestFailureBursts: the first refusal is recorded at once; a burst after
// it becomes one record a window, with its count; a quiet spell ends it.
func TestFailureBursts(t *testing.T) {
	clock := newFakeClock() // 12:00:00
	log := &burstLog{}
	f := NewFailureBursts(time.Minute, clock.Now, log.record)
	ctx := context.Background()
	mallory := reqFrom("192.0.2.66")
	type step struct {
		advance time.Duration
		do      string // refuse, throttle, sweep, flush
		r       *http.Request
		name    string
		want    []string
	}
	steps := []step{
		{do: "refuse", r: mallory, name: "admin", want: []string{"admin@192.0.2.66 count=1 throttled=0 12:00:00..12:00:00 wrong"}},
		// 59 more within the minute: counted, not recorded.
		{advance: time.Second, do: "refuse*59", r: mallory, name: "admin"},
		{advance: 10 * time.Second, do: "throttle", r: mallory, name: "admin"},
		// Another name from the same address is its own record.
		{do: "refuse", r: mallory, name: "root", want: []string{"root@192.0.2.66 count=1 throttled=0 12:00:11..12:00:11 wrong"}},
		// The window has passed: the next refusal writes the burst, and
		// starts the next one (the guessing goes on).
		{advance: 54 * time.Second, do: "refuse", r: mallory, name: "admin",
			want: []string{"admin@192.0.2.66 count=60 throttled=1 12:00:01..12:00:11 throttled"}},
		// A sweep writes a burst whose window has passed, without another
		// refusal of it (root's burst has nothing left to write).
		{advance: 2 * time.Minute, do: "sweep",
			want: []string{"admin@192.0.2.66 count=1 throttled=0 12:01:05..12:01:05 wrong"}},
		// After a quiet window, a refusal is recorded at once again.
		{advance: time.Minute, do: "refuse", r: mallory, name: "admin", want: []string{"admin@192.0.2.66 count=1 throttled=0 12:04:05..12:04:05 wrong"}},
		{advance: time.Second, do: "refuse*3", r: reqFrom("198.51.100.7"), name: "admin"},
		{do: "flush", want: []string{"admin@198.51.100.7 count=2 throttled=0 12:04:06..12:04:06 wrong"}},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		switch {
		case s.do == "refuse":
			f.Refused(ctx, s.r, s.name, "wrong", false)
		case s.do == "throttle":
			f.Refused(ctx, s.r, s.name, "throttled", true)
		case strings.HasPrefix(s.do, "refuse*"):
			var n int
			fmt.Sscanf(s.do, "refuse*%d", &n)
			for range n {
				f.Refused(ctx, s.r, s.name, "wrong", false)
			}
		case s.do == "sweep":
			f.Sweep(ctx)
		case s.do == "flush":
			f.Flush(ctx)
		}
		got := log.take()
		if s.want == nil {
			if s.do == "refuse*3" && len(got) != 1 {
				t.Errorf("step %d: records %q; want only the first of the new address", i, got)
			} else if s.do != "refuse*3" && len(got) != 0 {
				t.Errorf("step %d: records %q; want none", i, got)
			}
			continue
		}
		if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
			t.Errorf("step %d (%s): records\n%s\nwant\n%s", i, s.do, strings.Join(got, "\n"), strings.Join(s.want, "\n"))
		}
	}
}

// TestFailureBurstsSteady: a guesser at 14 a second for 13 minutes
// (the 11,000 refusals) leaves about one record a minute, and
// the counts add up to every refusal.
func TestFailureBurstsSteady(t *testing.T) {
	clock := newFakeClock()
	log := &burstLog{}
	f := NewFailureBursts(time.Minute, clock.Now, log.record)
	r := reqFrom("192.0.2.66")
	total := 0
	for range 13 * 60 * 14 {
		clock.Advance(time.Second / 14)
		f.Refused(context.Background(), r, "admin", "wrong", false)
		total++
	}
	f.Flush(context.Background())
	sum := 0
	for _, b := range log.got {
		sum += b.Count
	}
	if sum != total {
		t.Errorf("records count %d refusals; want %d", sum, total)
	}
	if n := len(log.got); n < 13 || n > 15 {
		t.Errorf("%d records for 13 minutes of guessing; want about 14", n)
	}
}

func TestFailureBurstsBounded(t *testing.T) {
	clock := newFakeClock()
	log := &burstLog{}
	f := NewFailureBursts(time.Hour, clock.Now, log.record)
	for i := range maxOpenBursts + 500 {
		f.Refused(context.Background(), reqFrom(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)), "x", "wrong", false)
	}
	f.mu.Lock()
	n := len(f.open)
	f.mu.Unlock()
	if n > maxOpenBursts {
		t.Errorf("%d open bursts; bound %d", n, maxOpenBursts)
	}
}
