package audit

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The golden chain: sampleEntries recorded with newStepClock; entry 1 was
// also checked against an independent implementation of the documented
// encoding. Changing the
// canonical encoding changes these hashes and breaks every stored log; bump
// canonicalTag instead.
var goldenHashes = []string{
	"d5c4e2e7cb5d7ad21fd85196209c60f0cdd72cd73e742373c076650a00ce1478",
	"9dbd470719886563214ceb61a8af36688ce3562325f8904563187a6c1e39f0fe",
	"adb6760b2b1841298032d4f784bc9e3faf91c2a650d975b3b7dd2794591fcdfd",
}

func TestGoldenChain(t *testing.T) {
	l := newTestLog(t, NewMemory())
	stored := record(t, l, sampleEntries()...)
	for i, e := range stored {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d", i+1, e.Seq)
		}
		if e.Hash != goldenHashes[i] {
			t.Errorf("entry %d hash = %s, want %s", e.Seq, e.Hash, goldenHashes[i])
		}
		wantPrev := GenesisHash
		if i > 0 {
			wantPrev = stored[i-1].Hash
		}
		if e.PrevHash != wantPrev {
			t.Errorf("entry %d prev_hash = %s, want %s", e.Seq, e.PrevHash, wantPrev)
		}
	}
	if got, want := stored[0].Time, time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC); !got.Equal(want) {
		t.Errorf("time = %v, want %v (truncated to microseconds)", got, want)
	}
	if got, want := string(stored[1].Detail), `{"critical":1,"db":"2025-01-01","high":2}`; got != want {
		t.Errorf("detail = %s, want canonical %s", got, want)
	}
	if stored[0].Outcome != OutcomeOK {
		t.Errorf("empty outcome recorded as %q, want ok", stored[0].Outcome)
	}
	res := mustVerify(t, l)
	if !res.OK() || res.Entries != 3 || res.Head != (Anchor{3, goldenHashes[2]}) {
		t.Fatalf("Verify = %+v", res)
	}
	head, err := l.Head(context.Background())
	if err != nil || head != res.Head {
		t.Fatalf("Head = %v, %v; want %v", head, err, res.Head)
	}
}

func TestCanonicalIsInjective(t *testing.T) {
	base := Entry{Seq: 7, Time: time.Unix(1700000000, 5000).UTC(), Actor: "ab", Action: ActionPush,
		Repository: "r", Reference: "t", Digest: "d", Outcome: OutcomeOK, Detail: json.RawMessage(`{"a":1}`), PrevHash: GenesisHash}
	tests := []struct {
		name string
		edit func(*Entry)
	}{
		{"seq", func(e *Entry) { e.Seq = 8 }},
		{"time", func(e *Entry) { e.Time = e.Time.Add(time.Microsecond) }},
		{"actor", func(e *Entry) { e.Actor = "ac" }},
		{"shift actor into action", func(e *Entry) { e.Actor, e.Action = "a", "bpush" }},
		{"shift repository into reference", func(e *Entry) { e.Repository, e.Reference = "", "rt" }},
		{"action", func(e *Entry) { e.Action = ActionScan }},
		{"digest", func(e *Entry) { e.Digest = "" }},
		{"outcome", func(e *Entry) { e.Outcome = OutcomeRefused }},
		{"detail", func(e *Entry) { e.Detail = json.RawMessage(`{"a":2}`) }},
		{"no detail", func(e *Entry) { e.Detail = nil }},
		{"prev hash", func(e *Entry) { e.PrevHash = strings.Repeat("1", 64) }},
	}
	baseHash := base.ComputeHash()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			tt.edit(&e)
			if e.ComputeHash() == baseHash {
				t.Fatalf("edit of %s does not change the hash", tt.name)
			}
		})
	}
	e := base
	e.Hash = "anything"
	e.Time = base.Time.In(time.FixedZone("X", 3600))
	if e.ComputeHash() != baseHash {
		t.Error("hash depends on Hash or the time zone")
	}
}

