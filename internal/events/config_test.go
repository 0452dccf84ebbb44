package events

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewDispatcherRejectsBadReceivers(t *testing.T) {
	ok := Receiver{Name: "ok", URL: "https://hooks.example/drydock", Secret: []byte("k")}
	with := func(f func(*Receiver)) []Receiver {
		r := ok
		f(&r)
		return []Receiver{r}
	}
	tests := []struct {
		name      string
		receivers []Receiver
		field     string
		index     int
		noLeak    string // must not appear in the message
	}{
		{"no name", with(func(r *Receiver) { r.Name = " " }), "Name", 0, ""},
		{"duplicate name", []Receiver{ok, ok}, "Name", 1, ""},
		{"ftp URL", with(func(r *Receiver) { r.URL = "ftp://hooks.example/x" }), "URL", 0, ""},
		{"relative URL", with(func(r *Receiver) { r.URL = "/hooks" }), "URL", 0, ""},
		{"no host", with(func(r *Receiver) { r.URL = "https:///x" }), "URL", 0, ""},
		{"unparsable URL hides credentials", with(func(r *Receiver) { r.URL = "https://u:hunter2@h\x7f/" }), "URL", 0, "hunter2"},
		{"empty secret", with(func(r *Receiver) { r.Secret = nil }), "Secret", 0, ""},
		{"unknown type", with(func(r *Receiver) { r.Types = []string{TypeVerdict, "dev.drydock.typo"} }), "Types", 0, ""},
		{"second receiver", []Receiver{ok, {Name: "b", URL: "http://h/", Secret: nil}}, "Secret", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDispatcher(tt.receivers)
			if err == nil {
				d.Close(t.Context())
				t.Fatal("NewDispatcher accepted the receivers")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || ce.Index != tt.index {
				t.Fatalf("error = %v (%#v), want a ConfigError for receiver %d field %s", err, ce, tt.index, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
			if tt.noLeak != "" && strings.Contains(err.Error(), tt.noLeak) {
				t.Errorf("message %q leaks %q", err, tt.noLeak)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(valid) = %v", err)
	}
}

func TestOptionsRejectBadValues(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"nil client", WithHTTPClient(nil)},
		{"nil logger", WithLogger(nil)},
		{"nil clock", WithClock(nil)},
		{"empty source", WithSource("")},
		{"bad source", WithSource("drydock://h\x00st")},
		{"zero queue", WithQueueSize(0)},
		{"zero attempts", WithRetry(0, time.Second, time.Minute)},
		{"zero base", WithRetry(3, 0, time.Minute)},
		{"max below base", WithRetry(3, time.Minute, time.Second)},
		{"zero timeout", WithTimeout(0)},
		{"nil sleep", WithSleep(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := NewDispatcher(nil, tt.opt); err == nil {
				d.Close(t.Context())
				t.Error("option accepted")
			}
		})
	}
	d, err := NewDispatcher(nil, WithHTTPClient(http.DefaultClient), WithQueueSize(1), WithRetry(1, time.Second, time.Second), WithTimeout(time.Second))
	if err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
	if err := d.Publish(Event{Type: TypeVerdict}); err != nil {
		t.Errorf("Publish with no receivers: %v", err)
	}
	if err := d.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestReceiverConfigIsCopied(t *testing.T) {
	s := newSink(t, nil)
	secret := []byte("original")
	types := []string{TypeVerdict}
	d, _, _ := newTestDispatcher(t, []Receiver{{Name: "r", URL: s.srv.URL, Secret: secret, Types: types}})
	copy(secret, "mutated!")
	types[0] = TypePromotion
	if err := d.Publish(Event{Type: TypeVerdict}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", settled(d, "r"))
	got := s.deliveries()
	if len(got) != 1 {
		t.Fatalf("deliveries = %d, want 1", len(got))
	}
	h := got[0].header
	if err := Verify([]byte("original"), h.Get(HeaderTimestamp), h.Get(HeaderSignature), got[0].body, time.Now(), time.Minute); err != nil {
		t.Errorf("signed with a mutated secret: %v", err)
	}
}
