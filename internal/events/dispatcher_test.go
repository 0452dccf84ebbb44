package events

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDeliveryCloudEventsShape(t *testing.T) {
	clock := newFakeClock()
	s := newSink(t, nil)
	d, _, _ := newTestDispatcher(t, []Receiver{s.receiver("ci")}, WithClock(clock))

	type verdict struct {
		Digest string `json:"digest"`
		Passed bool   `json:"passed"`
	}
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name  string
		event Event
		want  map[string]any // attributes other than id
	}{
		{
			name: "verdict with data",
			event: Event{Type: TypeVerdict, Subject: "quarantine/app@sha256:abc",
				Time: time.Date(2026, 5, 6, 9, 8, 7, 123456789, paris),
				Data: verdict{Digest: "sha256:abc", Passed: true}},
			want: map[string]any{
				"specversion": "1.0", "source": "drydock://test.example", "type": TypeVerdict,
				"subject": "quarantine/app@sha256:abc", "time": "2026-05-06T08:08:07.123456789Z",
				"datacontenttype": "application/json",
				"data":            map[string]any{"digest": "sha256:abc", "passed": true},
			},
		},
		{
			name:  "zero time is the clock's, no subject",
			event: Event{Type: TypePromotion, Data: map[string]string{"to": "live/app"}},
			want: map[string]any{
				"specversion": "1.0", "source": "drydock://test.example", "type": TypePromotion,
				"time": "2026-01-02T03:04:05.000006Z", "datacontenttype": "application/json",
				"data": map[string]any{"to": "live/app"},
			},
		},
		{
			name:  "no data",
			event: Event{Type: TypeBypassRefused, Subject: "live/app:latest", Time: time.Unix(1700000000, 0)},
			want: map[string]any{
				"specversion": "1.0", "source": "drydock://test.example", "type": TypeBypassRefused,
				"subject": "live/app:latest", "time": "2023-11-14T22:13:20Z",
			},
		},
		{
			name:  "raw JSON data",
			event: Event{Type: TypeScanStuck, Subject: "scan/42", Data: json.RawMessage(`{"pending": "2h"}`)},
			want: map[string]any{
				"specversion": "1.0", "source": "drydock://test.example", "type": TypeScanStuck,
				"subject": "scan/42", "time": "2026-01-02T03:04:05.000006Z", "datacontenttype": "application/json",
				"data": map[string]any{"pending": "2h"},
			},
		},
	}
	ids := map[string]bool{}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := d.Publish(tt.event); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			waitFor(t, "delivery", func() bool { return len(s.deliveries()) == i+1 })
			got := s.deliveries()[i]

			if ct := got.header.Get("Content-Type"); ct != "application/cloudevents+json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			ts := got.header.Get(HeaderTimestamp)
			if want := strconv.FormatInt(clock.Now().Unix(), 10); ts != want {
				t.Errorf("%s = %q, want %q", HeaderTimestamp, ts, want)
			}
			if err := Verify(testSecret, ts, got.header.Get(HeaderSignature), got.body, clock.Now(), time.Minute); err != nil {
				t.Errorf("Verify: %v", err)
			}

			var attrs map[string]any
			if err := json.Unmarshal(got.body, &attrs); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, got.body)
			}
			id, _ := attrs["id"].(string)
			if !uuidRE.MatchString(id) {
				t.Errorf("id = %q, want a random UUID", id)
			}
			if ids[id] {
				t.Errorf("id %q used twice", id)
			}
			ids[id] = true
			delete(attrs, "id")
			if !reflect.DeepEqual(attrs, tt.want) {
				t.Errorf("attributes:\n got %v\nwant %v", attrs, tt.want)
			}
		})
	}
}

