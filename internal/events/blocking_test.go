package events

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// hangingSink returns a receiver that never answers until release is
// called, and a channel that gets a value when a request arrives.
func hangingSink(t *testing.T) (s *sink, arrived <-chan struct{}, release func()) {
	t.Helper()
	arrive := make(chan struct{}, 1)
	stop := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(stop) }) }
	s = newSink(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case arrive <- struct{}{}:
		default:
		}
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(release) // before the server closes
	return s, arrive, release
}

func TestHangingReceiverBlocksNothing(t *testing.T) {
	hang, arrived, release := hangingSink(t)
	healthy := newSink(t, nil)
	d, _, logs := newTestDispatcher(t, []Receiver{hang.receiver("hang"), healthy.receiver("healthy")},
		WithTimeout(time.Hour))
	t.Cleanup(release) // before the dispatcher is closed

	const n = 10000
	start := time.Now()
	for i := range n {
		if err := d.Publish(Event{Type: TypeVerdict, Subject: "bulk", Data: i}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("publishing %d events took %v; Publish must not wait for receivers", n, took)
	}
	<-arrived

	// The healthy receiver drains its queue while the other hangs.
	waitFor(t, "healthy receiver", settled(d, "healthy"))
	h := statsOf(t, d, "healthy")
	if h.Delivered+h.Dropped != n || h.Delivered < DefaultQueueSize {
		t.Errorf("healthy stats = %+v, want %d delivered or dropped, at least a queue's worth delivered", h, n)
	}
	if err := d.Publish(Event{Type: TypeVerdict, Subject: "marker"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "marker", func() bool {
		got := healthy.deliveries()
		var e struct{ Subject string }
		return len(got) > 0 && json.Unmarshal(got[len(got)-1].body, &e) == nil && e.Subject == "marker"
	})

	// The hanging receiver holds one event in flight and a full queue; the
	// rest were dropped, counted and logged.
	s := statsOf(t, d, "hang")
	if s.Delivered != 0 || s.Queued != DefaultQueueSize+1 || s.Dropped != n+1-DefaultQueueSize-1 {
		t.Errorf("hanging stats = %+v, want %d queued and %d dropped", s, DefaultQueueSize+1, n-DefaultQueueSize)
	}
	if !strings.Contains(logs.String(), `level=WARN msg="event dropped: receiver queue full" receiver=hang`) {
		t.Errorf("drops not logged:\n%.2000s", logs)
	}
	if c := strings.Count(logs.String(), "event dropped"); c > 2 {
		t.Errorf("drop warning logged %d times; want it rate-limited", c)
	}
}

func TestFullQueueDropsCounted(t *testing.T) {
	hang, arrived, release := hangingSink(t)
	other := newSink(t, nil)
	d, _, _ := newTestDispatcher(t, []Receiver{hang.receiver("hang"), other.receiver("other")},
		WithQueueSize(2), WithTimeout(time.Hour))
	t.Cleanup(release) // before the dispatcher is closed

	if err := d.Publish(Event{Type: TypePromotion, Subject: "first"}); err != nil {
		t.Fatal(err)
	}
	<-arrived // the first event is in flight, the queue is empty
	waitFor(t, "other receiver", settled(d, "other"))
	for range 10 {
		if err := d.Publish(Event{Type: TypeBypassRefused}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "other receiver", settled(d, "other")) // keep its queue from filling
	}
	want := ReceiverStats{Name: "hang", Dropped: 8, Queued: 3}
	if st := statsOf(t, d, "hang"); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	if st := statsOf(t, d, "other"); st.Delivered != 11 || st.Dropped != 0 {
		t.Errorf("other stats = %+v, want 11 delivered and none dropped", st)
	}
}

func TestCloseDrains(t *testing.T) {
	gate := make(chan struct{})
	s := newSink(t, func(_ int, _ http.ResponseWriter, _ *http.Request) { <-gate })
	d, _, _ := newTestDispatcher(t, []Receiver{s.receiver("r")})
	const n = 5
	for i := range n {
		if err := d.Publish(Event{Type: TypeVerdict, Data: i}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- d.Close(context.Background()) }()

	late := 0 // published after the Close call but before it took effect
	waitFor(t, "Close to stop accepting", func() bool {
		err := d.Publish(Event{Type: TypeVerdict, Data: n + late})
		if err == nil {
			late++
		}
		return errors.Is(err, ErrClosed)
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v before the queue was drained", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := ReceiverStats{Name: "r", Delivered: uint64(n + late)}
	if st := statsOf(t, d, "r"); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	for i, dl := range s.deliveries() {
		var e struct{ Data int }
		if err := json.Unmarshal(dl.body, &e); err != nil || e.Data != i {
			t.Errorf("delivery %d carries %d (%v); want events in publish order", i, e.Data, err)
		}
	}
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseGivesUp(t *testing.T) {
	hang, arrived, release := hangingSink(t)
	d, sl, logs := newTestDispatcher(t, []Receiver{hang.receiver("hang")}, WithTimeout(time.Hour))
	defer release()
	for range 3 {
		if err := d.Publish(Event{Type: TypeVerdict}); err != nil {
			t.Fatal(err)
		}
	}
	<-arrived
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want deadline exceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v after its context expired", took)
	}
	waitFor(t, "workers to stop", settled(d, "hang"))
	want := ReceiverStats{Name: "hang", Failed: 3}
	if st := statsOf(t, d, "hang"); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	waitFor(t, "shutdown log", func() bool {
		return strings.Contains(logs.String(), `msg="events abandoned at shutdown" receiver=hang`)
	})
	if len(hang.deliveries()) != 1 || len(sl.get()) != 0 {
		t.Errorf("abandoned events were retried: %d attempts, sleeps %v", len(hang.deliveries()), sl.get())
	}
}
