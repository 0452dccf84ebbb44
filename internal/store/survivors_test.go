package store_test

// Tests added for mutants that survived `make mutate` (sixth pass; see
// test/mutation/SURVIVORS.md).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// eachStore runs fn on a fresh store of each engine.
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		s, err := store.Open(context.Background(), newTarget(t).Opener(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

// TestScanWithMoreFindingsThanOneStatement: a scan whose findings need
// more parameters than one statement of either engine takes (SQLite
// 32,766, PostgreSQL 65,535; 11 a finding) is indexed in batches, all of
// it, and so are its totals (4 parameters a distinct CVE). A batch that
// never flushes (findings.go's `n++; n == findingsBatch`) fails here.
func TestScanWithMoreFindingsThanOneStatement(t *testing.T) {
	const n = 6100 // 67,100 parameters in one statement
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s store.Store) {
		fs := make([]scan.Finding, n)
		for i := range fs {
			fixed := ""
			if i%2 == 0 {
				fixed = "2.0"
			}
			fs[i] = storetest.Finding(fmt.Sprintf("CVE-2025-%05d", i), fmt.Sprintf("pkg%d", i%7), "src", vulndb.SeverityHigh, fixed)
		}
		d := storetest.Digest(42)
		if err := s.PutScan(ctx, storetest.ScanOf(d, "quarantine/big", map[string][]scan.Finding{"": fs})); err != nil {
			t.Fatal(err)
		}
		counts, err := s.ImageFindingCounts(ctx, []string{d})
		if err != nil || counts[d].Counts["HIGH"] != n || counts[d].Fixable["HIGH"] != n/2 {
			t.Fatalf("image counts: %+v, %v; want %d HIGH, %d fixable", counts[d], err, n, n/2)
		}
		tot, err := s.FindingTotals(ctx, store.RepositoryScope{All: true})
		if err != nil || tot.UniqueCVEs != n || tot.UniqueFixableCVEs != n/2 || tot.Counts["HIGH"] != n {
			t.Fatalf("totals: %+v, %v; want %d CVEs, %d fixable", tot, err, n, n/2)
		}
		// Rescanned with half of them fixed: the totals move by the
		// difference, in batches too.
		if err := s.PutScan(ctx, storetest.ScanOf(d, "quarantine/big", map[string][]scan.Finding{"": fs[:n/2]})); err != nil {
			t.Fatal(err)
		}
		tot, err = s.FindingTotals(ctx, store.RepositoryScope{All: true})
		if err != nil || tot.UniqueCVEs != n/2 || tot.UniqueFixableCVEs != n/4 || tot.Counts["HIGH"] != n/2 {
			t.Fatalf("totals after the rescan: %+v, %v; want %d CVEs, %d fixable", tot, err, n/2, n/4)
		}
	})
}

// TestBoundsAcceptedAtTheirLimit: every bounded argument of the store's
// queries is accepted at its bound and refused one past it (the
// conformance suite checks the refusals; a `>` turned `>=` refuses the
// bound itself), and a page exactly as long as its limit reports no
// more.
func TestBoundsAcceptedAtTheirLimit(t *testing.T) {
	ctx := context.Background()
	all := store.RepositoryScope{All: true}
	eachStore(t, func(t *testing.T, s store.Store) {
		fs := []scan.Finding{storetest.Finding("CVE-2025-1", "libc6", "glibc", vulndb.SeverityLow, ""),
			storetest.Finding("CVE-2025-1", "libc-bin", "glibc", vulndb.SeverityLow, "")}
		if err := s.PutScan(ctx, storetest.ScanOf(storetest.Digest(1), "quarantine/a", map[string][]scan.Finding{"": fs})); err != nil {
			t.Fatal(err)
		}
		ok := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Errorf("%s refused: %v", what, err)
			}
		}
		refused := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Errorf("%s accepted", what)
			}
		}
		digests := make([]string, store.MaxCountDigests)
		for i := range digests {
			digests[i] = storetest.Digest(i + 1)
		}
		_, err := s.ImageFindingCounts(ctx, digests)
		ok("MaxCountDigests digests to count", err)

		_, _, err = s.FindingsWhere(ctx, store.FindingQuery{CVE: "CVE-2025-1", Scope: all, Limit: store.MaxFindingRows})
		ok("a limit of MaxFindingRows", err)
		_, _, err = s.FindingsWhere(ctx, store.FindingQuery{CVE: "CVE-2025-1", Scope: all, Limit: 1, ImageLimit: -1})
		refused("an image limit of -1", err)
		rows, more, err := s.FindingsWhere(ctx, store.FindingQuery{CVE: "CVE-2025-1", Scope: all, Limit: 2})
		if err != nil || len(rows) != 2 || more {
			t.Errorf("two rows with a limit of 2: %d rows, more %v, %v", len(rows), more, err)
		}
		rows, more, err = s.FindingsWhere(ctx, store.FindingQuery{CVE: "CVE-2025-1", Scope: all, Limit: 1})
		if err != nil || len(rows) != 1 || !more {
			t.Errorf("two rows with a limit of 1: %d rows, more %v, %v", len(rows), more, err)
		}

		_, err = s.Images(ctx, store.ImageQuery{Scope: all, Limit: store.MaxImagePage})
		ok("an images page of MaxImagePage", err)
		_, err = s.Images(ctx, store.ImageQuery{Scope: all, Limit: 1})
		ok("an images page of 1", err)
		_, err = s.Images(ctx, store.ImageQuery{Scope: all, Limit: store.MaxImagePage + 1})
		refused("an images page of MaxImagePage+1", err)
		_, err = s.Images(ctx, store.ImageQuery{Scope: all, Limit: 1, Offset: -1})
		refused("an images offset of -1", err)

		_, err = s.FindingHistory(ctx, 1)
		ok("one day of history", err)
		_, _, err = s.EndOfLife(ctx, all, time.Now(), 1)
		ok("an end-of-life list of 1", err)
		_, _, err = s.EndOfLife(ctx, all, time.Now(), store.MaxImagePage)
		ok("an end-of-life list of MaxImagePage", err)
		_, _, err = s.EndOfLife(ctx, all, time.Now(), store.MaxImagePage+1)
		refused("an end-of-life list of MaxImagePage+1", err)
	})
}