func TestTypeFiltering(t *testing.T) {
	all, verdicts, gate := newSink(t, nil), newSink(t, nil), newSink(t, nil)
	d, _, _ := newTestDispatcher(t, []Receiver{
		all.receiver("all"),
		verdicts.receiver("verdicts", TypeVerdict),
		gate.receiver("gate", TypePromotion, TypeBypassRefused),
	})
	for _, typ := range []string{TypeVerdict, TypePromotion, TypeBypassRefused, TypeScanStuck, TypeVerdict} {
		if err := d.Publish(Event{Type: typ, Subject: "x"}); err != nil {
			t.Fatalf("Publish(%s): %v", typ, err)
		}
	}
	tests := []struct {
		name string
		sink *sink
		want []string
	}{
		{"all", all, []string{TypeVerdict, TypePromotion, TypeBypassRefused, TypeScanStuck, TypeVerdict}},
		{"verdicts", verdicts, []string{TypeVerdict, TypeVerdict}},
		{"gate", gate, []string{TypePromotion, TypeBypassRefused}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waitFor(t, "deliveries", settled(d, tt.name))
			var got []string
			for _, dl := range tt.sink.deliveries() {
				var e struct{ Type string }
				if err := json.Unmarshal(dl.body, &e); err != nil {
					t.Fatal(err)
				}
				got = append(got, e.Type)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("types = %v, want %v (in order)", got, tt.want)
			}
			if st := statsOf(t, d, tt.name); st.Delivered != uint64(len(tt.want)) {
				t.Errorf("Delivered = %d, want %d", st.Delivered, len(tt.want))
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	clock := newFakeClock()
	s := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		clock.Advance(time.Second) // each attempt is signed at a later second
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	d, sl, _ := newTestDispatcher(t, []Receiver{s.receiver("r")}, WithClock(clock), WithRetry(5, time.Second, time.Minute))
	if err := d.Publish(Event{Type: TypeVerdict, Subject: "a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", settled(d, "r"))

	got := s.deliveries()
	if len(got) != 3 {
		t.Fatalf("attempts = %d, want 3", len(got))
	}
	for i, dl := range got {
		if string(dl.body) != string(got[0].body) {
			t.Errorf("attempt %d body differs from the first: retries must resend the same event", i+1)
		}
		if err := Verify(testSecret, dl.header.Get(HeaderTimestamp), dl.header.Get(HeaderSignature), dl.body, clock.Now(), time.Minute); err != nil {
			t.Errorf("attempt %d: Verify: %v", i+1, err)
		}
	}
	if got[0].header.Get(HeaderTimestamp) == got[2].header.Get(HeaderTimestamp) {
		t.Errorf("retries reuse timestamp %s; each attempt must be signed afresh", got[0].header.Get(HeaderTimestamp))
	}
	want := ReceiverStats{Name: "r", Delivered: 1, Retried: 2}
	if st := statsOf(t, d, "r"); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	waits := sl.get()
	if len(waits) != 2 {
		t.Fatalf("sleeps = %v, want 2", waits)
	}
	for i, bounds := range [][2]time.Duration{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}} {
		if waits[i] < bounds[0] || waits[i] > bounds[1] {
			t.Errorf("wait %d = %v, want within %v", i+1, waits[i], bounds)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	clock := newFakeClock()
	tests := []struct {
		name       string
		code       int
		retryAfter string
		min, max   time.Duration
	}{
		{"429 seconds", http.StatusTooManyRequests, "7", 7 * time.Second, 7 * time.Second},
		{"503 seconds", http.StatusServiceUnavailable, "12", 12 * time.Second, 12 * time.Second},
		{"capped at max backoff", http.StatusServiceUnavailable, "3600", time.Minute, time.Minute},
		{"huge value capped", http.StatusTooManyRequests, "99999999999999999", time.Minute, time.Minute},
		{"zero", http.StatusTooManyRequests, "0", 0, 0},
		{"HTTP date", http.StatusTooManyRequests, clock.Now().Add(30 * time.Second).Format(http.TimeFormat), 29 * time.Second, 30 * time.Second},
		{"date in the past", http.StatusTooManyRequests, clock.Now().Add(-time.Hour).Format(http.TimeFormat), 0, 0},
		{"invalid falls back to backoff", http.StatusTooManyRequests, "soon", 5 * time.Second, 10 * time.Second},
		{"negative falls back to backoff", http.StatusTooManyRequests, "-3", 5 * time.Second, 10 * time.Second},
		{"absent falls back to backoff", http.StatusServiceUnavailable, "", 5 * time.Second, 10 * time.Second},
		{"ignored on 500", http.StatusInternalServerError, "40", 5 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 0 {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					w.WriteHeader(tt.code)
				}
			})
			d, sl, _ := newTestDispatcher(t, []Receiver{s.receiver("r")},
				WithClock(clock), WithRetry(3, 10*time.Second, time.Minute))
			if err := d.Publish(Event{Type: TypeScanStuck}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "delivery", settled(d, "r"))
			waits := sl.get()
			if len(waits) != 1 || waits[0] < tt.min || waits[0] > tt.max {
				t.Errorf("sleeps = %v, want one within [%v, %v]", waits, tt.min, tt.max)
			}
			if st := statsOf(t, d, "r"); st.Delivered != 1 || st.Retried != 1 {
				t.Errorf("stats = %+v, want 1 delivered after 1 retry", st)
			}
		})
	}
}

func TestNotRetried(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound,
		http.StatusGone, http.StatusRequestEntityTooLarge, http.StatusMovedPermanently, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			s := newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				w.WriteHeader(code)
			})
			d, sl, logs := newTestDispatcher(t, []Receiver{s.receiver("r")})
			if err := d.Publish(Event{Type: TypePromotion}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "failure", settled(d, "r"))
			if n := len(s.deliveries()); n != 1 {
				t.Errorf("attempts = %d, want 1", n)
			}
			if w := sl.get(); len(w) != 0 {
				t.Errorf("slept %v, want no retry", w)
			}
			want := ReceiverStats{Name: "r", Failed: 1}
			if st := statsOf(t, d, "r"); st != want {
				t.Errorf("stats = %+v, want %+v", st, want)
			}
			if !regexp.MustCompile(`level=ERROR msg="event delivery failed".*attempts=1`).MatchString(logs.String()) {
				t.Errorf("no error logged for the failure:\n%s", logs)
			}
		})
	}
}

