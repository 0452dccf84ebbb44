package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzCanonicalSplit checks that the length prefixes keep field boundaries:
// moving bytes from one field to the next always changes the encoding.
func FuzzCanonicalSplit(f *testing.F) {
	f.Add("quarantine/nginx", uint8(3), uint8(4))
	f.Add("", uint8(0), uint8(0))
	f.Add("\x00\x00\x00\x00\x00\x00\x00\x01a", uint8(1), uint8(8))
	f.Fuzz(func(t *testing.T, s string, i, j uint8) {
		split := func(k uint8) *Entry {
			n := min(int(k), len(s))
			return &Entry{Seq: 1, Actor: s[:n], Repository: s[n:], Action: ActionPush, PrevHash: GenesisHash}
		}
		a, b := split(i), split(j)
		same := bytes.Equal(a.Canonical(), b.Canonical())
		if same != (a.Actor == b.Actor) {
			t.Fatalf("splits %q|%q and %q|%q: canonical equal = %v", a.Actor, a.Repository, b.Actor, b.Repository, same)
		}
	})
}

// FuzzCanonicalDetail checks that detail canonicalization never panics,
// yields valid JSON and is idempotent.
func FuzzCanonicalDetail(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"b":1,"a":[1,2.50,{"z":null}]}`, `{"n":1e400}`, `{"a":"\ud800"}`, `{"a":1,"a":2}`, `[1]`, `{`, " "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := canonicalDetail(raw)
		if err != nil || d == nil {
			return
		}
		if !json.Valid(d) {
			t.Fatalf("canonical detail %q is not valid JSON", d)
		}
		again, err := canonicalDetail(d)
		if err != nil || !bytes.Equal(again, d) {
			t.Fatalf("not idempotent: %q -> %q, %v", d, again, err)
		}
	})
}

// FuzzVerifyStoredRow replaces one stored row of a valid chain with
// arbitrary column values, decoded as the SQLite backend decodes rows.
// Verify must not panic, must accept an unchanged row, and must report a
// break no later than any changed one.
func FuzzVerifyStoredRow(f *testing.F) {
	chain := func(t testing.TB) (*Memory, *Log, []*Entry) {
		m := NewMemory()
		l := newTestLog(t, m)
		return m, l, record(t, l, append(sampleEntries(), sampleEntries()[0])...)
	}
	_, _, seeds := chain(f)
	for i, e := range seeds {
		cols := []string{e.Time.Format(time.RFC3339Nano), e.Actor, string(e.Action), e.Repository, e.Reference,
			e.Digest, e.Outcome, string(e.Detail), e.PrevHash, e.Hash}
		f.Add(uint8(i), e.Seq, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9])
		f.Add(uint8(i), e.Seq, cols[0], "mallory", cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9])
		f.Add(uint8(i), e.Seq+1, "2025-01-02T03:04:05+01:00", cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], `{"a":`, cols[8], cols[9])
	}
	f.Fuzz(func(t *testing.T, idx uint8, seq int64, tm, actor, action, repo, ref, digest, outcome, detail, prev, hash string) {
		m, l, stored := chain(t)
		k := int(idx) % len(stored)
		orig := stored[k]
		e, err := decodeRow(seq, [10]any{tm, actor, action, repo, ref, digest, outcome, []byte(detail), prev, hash})
		if err != nil {
			return // the SQLite backend reports this row as malformed
		}
		m.entries[k] = e
		res := mustVerify(t, l)
		unchanged := e.Seq == orig.Seq && e.Hash == orig.Hash && bytes.Equal(e.Canonical(), orig.Canonical())
		switch {
		case unchanged && !res.OK():
			t.Fatalf("unchanged row %d reported broken: %v", orig.Seq, res.Broken)
		case !unchanged && res.OK():
			t.Fatalf("changed row %d (%+v) not detected", orig.Seq, e)
		case !unchanged && res.Broken.Seq > orig.Seq:
			t.Fatalf("changed row %d reported at %v", orig.Seq, res.Broken)
		}
	})
}