// TestBackfillIndexesEveryStoredScan: the migrations that index the
// scans stored before them (findings, image support) walk every stored
// successful scan, not only the first; a stored scan whose reports do
// not decode stops the migration with an error naming it.
func TestBackfillIndexesEveryStoredScan(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		legacy := func(t *testing.T, rows [][]any) (store.Store, error) {
			db := newTarget(t).Open(t, store.Component)
			if _, err := db.Migrate(ctx, store.Component, store.Migrations[:2]); err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				if _, err := db.ExecContext(ctx, `INSERT INTO scans (digest, repository, scanned_at, error, reports) VALUES (?, ?, '2026-01-01T00:00:00Z', '', ?)`, row...); err != nil {
					t.Fatal(err)
				}
			}
			s, err := store.New(ctx, db)
			if err == nil {
				t.Cleanup(func() { s.Close() })
			}
			return s, err
		}
		var rows [][]any
		for i, repo := range []string{"quarantine/one", "quarantine/two", "quarantine/three"} {
			sc := storetest.ScanOf(storetest.Digest(i+1), repo, map[string][]scan.Finding{
				"": {storetest.Finding("CVE-2023-9", "libssl3", "openssl", vulndb.SeverityCritical, "3.0.1")}})
			sc.Reports[0].Report.OS = scan.OS{ID: "debian", Version: "11.11"}
			sc.Reports[0].Report.Support = scan.Support{State: "ended", Codename: "bullseye", PublicSupportEnded: time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC)}
			raw, err := json.Marshal(sc.Reports)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, []any{storetest.Digest(i + 1), repo, string(raw)})
		}
		s, err := legacy(t, rows)
		if err != nil {
			t.Fatal(err)
		}
		found, _, err := s.FindingsWhere(ctx, store.FindingQuery{CVE: "CVE-2023-9", Scope: store.RepositoryScope{All: true}, Limit: 10})
		if err != nil || len(found) != 3 {
			t.Errorf("backfilled findings: %+v, %v; want one in each of 3 scans", found, err)
		}
		if _, n, err := s.EndOfLife(ctx, store.RepositoryScope{All: true}, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 10); err != nil || n != 3 {
			t.Errorf("backfilled end-of-life images: %d, %v; want 3", n, err)
		}

		bad := storetest.Digest(99)
		if _, err := legacy(t, append(rows, []any{bad, "quarantine/bad", "{not json"})); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("a stored scan that does not decode: %v, want an error naming %s", err, bad)
		}
	})
}