func TestGiveUpAfterMaxAttempts(t *testing.T) {
	down := newSink(t, nil)
	down.srv.Close() // connection refused
	tests := []struct {
		name string
		url  string
		want int // attempts the receiver sees
	}{
		{"always 500", newSink(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
		}).srv.URL, 4},
		{"connection refused", down.srv.URL, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Receiver{Name: "r", URL: tt.url, Secret: testSecret}
			d, sl, logs := newTestDispatcher(t, []Receiver{r}, WithRetry(4, time.Second, 3*time.Second))
			if err := d.Publish(Event{Type: TypeVerdict}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "failure", settled(d, "r"))
			want := ReceiverStats{Name: "r", Failed: 1, Retried: 3}
			if st := statsOf(t, d, "r"); st != want {
				t.Errorf("stats = %+v, want %+v", st, want)
			}
			waits := sl.get()
			if len(waits) != 3 || waits[2] < 1500*time.Millisecond || waits[2] > 3*time.Second {
				t.Errorf("sleeps = %v, want 3, the last capped at 3s", waits)
			}
			if !regexp.MustCompile(`level=ERROR msg="event delivery failed".*attempts=4`).MatchString(logs.String()) {
				t.Errorf("no error logged for the final failure:\n%s", logs)
			}
		})
	}
}

func TestPublishRejectsInvalidEvents(t *testing.T) {
	s := newSink(t, nil)
	d, _, _ := newTestDispatcher(t, []Receiver{s.receiver("r")})
	tests := []struct {
		name  string
		event Event
		is    error
	}{
		{"empty type", Event{}, ErrUnknownType},
		{"unknown type", Event{Type: "dev.drydock.nope"}, ErrUnknownType},
		{"unencodable data", Event{Type: TypeVerdict, Data: make(chan int)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Publish(tt.event)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("Publish = %v, want error %v", err, tt.is)
			}
		})
	}
	if st := statsOf(t, d, "r"); st != (ReceiverStats{Name: "r"}) {
		t.Errorf("stats = %+v, want nothing queued", st)
	}
}

func TestBackoffBounds(t *testing.T) {
	d := &Dispatcher{opts: options{baseBackoff: time.Second, maxBackoff: 5 * time.Minute}}
	for attempt := 1; attempt <= 70; attempt++ {
		w := min(time.Second<<min(attempt-1, 20), 5*time.Minute)
		for range 50 {
			got := d.backoff(attempt)
			if got < w/2 || got > w {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, got, w/2, w)
			}
		}
	}
	huge := &Dispatcher{opts: options{baseBackoff: time.Hour, maxBackoff: time.Duration(1<<63 - 1)}}
	if got := huge.backoff(100); got <= 0 {
		t.Errorf("backoff with a huge cap overflowed: %v", got)
	}
}
