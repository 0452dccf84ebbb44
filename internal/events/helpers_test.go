package events

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testenv"
)

var testSecret = []byte("s3cret-for-tests")

// fakeClock is a settable Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sleeps records the waits asked for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// delivery is one request as a receiver saw it.
type delivery struct {
	header http.Header
	body   []byte
}

// sink is a test receiver. respond picks the status (and headers) of the
// n-th request (0-based); nil means 200.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []delivery
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newSink(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *sink {
	t.Helper()
	s := &sink{respond: respond}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		n := len(s.got)
		s.got = append(s.got, delivery{header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		if s.respond != nil {
			s.respond(n, w, r)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.got...)
}

func (s *sink) receiver(name string, types ...string) Receiver {
	return Receiver{Name: name, URL: s.srv.URL + "/hook", Secret: testSecret, Types: types}
}

// newTestDispatcher builds a dispatcher that never really sleeps and logs to
// a buffer, and closes it when the test ends.
func newTestDispatcher(t *testing.T, rs []Receiver, opts ...Option) (*Dispatcher, *sleeps, *testenv.LockedBuffer) {
	t.Helper()
	sl := &sleeps{}
	logs := &testenv.LockedBuffer{}
	base := []Option{
		WithSleep(sl.sleep),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithSource("drydock://test.example"),
	}
	d, err := NewDispatcher(rs, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewDispatcher: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d, sl, logs
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// statsOf returns the stats of the named receiver.
func statsOf(t *testing.T, d *Dispatcher, name string) ReceiverStats {
	t.Helper()
	for _, s := range d.Stats() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stats for receiver %q", name)
	return ReceiverStats{}
}

// settled reports whether the named receiver has nothing left to do.
func settled(d *Dispatcher, name string) func() bool {
	return func() bool {
		for _, s := range d.Stats() {
			if s.Name == name {
				return s.Queued == 0
			}
		}
		return false
	}
}
