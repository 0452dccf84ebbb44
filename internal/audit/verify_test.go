package audit

import (
	"context"
	"errors"
	"testing"
)

// rehash recomputes the hashes of es from index i on, as a careful forger
// would.
func rehash(es []*Entry, i int) {
	for ; i < len(es); i++ {
		if i > 0 {
			es[i].PrevHash = es[i-1].Hash
		}
		es[i].Hash = es[i].ComputeHash()
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name       string
		tamper     func(es []*Entry) []*Entry // 6 entries; seqs 1..6 at indexes 0..5
		wantSeq    int64
		wantReason Reason
		wantOK     bool
		wantCount  int64
	}{
		{name: "untouched", tamper: func(es []*Entry) []*Entry { return es }, wantOK: true, wantCount: 6},
		{name: "edit actor", tamper: func(es []*Entry) []*Entry { es[2].Actor = "mallory"; return es },
			wantSeq: 3, wantReason: ReasonHashMismatch},
		{name: "edit digest", tamper: func(es []*Entry) []*Entry { es[0].Digest = digestB; return es },
			wantSeq: 1, wantReason: ReasonHashMismatch},
		{name: "edit detail", tamper: func(es []*Entry) []*Entry { es[5].Detail = []byte(`{"i":99}`); return es },
			wantSeq: 6, wantReason: ReasonHashMismatch},
		{name: "edit time", tamper: func(es []*Entry) []*Entry { es[3].Time = es[3].Time.Add(1000); return es },
			wantSeq: 4, wantReason: ReasonHashMismatch},
		{name: "edit stored hash", tamper: func(es []*Entry) []*Entry { es[1].Hash = es[0].Hash; return es },
			wantSeq: 2, wantReason: ReasonHashMismatch},
		{name: "edit and rehash one entry", tamper: func(es []*Entry) []*Entry {
			es[2].Actor = "mallory"
			es[2].Hash = es[2].ComputeHash()
			return es
		}, wantSeq: 4, wantReason: ReasonPrevMismatch},
		{name: "delete middle", tamper: func(es []*Entry) []*Entry { return append(es[:2], es[3:]...) },
			wantSeq: 3, wantReason: ReasonSeqGap},
		{name: "delete first", tamper: func(es []*Entry) []*Entry { return es[1:] },
			wantSeq: 1, wantReason: ReasonSeqGap},
		{name: "delete middle and renumber", tamper: func(es []*Entry) []*Entry {
			es = append(es[:2], es[3:]...)
			for i := 2; i < len(es); i++ {
				es[i].Seq--
			}
			return es
		}, wantSeq: 3, wantReason: ReasonHashMismatch},
		{name: "delete middle, renumber and rehash", tamper: func(es []*Entry) []*Entry {
			es = append(es[:2], es[3:]...)
			for i := 2; i < len(es); i++ {
				es[i].Seq--
			}
			rehash(es, 2)
			return es
		}, wantOK: true, wantCount: 5}, // the documented limit: a full rewrite needs an anchor
		{name: "swap contents", tamper: func(es []*Entry) []*Entry {
			es[1].Seq, es[4].Seq = es[4].Seq, es[1].Seq
			es[1], es[4] = es[4], es[1]
			return es
		}, wantSeq: 2, wantReason: ReasonHashMismatch},
		{name: "swap order", tamper: func(es []*Entry) []*Entry { es[1], es[2] = es[2], es[1]; return es },
			wantSeq: 2, wantReason: ReasonSeqGap},
		{name: "insert before first", tamper: func(es []*Entry) []*Entry {
			x := *es[0]
			x.Seq = 0
			return append([]*Entry{&x}, es...)
		}, wantSeq: 0, wantReason: ReasonSeqGap},
		{name: "insert duplicate", tamper: func(es []*Entry) []*Entry {
			x := *es[3]
			return append(es[:4], append([]*Entry{&x}, es[4:]...)...)
		}, wantSeq: 4, wantReason: ReasonSeqGap, wantCount: 4},
		{name: "replace with forged entry", tamper: func(es []*Entry) []*Entry {
			x := *es[3]
			x.PrevHash = GenesisHash
			x.Hash = x.ComputeHash()
			es[3] = &x
			return es
		}, wantSeq: 4, wantReason: ReasonPrevMismatch},
		{name: "truncate tail", tamper: func(es []*Entry) []*Entry { return es[:4] }, wantOK: true, wantCount: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory()
			l := newTestLog(t, m)
			recordN(t, l, 6)
			m.entries = tt.tamper(m.entries)
			res := mustVerify(t, l)
			if tt.wantOK {
				if !res.OK() || res.Entries != tt.wantCount {
					t.Fatalf("Verify = %+v, want intact with %d entries", res, tt.wantCount)
				}
				return
			}
			if res.OK() {
				t.Fatalf("Verify = %+v, want broken at %d", res, tt.wantSeq)
			}
			if res.Broken.Seq != tt.wantSeq || res.Broken.Reason != tt.wantReason {
				t.Fatalf("Verify broken at %v, want entry %d: %s", res.Broken, tt.wantSeq, tt.wantReason)
			}
			want := max(tt.wantSeq-1, 0)
			if tt.wantCount != 0 {
				want = tt.wantCount
			}
			if res.Entries != want || res.Head.Seq != want {
				t.Fatalf("Verify = %+v, want %d intact entries before the break", res, want)
			}
		})
	}
}

