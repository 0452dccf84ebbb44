package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// runBackendSuite checks the Backend contract; every backend runs it.
func runBackendSuite(t *testing.T, newBackend func(t *testing.T) Backend) {
	ctx := context.Background()
	sameEntry := func(t *testing.T, got, want *Entry) {
		t.Helper()
		if !bytes.Equal(got.Canonical(), want.Canonical()) || got.Hash != want.Hash {
			t.Errorf("entry %d:\n got %+v\nwant %+v", want.Seq, got, want)
		}
	}
	t.Run("empty", func(t *testing.T) {
		b := newBackend(t)
		if e, err := b.Last(ctx); e != nil || err != nil {
			t.Fatalf("Last = %v, %v; want nil, nil", e, err)
		}
		if err := b.Scan(ctx, 0, func(e *Entry) error { t.Errorf("Scan yielded %+v", e); return nil }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("append, last and scan round-trip", func(t *testing.T) {
		b := newBackend(t)
		stored := record(t, newTestLog(t, b), sampleEntries()...)
		last, err := b.Last(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sameEntry(t, last, stored[2])
		for _, from := range []int64{-5, 0, 1, 2, 3, 4} {
			var got []*Entry
			if err := b.Scan(ctx, from, func(e *Entry) error { got = append(got, e); return nil }); err != nil {
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
	t.Run("append passes prev and rejects a wrong seq", func(t *testing.T) {
		b := newBackend(t)
		stored := record(t, newTestLog(t, b), sampleEntries()[:1]...)
		bad := *stored[0]
		_, err := b.Append(ctx, func(prev *Entry) (*Entry, error) {
			if prev == nil || prev.Hash != stored[0].Hash {
				t.Errorf("prev = %+v, want entry 1", prev)
			}
			return &bad, nil // seq 1 again
		})
		if err == nil {
			t.Fatal("Append accepted a duplicate seq")
		}
		boom := errors.New("boom")
		if _, err := b.Append(ctx, func(*Entry) (*Entry, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("Append error = %v, want %v", err, boom)
		}
		l := newTestLog(t, b)
		record(t, l, sampleEntries()[1]) // the failed appends left no transaction behind
		if res := mustVerify(t, l); !res.OK() || res.Entries != 2 {
			t.Fatalf("after failed appends: %+v", res)
		}
	})
	t.Run("scan spans batches and stops at fn's error", func(t *testing.T) {
		b := newBackend(t)
		l := newTestLog(t, b)
		recordN(t, l, 2*scanBatch+3)
		var n int64
		err := b.Scan(ctx, 1, func(e *Entry) error {
			if n++; e.Seq != n {
				t.Fatalf("entry %d at position %d", e.Seq, n)
			}
			return nil
		})
		if err != nil || n != 2*scanBatch+3 {
			t.Fatalf("Scan: %d entries, %v", n, err)
		}
		stop := errors.New("stop")
		n = 0
		if err := b.Scan(ctx, 1, func(*Entry) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("Scan = %v after %d calls, want stop after 1", err, n)
		}
		if res := mustVerify(t, l); !res.OK() || res.Entries != 2*scanBatch+3 {
			t.Fatalf("Verify = %+v", res)
		}
	})
	t.Run("scan callback may append", func(t *testing.T) {
		b := newBackend(t)
		l := newTestLog(t, b)
		recordN(t, l, 2)
		err := b.Scan(ctx, 1, func(e *Entry) error {
			_, err := l.Record(ctx, Entry{Actor: "x", Action: ActionScan})
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
		b := newBackend(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := newTestLog(t, b).Record(cctx, sampleEntries()[0]); err == nil {
			t.Fatal("Record with a cancelled context succeeded")
		}
	})
}

func TestMemoryBackend(t *testing.T) {
	runBackendSuite(t, func(*testing.T) Backend { return NewMemory() })
}
