package audit

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// stepClock returns base, base+step, base+2*step, ... and is safe for
// concurrent use.
type stepClock struct {
	mu   sync.Mutex
	next time.Time
	step time.Duration
}

func newStepClock() *stepClock {
	return &stepClock{next: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), step: time.Second}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.next
	c.next = c.next.Add(c.step)
	return t
}

func newTestLog(t testing.TB, b Backend, opts ...Option) *Log {
	t.Helper()
	l, err := New(b, append([]Option{WithClock(newStepClock())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const (
	digestA = "sha256:2b1a7d1f4b0e3c6f0e8d5c4b3a29181716151413121110090807060504030201"
	digestB = "sha256:0102030405060708091011121314151617181920212223242526272829303132"
)

// sampleEntries are the entries of the golden chain.
func sampleEntries() []Entry {
	return []Entry{
		{Actor: "alice", Action: ActionPush, Repository: "quarantine/nginx", Reference: "1.27.1", Digest: digestA},
		{Actor: "system", Action: ActionScan, Repository: "quarantine/nginx", Digest: digestA,
			Detail: json.RawMessage(`{"high": 2, "critical": 1, "db": "2025-01-01"}`)},
		{Actor: "bob", Action: ActionBypassRefused, Repository: "live/nginx", Reference: "1.27.1", Digest: digestB,
			Outcome: OutcomeRefused, Detail: json.RawMessage(`{"reason":"push to live/ refused"}`)},
	}
}

// record records entries and returns what was stored.
func record(t testing.TB, l *Log, entries ...Entry) []*Entry {
	t.Helper()
	var out []*Entry
	for _, e := range entries {
		s, err := l.Record(context.Background(), e)
		if err != nil {
			t.Fatalf("Record(%+v): %v", e, err)
		}
		out = append(out, s)
	}
	return out
}

// recordN records n generated entries.
func recordN(t testing.TB, l *Log, n int) []*Entry {
	t.Helper()
	var es []Entry
	for i := range n {
		d, err := Detail(map[string]any{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, Entry{Actor: "alice", Action: ActionPush, Repository: "quarantine/app", Digest: digestA, Detail: d})
	}
	return record(t, l, es...)
}

func mustVerify(t testing.TB, l *Log) *VerifyResult {
	t.Helper()
	res, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}
