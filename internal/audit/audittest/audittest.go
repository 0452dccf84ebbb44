// Package audittest is the conformance suite of audit.Backend: every
// backend, on every database engine, passes Run.
package audittest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
)

// Factory makes a fresh, empty backend for t and returns a function that
// opens handles on it; two handles behave as two processes sharing the
// log would (an in-memory backend returns the same one).
type Factory func(t *testing.T) (open func() audit.Backend)

// scanBatchAtLeast exceeds the batch size of every backend that reads in
// batches, so that Scan is seen crossing batches.
const scanBatchAtLeast = 256

// Run runs the conformance suite against the backends newBackend makes.
func Run(t *testing.T, newBackend Factory) {
	ctx := context.Background()
	sameEntry := func(t *testing.T, got, want *audit.Entry) {
		t.Helper()
		if !bytes.Equal(got.Canonical(), want.Canonical()) || got.Hash != want.Hash {
			t.Errorf("entry %d:\n got %+v\nwant %+v", want.Seq, got, want)
		}
	}
	t.Run("empty", func(t *testing.T) {
		b := newBackend(t)()
		if e, err := b.Last(ctx); e != nil || err != nil {
			t.Fatalf("Last = %v, %v; want nil, nil", e, err)
		}
		if err := b.Scan(ctx, 0, func(e *audit.Entry) error { t.Errorf("Scan yielded %+v", e); return nil }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("append, last and scan round-trip", func(t *testing.T) {
		b := newBackend(t)()
		stored := record(t, newTestLog(t, b), sampleEntries()...)
		last, err := b.Last(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sameEntry(t, last, stored[2])
		for _, from := range []int64{-5, 0, 1, 2, 3, 4} {
			var got []*audit.Entry
			if err := b.Scan(ctx, from, func(e *audit.Entry) error { got = append(got, e); return nil }); err != nil {
				t.Fatal(err)
			}
			want := stored[min(max(from-1, 0), 3):]
			if len(got) != len(want) {
				t.Fatalf("Scan(from %d) yielded %d entries, want %d", from, len(got), len(want))
			}
			for i := range got {
				sameEntry(t, got[i], want[i])
			}
		}
	})
	t.Run("newest pages by action", func(t *testing.T) {
		b := newBackend(t)()
		l := newTestLog(t, b)
		// Seqs 1..9: push, scan, bypass_refused, three times over.
		var stored []*audit.Entry
		for range 3 {
			stored = append(stored, record(t, l, sampleEntries()...)...)
		}
		seqs := func(es []*audit.Entry) []int64 {
			var out []int64
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		for _, tc := range []struct {
			before int64
			action audit.Action
			limit  int
			want   []int64
		}{
			{0, "", 4, []int64{9, 8, 7, 6}},
			{0, "", 100, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{6, "", 2, []int64{5, 4}},
			{2, "", 5, []int64{1}},
			{1, "", 5, nil},
			{100, "", 1, []int64{9}},
			{0, audit.ActionBypassRefused, 10, []int64{9, 6, 3}},
			{9, audit.ActionBypassRefused, 1, []int64{6}},
			{3, audit.ActionBypassRefused, 10, nil},
			{0, audit.ActionPush, 2, []int64{7, 4}},
			{0, audit.ActionGC, 10, nil},
		} {
			got, err := b.Newest(ctx, tc.before, tc.action, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqs(got), tc.want) {
				t.Errorf("Newest(before %d, %q, limit %d) = %v, want %v", tc.before, tc.action, tc.limit, seqs(got), tc.want)
			}
			for _, e := range got {
				sameEntry(t, e, stored[e.Seq-1])
			}
		}
	})
	t.Run("append passes prev and rejects a wrong seq", func(t *testing.T) {
		b := newBackend(t)()
		stored := record(t, newTestLog(t, b), sampleEntries()[:1]...)
		bad := *stored[0]
		_, err := b.Append(ctx, func(prev *audit.Entry) (*audit.Entry, error) {
			if prev == nil || prev.Hash != stored[0].Hash {
				t.Errorf("prev = %+v, want entry 1", prev)
			}
			return &bad, nil // seq 1 again
		})
		if err == nil {
			t.Fatal("Append accepted a duplicate seq")
		}
		boom := errors.New("boom")
		if _, err := b.Append(ctx, func(*audit.Entry) (*audit.Entry, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("Append error = %v, want %v", err, boom)
		}
		l := newTestLog(t, b)
		record(t, l, sampleEntries()[1]) // the failed appends left no transaction behind
		if res := mustVerify(t, l); !res.OK() || res.Entries != 2 {
			t.Fatalf("after failed appends: %+v", res)
		}
	})
	t.Run("scan spans batches and stops at fn's error", func(t *testing.T) {
		b := newBackend(t)()
		l := newTestLog(t, b)
		recordN(t, l, 2*scanBatchAtLeast+3)
		var n int64
		err := b.Scan(ctx, 1, func(e *audit.Entry) error {
			if n++; e.Seq != n {
				t.Fatalf("entry %d at position %d", e.Seq, n)
			}
			return nil
		})
		if err != nil || n != 2*scanBatchAtLeast+3 {
			t.Fatalf("Scan: %d entries, %v", n, err)
		}
		stop := errors.New("stop")
		n = 0
		if err := b.Scan(ctx, 1, func(*audit.Entry) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("Scan = %v after %d calls, want stop after 1", err, n)
		}
		if res := mustVerify(t, l); !res.OK() || res.Entries != 2*scanBatchAtLeast+3 {
			t.Fatalf("Verify = %+v", res)
		}
	})
	t.Run("scan callback may append", func(t *testing.T) {
		b := newBackend(t)()
		l := newTestLog(t, b)
		recordN(t, l, 2)
		err := b.Scan(ctx, 1, func(e *audit.Entry) error {
			_, err := l.Record(ctx, audit.Entry{Actor: "x", Action: audit.ActionScan})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if res := mustVerify(t, l); !res.OK() || res.Entries < 4 {
			t.Fatalf("Verify = %+v", res)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		b := newBackend(t)()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := newTestLog(t, b).Record(cctx, sampleEntries()[0]); err == nil {
			t.Fatal("Record with a cancelled context succeeded")
		}
	})
	t.Run("concurrent appends from two handles extend one chain", func(t *testing.T) {
		open := newBackend(t)
		logs := []*audit.Log{newTestLog(t, open()), newTestLog(t, open())}
		const workers, perWorker = 6, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			l := logs[w%2]
			wg.Go(func() {
				for i := range perWorker {
					d, err := audit.Detail(map[string]int{"worker": w, "i": i})
					if err == nil {
						_, err = l.Record(ctx, audit.Entry{Actor: fmt.Sprintf("worker-%d", w), Action: audit.ActionPush, Detail: d})
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, l := range logs {
			if res := mustVerify(t, l); !res.OK() || res.Entries != workers*perWorker {
				t.Fatalf("Verify = %+v (%v), want %d intact entries", res, res.Broken, workers*perWorker)
			}
		}
		seen := map[string]bool{}
		if err := logs[0].Scan(ctx, 0, func(e *audit.Entry) error {
			if seen[string(e.Detail)] {
				return fmt.Errorf("entry %s recorded twice", e.Detail)
			}
			seen[string(e.Detail)] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(seen) != workers*perWorker {
			t.Fatalf("%d distinct entries, want %d", len(seen), workers*perWorker)
		}
	})
}

// stepClock returns base, base+step, ... and is safe for concurrent use.
type stepClock struct {
	mu   sync.Mutex
	next time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.next
	c.next = c.next.Add(time.Second)
	return t
}

func newTestLog(t testing.TB, b audit.Backend) *audit.Log {
	t.Helper()
	l, err := audit.New(b, audit.WithClock(&stepClock{next: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)}))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func sampleEntries() []audit.Entry {
	const d = "sha256:2b1a7d1f4b0e3c6f0e8d5c4b3a29181716151413121110090807060504030201"
	return []audit.Entry{
		{Actor: "alice", Action: audit.ActionPush, Repository: "quarantine/nginx", Reference: "1.27.1", Digest: d},
		{Actor: "system", Action: audit.ActionScan, Repository: "quarantine/nginx", Digest: d,
			Detail: json.RawMessage(`{"high": 2, "critical": 1, "db": "2025-01-01"}`)},
		{Actor: "bob", Action: audit.ActionBypassRefused, Repository: "live/nginx", Reference: "1.27.1", Digest: d,
			Outcome: audit.OutcomeRefused, Detail: json.RawMessage(`{"reason":"push to live/ refused"}`)},
	}
}

func record(t testing.TB, l *audit.Log, entries ...audit.Entry) []*audit.Entry {
	t.Helper()
	var out []*audit.Entry
	for _, e := range entries {
		s, err := l.Record(context.Background(), e)
		if err != nil {
			t.Fatalf("Record(%+v): %v", e, err)
		}
		out = append(out, s)
	}
	return out
}

func recordN(t testing.TB, l *audit.Log, n int) []*audit.Entry {
	t.Helper()
	var es []audit.Entry
	for i := range n {
		d, err := audit.Detail(map[string]any{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, audit.Entry{Actor: "alice", Action: audit.ActionPush, Repository: "quarantine/app", Detail: d})
	}
	return record(t, l, es...)
}

func mustVerify(t testing.TB, l *audit.Log) *audit.VerifyResult {
	t.Helper()
	res, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}
