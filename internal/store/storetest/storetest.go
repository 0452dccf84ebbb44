// Package storetest is the conformance suite of store.Store: every
// implementation, on every database engine, passes Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
)

// Factory makes a fresh, empty store for t and returns a function that
// opens handles on it; two handles behave as two processes sharing the
// store would. Handles are closed when t ends.
type Factory func(t *testing.T) (open func() store.Store)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Digest returns a well-formed sha256 digest numbered n.
func Digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func pass(at time.Time) gate.Verdict { return gate.Verdict{State: gate.StatePass, At: at} }

func fail(at time.Time, msg string) gate.Verdict {
	return gate.Verdict{State: gate.StateFail, At: at, Reasons: []gate.Reason{{Rule: gate.RuleMaxSeverity, Message: msg}}}
}

// put stores im as digest's record, whatever was there.
func put(t *testing.T, s store.Store, im store.Image) {
	t.Helper()
	if _, err := s.UpdateImage(context.Background(), im.Digest, func(*store.Image) (*store.Image, error) { return &im, nil }); err != nil {
		t.Fatal(err)
	}
}

// supportsProcesses reports whether s is on a database several processes
// work at once (PostgreSQL): Serialize then excludes other handles too.
// A SQLite file is worked by one process.
func supportsProcesses(s store.Store) bool {
	type driver interface{ Driver() database.Driver }
	d, ok := s.(driver)
	return ok && d.Driver() == database.Postgres
}