func TestRecordRejects(t *testing.T) {
	ok := Entry{Actor: "alice", Action: ActionPush}
	tests := []struct {
		name string
		edit func(*Entry)
	}{
		{"no actor", func(e *Entry) { e.Actor = "" }},
		{"unknown action", func(e *Entry) { e.Action = "pushed" }},
		{"empty action", func(e *Entry) { e.Action = "" }},
		{"unknown outcome", func(e *Entry) { e.Outcome = "maybe" }},
		{"invalid UTF-8", func(e *Entry) { e.Repository = "a\xffb" }},
		{"NUL byte", func(e *Entry) { e.Digest = "sha256:\x00" }},
		{"NUL byte first", func(e *Entry) { e.Actor = "\x00alice" }}, // a mutant of make mutate (>= 0 to > 0) let it through
		{"detail not JSON", func(e *Entry) { e.Detail = json.RawMessage(`{`) }},
		{"detail an array", func(e *Entry) { e.Detail = json.RawMessage(`[1]`) }},
		{"detail trailing data", func(e *Entry) { e.Detail = json.RawMessage(`{} {}`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t, NewMemory())
			e := ok
			tt.edit(&e)
			if _, err := l.Record(context.Background(), e); !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("Record = %v, want ErrInvalidEntry", err)
			}
			if head, _ := l.Head(context.Background()); head.Seq != 0 {
				t.Fatalf("rejected entry stored: head %v", head)
			}
		})
	}
	l := newTestLog(t, NewMemory(), WithClock(fixedClock{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}))
	if _, err := l.Record(context.Background(), ok); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("Record at year 10000 = %v, want ErrInvalidEntry", err)
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestDetail(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    string
		wantErr bool
	}{
		{"nil", nil, "", false},
		{"nil map", map[string]any(nil), "", false},
		{"empty map", map[string]any{}, "{}", false},
		{"sorted keys", map[string]any{"b": 1, "a": "x<y"}, `{"a":"x\u003cy","b":1}`, false},
		{"big integer kept exact", map[string]int64{"n": 9007199254740993}, `{"n":9007199254740993}`, false},
		{"struct", struct {
			Policy string `json:"policy"`
		}{"default"}, `{"policy":"default"}`, false},
		{"not an object", []int{1}, "", true},
		{"not encodable", map[string]any{"f": func() {}}, "", true},
		{"NaN", map[string]any{"f": nanValue()}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detail(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Detail error = %v, wantErr %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("Detail = %s, want %s", got, tt.want)
			}
			if again, err := canonicalDetail(got); err != nil || string(again) != string(got) {
				t.Fatalf("canonical form not stable: %s -> %s, %v", got, again, err)
			}
		})
	}
}

func nanValue() float64 {
	var zero float64
	return zero / zero
}

func TestParseAnchor(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		in      string
		want    Anchor
		wantErr bool
	}{
		{"12:" + h, Anchor{12, h}, false},
		{"12:" + strings.ToUpper(h), Anchor{12, h}, false},
		{"0:" + GenesisHash, Anchor{0, GenesisHash}, false},
		{"0:" + h, Anchor{}, true},
		{"-1:" + h, Anchor{}, true},
		{"12", Anchor{}, true},
		{"x:" + h, Anchor{}, true},
		{"12:abc", Anchor{}, true},
		{"12:" + strings.Repeat("g", 64), Anchor{}, true},
	}
	for _, tt := range tests {
		got, err := ParseAnchor(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAnchor(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			if back, err := ParseAnchor(got.String()); err != nil || back != got {
				t.Errorf("round trip of %v = %v, %v", got, back, err)
			}
		}
	}
	if s := (Anchor{}).String(); s != "0:"+GenesisHash {
		t.Errorf("zero Anchor prints %q", s)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		b    Backend
		opts []Option
	}{
		{"nil backend", nil, nil},
		{"nil clock", NewMemory(), []Option{WithClock(nil)}},
		{"zero poll", NewMemory(), []Option{WithPollInterval(0)}},
		{"negative poll", NewMemory(), []Option{WithPollInterval(-time.Second)}},
		{"nil notify", NewMemory(), []Option{WithNotify(nil)}},
	}
	for _, tt := range tests {
		if _, err := New(tt.b, tt.opts...); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}
