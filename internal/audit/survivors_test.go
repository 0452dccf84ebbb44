package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
)

// newSQLiteBackend is an SQL backend over a new SQLite file.
func newSQLiteBackend(t *testing.T) Backend {
	t.Helper()
	db, err := database.OpenFile(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b, err := NewSQL(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tests added for the mutants that survived `make mutate`
// (test/mutation/SURVIVORS.md, fifth pass).

// TestRecordAtTheYearBounds records at the first and last instants the
// chain accepts (years 1 and 9999) and refuses the instants just outside.
// Mutants `y < 1` -> `y <= 1` and `y > 9999` -> `y >= 9999` refused the
// bounds themselves.
func TestRecordAtTheYearBounds(t *testing.T) {
	ok := Entry{Actor: "alice", Action: ActionPush}
	for _, tc := range []struct {
		at   time.Time
		fits bool
	}{
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), true},
		{time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		for name, b := range map[string]Backend{"memory": NewMemory(), "sqlite": newSQLiteBackend(t)} {
			l := newTestLog(t, b, WithClock(fixedClock{tc.at}))
			got, err := l.Record(context.Background(), ok)
			if !tc.fits {
				if !errors.Is(err, ErrInvalidEntry) {
					t.Errorf("%s: Record at %v = %v, want ErrInvalidEntry", name, tc.at, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: Record at %v: %v", name, tc.at, err)
				continue
			}
			if !got.Time.Equal(tc.at) {
				t.Errorf("%s: stored time %v, want %v", name, got.Time, tc.at)
			}
			if res := mustVerify(t, l); !res.OK() || res.Entries != 1 {
				t.Errorf("%s: Verify after a record at %v = %+v", name, tc.at, res)
			}
		}
	}
}

// TestVerifyGapBeforeMalformedRowNamesIt checks the detail of the break
// when an entry is missing and the next stored row cannot be read: it
// names the missing entry and the row found. Mutant: `res.Head.Seq+1` ->
// `-1` in that detail.
func TestVerifyGapBeforeMalformedRowNamesIt(t *testing.T) {
	m := NewMemory()
	recordN(t, newTestLog(t, m), 4)
	m.entries = append(m.entries[:1], m.entries[2:]...) // entry 2 deleted
	res := mustVerify(t, newTestLog(t, rowErrBackend{Memory: m, errSeq: 3}))
	want := Break{Seq: 2, Reason: ReasonSeqGap, Detail: "entry 2 is missing; next stored entry is 3"}
	if res.OK() || *res.Broken != want || res.Entries != 1 {
		t.Fatalf("Verify = %+v (broken %+v), want %+v after 1 entry", res, res.Broken, want)
	}
}

// TestNewest pages the log newest first, by action, on every backend.
// `make mutate` found Newest untested in this package (its limit check
// was not even covered); the API's audit route was its only user.
func TestNewest(t *testing.T) {
	check := func(t *testing.T, b Backend) {
		l := newTestLog(t, b)
		ctx := context.Background()
		// seq 1..6: push, scan, push, scan, push, scan
		for i := range 6 {
			a := ActionPush
			if i%2 == 1 {
				a = ActionScan
			}
			record(t, l, Entry{Actor: "alice", Action: a, Repository: "quarantine/app", Digest: digestA})
		}
		seqs := func(es []*Entry) []int64 {
			out := []int64{}
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		for _, tc := range []struct {
			before int64
			action Action
			limit  int
			want   []int64
		}{
			{0, "", 3, []int64{6, 5, 4}},
			{0, "", 1, []int64{6}},
			{0, "", 100, []int64{6, 5, 4, 3, 2, 1}},
			{-1, "", 2, []int64{6, 5}},
			{5, "", 10, []int64{4, 3, 2, 1}},
			{4, ActionScan, 10, []int64{2}}, // seq 4 itself is not before 4
			{5, ActionScan, 10, []int64{4, 2}},
			{0, ActionPush, 2, []int64{5, 3}},
			{1, "", 10, []int64{}},
			{0, ActionPromotion, 10, []int64{}},
		} {
			got, err := l.Newest(ctx, tc.before, tc.action, tc.limit)
			if err != nil {
				t.Fatalf("Newest(%d, %q, %d): %v", tc.before, tc.action, tc.limit, err)
			}
			if g := seqs(got); !slices.Equal(g, tc.want) {
				t.Errorf("Newest(%d, %q, %d) = seqs %v, want %v", tc.before, tc.action, tc.limit, g, tc.want)
			}
			for _, e := range got {
				if tc.action != "" && e.Action != tc.action {
					t.Errorf("Newest(%q) returned a %q entry", tc.action, e.Action)
				}
			}
		}
		for _, limit := range []int{0, -1} {
			if got, err := l.Newest(ctx, 0, "", limit); err == nil {
				t.Errorf("Newest(limit %d) = %d entries, want an error", limit, len(got))
			}
		}
	}
	t.Run("memory", func(t *testing.T) { check(t, NewMemory()) })
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		b, err := NewSQL(context.Background(), newTarget(t).Open(t, Component))
		if err != nil {
			t.Fatal(err)
		}
		check(t, b)
	})
}

// TestOpenAndOpenFile opens the log the two ways servers and tools do,
// records, and finds the entry again through a second handle. Neither
// was called by this package's tests, so `make mutate` could not cover
// their error checks.
func TestOpenAndOpenFile(t *testing.T) {
	ctx := context.Background()
	reopen := func(t *testing.T, open func() (*Log, func() error, error)) {
		for i := range 2 {
			l, closeLog, err := open()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Record(ctx, Entry{Actor: "alice", Action: ActionPush}); err != nil {
				t.Fatal(err)
			}
			res := mustVerify(t, l)
			if !res.OK() || res.Entries != int64(i+1) {
				t.Fatalf("open %d: Verify = %+v, want %d entries", i+1, res, i+1)
			}
			if err := closeLog(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("Open", func(t *testing.T) {
		tg := dbtest.SQLite(t)
		reopen(t, func() (*Log, func() error, error) { return Open(ctx, tg.Opener(t), WithClock(newStepClock())) })
		if _, _, err := Open(ctx, tg.Opener(t), WithPollInterval(0)); err == nil {
			t.Error("Open with a zero poll interval succeeded")
		}
	})
	t.Run("OpenFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.db")
		reopen(t, func() (*Log, func() error, error) { return OpenFile(path, WithClock(newStepClock())) })
		if _, _, err := OpenFile(path, WithPollInterval(0)); err == nil {
			t.Error("OpenFile with a zero poll interval succeeded")
		}
		if _, _, err := OpenFile(t.TempDir()); err == nil {
			t.Error("OpenFile on a directory succeeded")
		}
	})
}

// TestWriteTextDetailOf80Runes prints a detail of exactly 80 runes whole
// and cuts one of 81 to 79 and "…" (runes, not bytes: the padding is
// multi-byte). Mutant: `len(r) > shortDetail` -> `>=`.
func TestWriteTextDetailOf80Runes(t *testing.T) {
	for _, n := range []int{80, 81} {
		detail := `{"k":"` + strings.Repeat("é", n-8) + `"}` // 8 runes of JSON around the value
		e := Entry{Seq: 1, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Actor: "a", Action: ActionPush,
			Outcome: OutcomeOK, Detail: json.RawMessage(detail)}
		var b bytes.Buffer
		if err := WriteText(&b, &e); err != nil {
			t.Fatal(err)
		}
		want := detail
		if n > 80 {
			want = string([]rune(detail)[:79]) + "…"
		}
		if got := strings.TrimSuffix(b.String()[strings.LastIndexByte(b.String(), ' ')+1:], "\n"); got != want {
			t.Errorf("%d-rune detail printed as %q, want %q", n, got, want)
		}
	}
}

// TestWriteTextQuotesFromTheFirstRune quotes a field whose first rune is a
// space, a quote or a control character, as it does one with such a rune
// later. Mutant: `IndexFunc(...) >= 0` -> `> 0` in field.
func TestWriteTextQuotesFromTheFirstRune(t *testing.T) {
	for _, actor := range []string{" alice", "\"alice", "\nFAKE LINE", "\x1b[31malice"} {
		e := Entry{Seq: 1, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Actor: actor, Action: ActionPush, Outcome: OutcomeOK}
		var b bytes.Buffer
		if err := WriteText(&b, &e); err != nil {
			t.Fatal(err)
		}
		want := "2025-01-02T03:04:05Z      1 " + strconv.Quote(actor) + " push ok - -\n"
		if b.String() != want {
			t.Errorf("actor %q printed as %q, want %q", actor, b.String(), want)
		}
	}
}