// Run runs the conformance suite against the stores newStore makes.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()

	t.Run("update, read back, promote, reopen", func(t *testing.T) {
		open := newStore(t)
		s := open()
		d := Digest(1)
		if _, err := s.Image(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown digest: %v", err)
		}
		if _, err := s.UpdateImage(ctx, "sha256:nothex", func(*store.Image) (*store.Image, error) { return nil, nil }); err == nil {
			t.Error("malformed digest accepted")
		}
		var sawPrev *store.Image
		got, err := s.UpdateImage(ctx, d, func(prev *store.Image) (*store.Image, error) {
			sawPrev = prev
			return &store.Image{Repository: "quarantine/app", Verdict: fail(t0, "CVE-1"), UpdatedAt: t0}, nil
		})
		if err != nil || sawPrev != nil || got.Digest != d || got.Verdict.State != gate.StateFail {
			t.Fatalf("first update: prev %+v, got %+v, %v", sawPrev, got, err)
		}
		if err := s.MarkPromoted(ctx, d, t0); err == nil || !strings.Contains(err.Error(), "not promotable") {
			t.Errorf("promoting a failing digest: %v", err)
		}
		put(t, s, store.Image{Digest: d, Repository: "quarantine/app", Verdict: pass(t0.Add(time.Minute)), UpdatedAt: t0.Add(time.Minute)})
		if err := s.MarkPromoted(ctx, d, t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkPromoted(ctx, Digest(9), t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("promoting an unknown digest: %v", err)
		}
		other := open() // another process
		im, err := other.Image(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if !im.Promoted || im.Verdict.State != gate.StatePass || im.Repository != "quarantine/app" || !im.UpdatedAt.Equal(t0.Add(2*time.Minute)) || !im.Verdict.At.Equal(t0.Add(time.Minute)) {
			t.Errorf("read from another handle: %+v", im)
		}
		h, err := other.History(ctx, d)
		if err != nil || len(h) != 2 || h[0].State != gate.StateFail || h[1].State != gate.StatePass {
			t.Errorf("history: %+v, %v (promotion adds none)", h, err)
		}
		// fn sees the stored record, promoted flag included.
		if _, err := other.UpdateImage(ctx, d, func(prev *store.Image) (*store.Image, error) {
			if prev == nil || !prev.Promoted || prev.Verdict.State != gate.StatePass {
				t.Errorf("fn got %+v", prev)
			}
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("nil stores nothing; same verdict adds no history; errors roll back", func(t *testing.T) {
		s := newStore(t)()
		d := Digest(2)
		put(t, s, store.Image{Digest: d, Repository: "quarantine/app", Verdict: pass(t0), UpdatedAt: t0})
		got, err := s.UpdateImage(ctx, d, func(*store.Image) (*store.Image, error) { return nil, nil })
		if err != nil || !got.UpdatedAt.Equal(t0) || !got.Verdict.At.Equal(t0) {
			t.Fatalf("nil update: %+v, %v", got, err)
		}
		// The same verdict with a later update time: the record changes,
		// the history does not.
		put(t, s, store.Image{Digest: d, Repository: "quarantine/app", Verdict: pass(t0), UpdatedAt: t0.Add(time.Hour)})
		if h, _ := s.History(ctx, d); len(h) != 1 {
			t.Errorf("%d history records for one verdict stored twice, want 1", len(h))
		}
		if im, _ := s.Image(ctx, d); !im.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("updated at %s", im.UpdatedAt)
		}
		boom := errors.New("boom")
		_, err = s.UpdateImage(ctx, d, func(*store.Image) (*store.Image, error) { return nil, fmt.Errorf("deciding: %w", boom) })
		if !errors.Is(err, boom) {
			t.Errorf("fn error came back as %v", err)
		}
		if _, err := s.UpdateImage(ctx, Digest(3), func(*store.Image) (*store.Image, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("fn error on a new digest came back as %v", err)
		}
		if _, err := s.Image(ctx, Digest(3)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a failed update created a record: %v", err)
		}
	})

	t.Run("concurrent updates from two handles lose nothing", func(t *testing.T) {
		open := newStore(t)
		a, b := open(), open()
		const workers, each, digests = 8, 15, 3
		var wg sync.WaitGroup
		errc := make(chan error, workers*each)
		for w := range workers {
			s := a
			if w%2 == 1 {
				s = b
			}
			wg.Go(func() {
				for i := range each {
					d := Digest(100 + i%digests)
					_, err := s.UpdateImage(ctx, d, func(prev *store.Image) (*store.Image, error) {
						next := store.Image{Repository: "quarantine/app", Verdict: pass(t0), UpdatedAt: t0}
						if prev != nil {
							next = *prev
						}
						// Each update appends to what it read: a lost
						// update shows as a missing reason.
						next.Verdict.Reasons = append(next.Verdict.Reasons, gate.Reason{Rule: "test", Message: fmt.Sprint(w, "/", i)})
						return &next, nil
					})
					errc <- err
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		total, hist := 0, 0
		for i := range digests {
			im, err := a.Image(ctx, Digest(100+i))
			if err != nil {
				t.Fatal(err)
			}
			total += len(im.Verdict.Reasons)
			h, err := b.History(ctx, Digest(100+i))
			if err != nil {
				t.Fatal(err)
			}
			hist += len(h)
		}
		if total != workers*each || hist != workers*each {
			t.Errorf("%d reasons and %d history records after %d updates: updates were lost", total, hist, workers*each)
		}
	})

	t.Run("list, filters and counts", func(t *testing.T) {
		s := newStore(t)()
		for i, st := range []gate.State{gate.StatePass, gate.StateFail, gate.StatePass, gate.StatePending} {
			repo := "quarantine/a"
			if i%2 == 1 {
				repo = "quarantine/b"
			}
			at := t0.Add(time.Duration(i) * time.Second)
			if i == 2 {
				at = at.Add(500 * time.Millisecond) // fractions must sort too
			}
			put(t, s, store.Image{Digest: Digest(10 + i), Repository: repo, Verdict: gate.Verdict{State: st, At: at}, UpdatedAt: at})
		}
		all, err := s.List(ctx, store.Filter{})
		if err != nil || len(all) != 4 {
			t.Fatalf("List: %d, %v", len(all), err)
		}
		for i, want := range []int{13, 12, 11, 10} {
			if all[i].Digest != Digest(want) {
				t.Errorf("List[%d] = %s, want digest %d (newest first)", i, all[i].Digest, want)
			}
		}
		if got, _ := s.List(ctx, store.Filter{Repository: "quarantine/b"}); len(got) != 2 {
			t.Errorf("List(repository b) = %d", len(got))
		}
		if got, _ := s.List(ctx, store.Filter{State: gate.StatePass}); len(got) != 2 || got[0].Digest != Digest(12) {
			t.Errorf("List(pass) = %+v", got)
		}
		if got, _ := s.List(ctx, store.Filter{Limit: 3}); len(got) != 3 {
			t.Errorf("List(limit 3) = %d", len(got))
		}
		counts, err := s.CountByState(ctx)
		if err != nil || counts["pass"] != 2 || counts["fail"] != 1 || counts["pending"] != 1 {
			t.Errorf("CountByState = %v, %v", counts, err)
		}
	})

	t.Run("scans and sources", func(t *testing.T) {
		s := newStore(t)()
		d := Digest(20)
		if _, err := s.Scan(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Scan of an unscanned digest: %v", err)
		}
		if err := s.SetSource(ctx, d, "quarantine/app", "docker.io/library/app:1"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Scan(ctx, d); err != nil || got.Source != "docker.io/library/app:1" || !got.ScannedAt.IsZero() {
			t.Fatalf("source only: %+v, %v", got, err)
		}
		built := t0.Add(-time.Hour)
		sc := store.Scan{Digest: d, Repository: "quarantine/app", ScannedAt: t0,
			Reports: []store.PlatformReport{{Digest: d, Report: &scan.Report{Status: scan.StatusOK}}}}
		sc.Reports[0].Report.DB.BuiltAt = built
		if err := s.PutScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		got, err := s.Scan(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if got.Source != "docker.io/library/app:1" || !got.ScannedAt.Equal(t0) || len(got.Reports) != 1 || got.Reports[0].Report.Status != scan.StatusOK {
			t.Fatalf("scan %+v", got)
		}
		states, err := s.ScanStates(ctx)
		if err != nil || len(states) != 1 || !states[0].DBBuiltAt.Equal(built) || !states[0].ScannedAt.Equal(t0) {
			t.Fatalf("ScanStates = %+v, %v", states, err)
		}
		sc.Error, sc.Reports = "boom", nil
		if err := s.PutScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Scan(ctx, d); got.Error != "boom" || got.Source == "" || len(got.Reports) != 0 {
			t.Fatalf("after a failed scan: %+v", got)
		}
		// A permanent failure is stored and listed as such; a successful
		// scan is never permanent.
		if err := s.PutScan(ctx, store.Scan{Digest: d, Repository: "quarantine/app", Error: "over the package limit", Permanent: true}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Scan(ctx, d); !got.Permanent {
			t.Errorf("stored permanent failure: %+v", got)
		}
		if states, _ := s.ScanStates(ctx); len(states) != 1 || !states[0].Permanent {
			t.Errorf("listed: %+v", states)
		}
		if err := s.PutScan(ctx, store.Scan{Digest: d, Repository: "quarantine/app", ScannedAt: t0, Permanent: true}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Scan(ctx, d); got.Permanent || got.Error != "" {
			t.Errorf("after a successful scan: %+v", got)
		}
		if err := s.PutScan(ctx, store.Scan{Digest: "nope"}); err == nil {
			t.Fatal("bad digest accepted")
		}
		if err := s.SetSource(ctx, "nope", "", ""); err == nil {
			t.Fatal("bad digest accepted by SetSource")
		}
	})

	runFindings(t, newStore)
	runHistory(t, newStore)

	t.Run("settings", func(t *testing.T) {
		open := newStore(t)
		s := open()
		if v, err := s.Setting(ctx, "k"); err != nil || v != "" {
			t.Fatalf("unset setting: %q %v", v, err)
		}
		for _, v := range []string{"a", "b"} {
			if err := s.SetSetting(ctx, "k", v); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := open().Setting(ctx, "k"); err != nil || v != "b" {
			t.Fatalf("setting from a second handle: %q %v", v, err)
		}
		// Of several swappers of one value, one wins.
		a, b := open(), open()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if ok, err := []store.Store{a, b}[i%2].SwapSetting(ctx, "k", "b", fmt.Sprint("c", i)); err != nil {
					t.Error(err)
				} else if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d swaps of one value succeeded, want 1", wins.Load())
		}
		if ok, err := a.SwapSetting(ctx, "new", "", "x"); err != nil || !ok {
			t.Errorf("swap of an unset key: %v %v", ok, err)
		}
		if ok, _ := b.SwapSetting(ctx, "new", "", "y"); ok {
			t.Error("an unset key was set twice")
		}
		// An empty value counts as unset.
		if err := a.SetSetting(ctx, "empty", ""); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.SwapSetting(ctx, "empty", "", "z"); err != nil || !ok {
			t.Errorf("swap of an empty value: %v %v", ok, err)
		}
	})

	t.Run("serialize excludes concurrent decisions on a digest", func(t *testing.T) {
		open := newStore(t)
		a := open()
		handles := []store.Store{a, a}
		if other := open(); supportsProcesses(other) {
			handles[1] = other // a database several processes share
		}
		d := Digest(30)
		var inside, max atomic.Int32
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				err := handles[i%2].Serialize(ctx, d, func(ctx context.Context) error {
					if n := inside.Add(1); n > max.Load() {
						max.Store(n)
					}
					time.Sleep(20 * time.Millisecond)
					inside.Add(-1)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if max.Load() != 1 {
			t.Errorf("%d decisions on one digest ran at once, want 1", max.Load())
		}
		boom := errors.New("boom")
		if err := a.Serialize(ctx, d, func(context.Context) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("fn's error came back as %v", err)
		}
	})
}