// TestSummaryOfAPackage: a package's summary counts its distinct CVEs
// (a CVE's is 1 by definition), and says whether a fix exists and
// whether one of its digests is promoted, each both ways.
func TestSummaryOfAPackage(t *testing.T) {
	ctx := context.Background()
	all := store.RepositoryScope{All: true}
	eachStore(t, func(t *testing.T, s store.Store) {
		d := storetest.Digest(5)
		if err := s.PutScan(ctx, storetest.ScanOf(d, "quarantine/a", map[string][]scan.Finding{"": {
			storetest.Finding("CVE-2025-1", "libc6", "glibc", vulndb.SeverityLow, ""),
			storetest.Finding("CVE-2025-2", "libc6", "glibc", vulndb.SeverityLow, ""),
			storetest.Finding("CVE-2025-3", "zlib1g", "zlib", vulndb.SeverityLow, "1.3"),
		}})); err != nil {
			t.Fatal(err)
		}
		summary := func(q store.FindingQuery) string {
			t.Helper()
			q.Scope = all
			sum, err := s.FindingsSummary(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("digests=%d findings=%d cves=%d fix=%v promoted=%v", sum.Digests, sum.Findings, sum.UniqueCVEs, sum.FixAvailable, sum.Promoted)
		}
		for _, c := range []struct {
			q    store.FindingQuery
			want string
		}{
			{store.FindingQuery{Package: "glibc"}, "digests=1 findings=2 cves=2 fix=false promoted=false"},
			{store.FindingQuery{Package: "zlib1g"}, "digests=1 findings=1 cves=1 fix=true promoted=false"},
			{store.FindingQuery{CVE: "CVE-2025-2"}, "digests=1 findings=1 cves=1 fix=false promoted=false"},
		} {
			if got := summary(c.q); got != c.want {
				t.Errorf("summary of %+v: %s, want %s", c.q, got, c.want)
			}
		}
		if _, err := s.UpdateImage(ctx, d, func(*store.Image) (*store.Image, error) {
			return &store.Image{Repository: "quarantine/a", Verdict: gate.Verdict{State: gate.StatePass, At: time.Now()}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkPromoted(ctx, d, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := summary(store.FindingQuery{Package: "glibc"}); got != "digests=1 findings=2 cves=2 fix=false promoted=true" {
			t.Errorf("summary of glibc once promoted: %s", got)
		}
	})
}

// TestEndOfLifeOfAMixedIndex: an index's support end is the earliest
// over its platforms that report one (an ended release, an LTS or an
// ELTS one; a supported release's Until is not an end), named by the
// platform it comes from, whatever order the platforms come in.
func TestEndOfLifeOfAMixedIndex(t *testing.T) {
	ctx := context.Background()
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	type platform struct {
		os      scan.OS
		support scan.Support
	}
	bullseye := platform{scan.OS{ID: "debian", Version: "11.11", EOSL: true}, scan.Support{State: "ended", Codename: "bullseye", PublicSupportEnded: day("2026-08-31")}}
	bookworm := platform{scan.OS{ID: "debian", Version: "12.8"}, scan.Support{State: "supported", Codename: "bookworm"}}
	bookwormLTS := platform{scan.OS{ID: "debian", Version: "12.8"}, scan.Support{State: "lts", Codename: "bookworm", Until: day("2028-06-30")}}
	buster := platform{scan.OS{ID: "debian", Version: "10.13"}, scan.Support{State: "elts", Codename: "buster", Until: day("2027-06-30")}}
	bookwormUntil := platform{scan.OS{ID: "debian", Version: "12.8"}, scan.Support{State: "supported", Codename: "bookworm", Until: day("2028-06-10")}}
	jessie := platform{scan.OS{ID: "debian", Version: "8.11"}, scan.Support{State: "ended", Codename: "jessie", Until: day("2025-06-30")}}
	stretch := platform{scan.OS{ID: "debian", Version: "9.13"}, scan.Support{State: "elts", Codename: "stretch", Until: day("2029-06-30")}}
	eachStore(t, func(t *testing.T, s store.Store) {
		for i, ps := range [][]platform{{bullseye, bookworm}, {bookwormLTS, buster}, {stretch}, {bookworm}, {bookwormUntil}, {bookwormLTS}, {jessie}} {
			byPlatform := map[string][]scan.Finding{}
			names := []string{"linux/amd64", "linux/arm64"}
			for j := range ps {
				byPlatform[names[j]] = nil
			}
			sc := storetest.ScanOf(storetest.Digest(i+1), fmt.Sprintf("quarantine/r%d", i), byPlatform)
			for j, p := range ps {
				sc.Reports[j].Report.OS, sc.Reports[j].Report.Support = p.os, p.support
			}
			if err := s.PutScan(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		ims, n, err := s.EndOfLife(ctx, store.RepositoryScope{All: true}, day("2030-01-01"), 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, im := range ims {
			got = append(got, fmt.Sprintf("%s %s %s ended=%v", im.Repository, im.OS, im.SupportEnd, im.Ended))
		}
		want := []string{
			"quarantine/r6 debian 8.11 (jessie) 2025-06-30 ended=false",
			"quarantine/r0 debian 11.11 (bullseye) 2026-08-31 ended=true",
			"quarantine/r1 debian 10.13 (buster) 2027-06-30 ended=false",
			"quarantine/r5 debian 12.8 (bookworm) 2028-06-30 ended=false",
			"quarantine/r2 debian 9.13 (stretch) 2029-06-30 ended=false",
		}
		if n != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("end of life (%d):\n got %q\nwant %q", n, got, want)
		}
	})
}

// TestRepositories: the repositories the store has images of, each once,
// sorted; none in an empty store. (Only the API's scope building called
// it; no test of this package did.)
func TestRepositories(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s store.Store) {
		if repos, err := s.Repositories(ctx); err != nil || len(repos) != 0 {
			t.Fatalf("empty store: %q, %v", repos, err)
		}
		for i, repo := range []string{"quarantine/b", "quarantine/a", "quarantine/b", "live/c"} {
			if _, err := s.UpdateImage(ctx, storetest.Digest(i+1), func(*store.Image) (*store.Image, error) {
				return &store.Image{Repository: repo, Verdict: gate.Verdict{State: gate.StatePass, At: time.Now()}}, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		repos, err := s.Repositories(ctx)
		if err != nil || fmt.Sprint(repos) != "[live/c quarantine/a quarantine/b]" {
			t.Errorf("Repositories = %q, %v", repos, err)
		}
	})
}