func TestVerifyFrom(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		tamper     func(es []*Entry) []*Entry
		anchorSeq  int64 // anchor is the untampered entry with this seq
		wantSeq    int64
		wantReason Reason
	}{
		{name: "intact, anchor at head", tamper: func(es []*Entry) []*Entry { return es }, anchorSeq: 5},
		{name: "intact, anchor in the middle", tamper: func(es []*Entry) []*Entry { return es }, anchorSeq: 2},
		{name: "grown since the anchor", tamper: func(es []*Entry) []*Entry { return es }, anchorSeq: 3},
		{name: "truncated", tamper: func(es []*Entry) []*Entry { return es[:3] }, anchorSeq: 5,
			wantSeq: 4, wantReason: ReasonTruncated},
		{name: "emptied", tamper: func(es []*Entry) []*Entry { return nil }, anchorSeq: 5,
			wantSeq: 1, wantReason: ReasonTruncated},
		{name: "rewritten and rehashed", tamper: func(es []*Entry) []*Entry {
			es[1].Actor = "mallory"
			rehash(es, 1)
			return es
		}, anchorSeq: 5, wantSeq: 5, wantReason: ReasonAnchorMismatch},
		{name: "edited before the anchor", tamper: func(es []*Entry) []*Entry { es[0].Actor = "mallory"; return es },
			anchorSeq: 5, wantSeq: 1, wantReason: ReasonHashMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory()
			l := newTestLog(t, m)
			stored := recordN(t, l, 5)
			anchor := Anchor{Seq: tt.anchorSeq, Hash: stored[tt.anchorSeq-1].Hash}
			m.entries = tt.tamper(m.entries)
			res, err := l.VerifyFrom(ctx, anchor)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantSeq == 0 {
				if !res.OK() {
					t.Fatalf("VerifyFrom(%v) = %v", anchor, res.Broken)
				}
				return
			}
			if res.OK() || res.Broken.Seq != tt.wantSeq || res.Broken.Reason != tt.wantReason {
				t.Fatalf("VerifyFrom(%v) = %+v, want entry %d: %s", anchor, res, tt.wantSeq, tt.wantReason)
			}
		})
	}
	l := newTestLog(t, NewMemory())
	if _, err := l.VerifyFrom(ctx, Anchor{Seq: 1, Hash: "nothex"}); err == nil {
		t.Error("VerifyFrom accepted a malformed anchor")
	}
	if res, err := l.VerifyFrom(ctx, Anchor{Hash: GenesisHash}); err != nil || !res.OK() || res.Head != (Anchor{Hash: GenesisHash}) {
		t.Errorf("VerifyFrom(genesis) on an empty log = %+v, %v", res, err)
	}
}

// rowErrBackend yields entries, then a RowError, then fails.
type rowErrBackend struct {
	*Memory
	errSeq int64
	err    error
}

func (b rowErrBackend) Scan(ctx context.Context, from int64, fn func(*Entry) error) error {
	err := b.Memory.Scan(ctx, from, func(e *Entry) error {
		if e.Seq >= b.errSeq {
			return &RowError{Seq: e.Seq, Err: errors.New("bad time")}
		}
		return fn(e)
	})
	if err == nil {
		err = b.err
	}
	return err
}

func TestVerifyReportsMalformedRows(t *testing.T) {
	m := NewMemory()
	recordN(t, newTestLog(t, m), 4)
	res := mustVerify(t, newTestLog(t, rowErrBackend{Memory: m, errSeq: 3}))
	if res.OK() || res.Broken.Seq != 3 || res.Broken.Reason != ReasonMalformed || res.Entries != 2 {
		t.Fatalf("Verify = %+v, want entry 3 malformed", res)
	}
	m.entries = append(m.entries[:1], m.entries[2:]...)
	res = mustVerify(t, newTestLog(t, rowErrBackend{Memory: m, errSeq: 3}))
	if res.OK() || res.Broken.Seq != 2 || res.Broken.Reason != ReasonSeqGap {
		t.Fatalf("Verify = %+v, want entry 2 missing", res)
	}
	boom := errors.New("disk on fire")
	m = NewMemory()
	recordN(t, newTestLog(t, m), 2)
	_, err := newTestLog(t, rowErrBackend{Memory: m, errSeq: 99, err: boom}).Verify(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("Verify error = %v, want %v", err, boom)
	}
}
