package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// clocked is a store whose history clock a test sets.
type clocked interface {
	SetClock(func() time.Time)
}

func runHistory(t *testing.T, newStore Factory) {
	ctx := context.Background()
	H, C, L := vulndb.SeverityHigh, vulndb.SeverityCritical, vulndb.SeverityLow

	t.Run("findings history", func(t *testing.T) {
		open := newStore(t)
		s, other := open(), open()
		now := t0
		for _, h := range []store.Store{s, other} {
			c, ok := h.(clocked)
			if !ok {
				t.Skip("the store has no clock to set")
			}
			c.SetClock(func() time.Time { return now })
		}
		put := func(h store.Store, sc store.Scan) {
			t.Helper()
			if err := h.PutScan(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		series := func(h store.Store, days int) string {
			t.Helper()
			ps, err := h.FindingHistory(ctx, days)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range ps {
				out = append(out, fmt.Sprintf("%s %v", p.Day[5:], p.Fixable))
			}
			return strings.Join(out, "; ")
		}
		a, b := Digest(80), Digest(81)
		put(s, ScanOf(a, "quarantine/app", map[string][]scan.Finding{"": {Finding("CVE-1", "p", "p", H, "1"), Finding("CVE-2", "q", "q", H, "1"),
			Finding("CVE-3", "r", "r", L, "")}}))
		now = t0.AddDate(0, 0, 2)
		// Another replica writes the next change; unfixable findings change nothing.
		put(other, ScanOf(b, "quarantine/b", map[string][]scan.Finding{"": {Finding("CVE-4", "p", "p", C, "2"), Finding("CVE-5", "p", "p", L, "")}}))
		want := "11-22 map[]; 11-23 map[]; 11-24 map[HIGH:2]; 11-25 map[HIGH:2]; 11-26 map[CRITICAL:1 HIGH:2]"
		if got := series(s, 5); got != want {
			t.Errorf("history:\n got %s\nwant %s", got, want)
		}
		// A rescan without the HIGH findings on the same day replaces the day's value.
		put(s, ScanOf(a, "quarantine/app", map[string][]scan.Finding{"": {Finding("CVE-3", "r", "r", L, "")}}))
		if got := series(other, 2); got != "11-25 map[HIGH:2]; 11-26 map[CRITICAL:1]" {
			t.Errorf("history after a rescan: %s", got)
		}
		// A failed scan removes its findings from the totals too.
		put(s, store.Scan{Digest: b, Repository: "quarantine/b", Error: "boom"})
		if got := series(s, 1); got != "11-26 map[]" {
			t.Errorf("history after a failed scan: %s", got)
		}
		// Bounded: a write long after forgets old days, but keeps the last
		// value before the kept window as its start.
		put(s, ScanOf(a, "quarantine/app", map[string][]scan.Finding{"": {Finding("CVE-6", "r", "r", L, "3")}}))
		now = t0.AddDate(0, 0, 2+store.HistoryDays+30)
		put(s, ScanOf(b, "quarantine/b", map[string][]scan.Finding{"": {Finding("CVE-7", "p", "p", C, "2")}}))
		ps, err := s.FindingHistory(ctx, store.HistoryDays)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != store.HistoryDays || fmt.Sprint(ps[0].Fixable) != "map[LOW:1]" || fmt.Sprint(ps[len(ps)-1].Fixable) != "map[CRITICAL:1 LOW:1]" {
			t.Errorf("history %d days later: %d points, first %v, last %v", store.HistoryDays+30, len(ps), ps[0], ps[len(ps)-1])
		}
		for _, bad := range []int{0, store.HistoryDays + 1} {
			if _, err := s.FindingHistory(ctx, bad); err == nil {
				t.Errorf("%d days of history answered", bad)
			}
		}
	})

	t.Run("end-of-life images", func(t *testing.T) {
		s := newStore(t)()
		day := func(n int) time.Time { return t0.AddDate(0, 0, n) }
		withOS := func(digest, repo string, os scan.OS, sup scan.Support) store.Scan {
			sc := ScanOf(digest, repo, map[string][]scan.Finding{"linux/amd64": {}, "linux/arm64": {}})
			for _, pr := range sc.Reports {
				pr.Report.OS, pr.Report.Support = os, sup
			}
			return sc
		}
		bullseye := scan.OS{ID: "debian", Version: "11.11", EOSL: true}
		for _, sc := range []store.Scan{
			withOS(Digest(90), "quarantine/old", bullseye, scan.Support{State: "ended", Codename: "bullseye", PublicSupportEnded: day(-100)}),
			withOS(Digest(91), "quarantine/soon", scan.OS{ID: "debian", Version: "12.8"}, scan.Support{State: "lts", Codename: "bookworm", Until: day(20)}),
			withOS(Digest(92), "quarantine/later", scan.OS{ID: "debian", Version: "12.8"}, scan.Support{State: "lts", Until: day(60)}),
			withOS(Digest(93), "quarantine/new", scan.OS{ID: "debian", Version: "13.1"}, scan.Support{State: "supported", Until: day(10)}),
			ScanOf(Digest(94), "quarantine/noos", map[string][]scan.Finding{"": {}}),
		} {
			if err := s.PutScan(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		list := func(sc store.RepositoryScope, by time.Time, limit int) string {
			t.Helper()
			ims, total, err := s.EndOfLife(ctx, sc, by, limit)
			if err != nil {
				t.Fatal(err)
			}
			out := fmt.Sprint(total)
			for _, im := range ims {
				out += fmt.Sprintf(" %s/%s/%s/%v", im.Repository, im.OS, im.SupportEnd, im.Ended)
			}
			return out
		}
		all := store.RepositoryScope{All: true}
		for _, c := range []struct {
			sc    store.RepositoryScope
			by    time.Time
			limit int
			want  string
		}{
			{all, day(30), 10, "2 quarantine/old/debian 11.11 (bullseye)/2026-08-16/true quarantine/soon/debian 12.8 (bookworm)/2026-12-14/false"},
			{all, day(0), 10, "1 quarantine/old/debian 11.11 (bullseye)/2026-08-16/true"},
			{all, day(30), 1, "2 quarantine/old/debian 11.11 (bullseye)/2026-08-16/true"},
			{store.RepositoryScope{Names: []string{"quarantine/soon"}}, day(30), 10, "1 quarantine/soon/debian 12.8 (bookworm)/2026-12-14/false"},
		} {
			if got := list(c.sc, c.by, c.limit); got != c.want {
				t.Errorf("EndOfLife(%v, %s, %d):\n got %s\nwant %s", c.sc, c.by.Format(time.DateOnly), c.limit, got, c.want)
			}
		}
		// A rescan that finds a supported release takes the image off.
		if err := s.PutScan(ctx, withOS(Digest(90), "quarantine/old", scan.OS{ID: "debian", Version: "13.1"}, scan.Support{State: "supported"})); err != nil {
			t.Fatal(err)
		}
		if got := list(all, day(0), 10); got != "0" {
			t.Errorf("after a rescan on a supported release: %s", got)
		}
		if _, _, err := s.EndOfLife(ctx, all, day(0), 0); err == nil {
			t.Error("a list without a limit was read")
		}
	})
}
