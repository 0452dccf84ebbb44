package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Finding is a finding for the index's tests: fixable when fixed is set.
func Finding(id, pkg, src string, sev vulndb.Severity, fixed string) scan.Finding {
	st := vulndb.StatusAffected
	if fixed != "" {
		st = vulndb.StatusFixed
	}
	return scan.Finding{VulnerabilityID: id, PkgName: pkg, SrcName: src, InstalledVersion: "1.0", FixedVersion: fixed, Severity: sev, Status: st}
}

// ScanOf is a successful scan of digest in repo, one report per
// platform ("" for a plain image).
func ScanOf(digest, repo string, byPlatform map[string][]scan.Finding) store.Scan {
	sc := store.Scan{Digest: digest, Repository: repo, ScannedAt: t0}
	for _, p := range slices.Sorted(maps.Keys(byPlatform)) {
		sc.Reports = append(sc.Reports, store.PlatformReport{Platform: p, Digest: digest,
			Report: &scan.Report{Status: scan.StatusOK, Findings: byPlatform[p]}})
	}
	return sc
}

func runFindings(t *testing.T, newStore Factory) {
	ctx := context.Background()
	all := store.RepositoryScope{All: true}
	H, C, L := vulndb.SeverityHigh, vulndb.SeverityCritical, vulndb.SeverityLow

	t.Run("findings index", func(t *testing.T) {
		open := newStore(t)
		s := open()
		a, b, c := Digest(40), Digest(41), Digest(42)
		put := func(sc store.Scan) {
			t.Helper()
			if err := s.PutScan(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		// The totals over everything come from finding_totals, those of
		// some repositories from the rows: both must agree.
		same := func(when string) {
			t.Helper()
			a, err := s.FindingTotals(ctx, all)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.FindingTotals(ctx, store.RepositoryScope{Names: []string{"quarantine/app", "quarantine/other", "live/app"}})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(*a) != fmt.Sprint(*b) {
				t.Errorf("%s: the totals over everything %+v, over each repository %+v", when, *a, *b)
			}
		}
		put(ScanOf(a, "quarantine/app", map[string][]scan.Finding{
			"linux/amd64": {Finding("CVE-2024-1", "libc6", "glibc", H, "2.1"), Finding("CVE-2024-2", "zlib1g", "zlib", L, "")},
			"linux/arm64": {Finding("CVE-2024-1", "libc6", "glibc", H, "2.1")},
		}))
		put(ScanOf(b, "quarantine/other", map[string][]scan.Finding{"": {Finding("cve-2024-1", "libc-bin", "glibc", H, ""),
			Finding("CVE-2024-3", "openssl", "openssl", C, "3.1")}}))
		put(ScanOf(c, "live/app", map[string][]scan.Finding{"": {}}))

		same("after three scans")
		tot, err := s.FindingTotals(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		want := store.FindingTotals{Counts: map[string]int{"HIGH": 3, "LOW": 1, "CRITICAL": 1}, Fixable: map[string]int{"HIGH": 2, "CRITICAL": 1},
			UniqueCVEs: 3, UniqueFixableCVEs: 2}
		if fmt.Sprint(*tot) != fmt.Sprint(want) {
			t.Errorf("totals over everything = %+v, want %+v", *tot, want)
		}
		tot, _ = s.FindingTotals(ctx, store.RepositoryScope{Names: []string{"quarantine/other"}})
		if tot.UniqueCVEs != 2 || tot.UniqueFixableCVEs != 1 || tot.Counts["HIGH"] != 1 || tot.Fixable["CRITICAL"] != 1 || tot.Fixable["HIGH"] != 0 {
			t.Errorf("totals of quarantine/other = %+v", *tot)
		}
		if tot, _ = s.FindingTotals(ctx, store.RepositoryScope{}); tot.UniqueCVEs != 0 || len(tot.Counts) != 0 {
			t.Errorf("totals of no repository = %+v", *tot)
		}

		counts, err := s.ImageFindingCounts(ctx, []string{a, b, c, Digest(99)})
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 2 || counts[a].Repository != "quarantine/app" || counts[a].Fixable["HIGH"] != 2 || counts[a].Counts["LOW"] != 1 || counts[b].Fixable["CRITICAL"] != 1 || counts[b].Fixable["HIGH"] != 0 {
			t.Errorf("per-image counts = %+v", counts)
		}
		if _, err := s.ImageFindingCounts(ctx, make([]string, store.MaxCountDigests+1)); err == nil {
			t.Error("more digests than the bound were counted")
		}

		where := func(q store.FindingQuery) []string {
			t.Helper()
			q.Limit = max(q.Limit, 10)
			rows, _, err := s.FindingsWhere(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rows {
				out = append(out, fmt.Sprintf("%s %s %s %s %s fix=%v", r.Digest[len(r.Digest)-2:], r.Repository, r.Platform, r.CVE, r.Package, r.Fixable))
			}
			return out
		}
		got := where(store.FindingQuery{CVE: "Cve-2024-1", Scope: all})
		wantRows := []string{"28 quarantine/app linux/amd64 CVE-2024-1 libc6 fix=true", "28 quarantine/app linux/arm64 CVE-2024-1 libc6 fix=true",
			"29 quarantine/other  CVE-2024-1 libc-bin fix=false"}
		if fmt.Sprint(got) != fmt.Sprint(wantRows) {
			t.Errorf("where is CVE-2024-1:\n got %q\nwant %q", got, wantRows)
		}
		if got := where(store.FindingQuery{CVE: "CVE-2024-1", Scope: store.RepositoryScope{Names: []string{"quarantine/other"}}}); len(got) != 1 {
			t.Errorf("where is CVE-2024-1 in quarantine/other: %q", got)
		}
		// By binary or by source package.
		if got := where(store.FindingQuery{Package: "glibc", Scope: all}); len(got) != 3 {
			t.Errorf("where is glibc: %q", got)
		}
		if got := where(store.FindingQuery{Package: "libc-bin", Scope: all}); len(got) != 1 {
			t.Errorf("where is libc-bin: %q", got)
		}
		// One page of the digests found: only their rows.
		for _, c := range []struct {
			q    store.FindingQuery
			want int
		}{
			{store.FindingQuery{CVE: "CVE-2024-1", Scope: all, ImageLimit: 1}, 2},
			{store.FindingQuery{CVE: "CVE-2024-1", Scope: all, ImageOffset: 1, ImageLimit: 1}, 1},
			{store.FindingQuery{CVE: "CVE-2024-1", Scope: all, ImageOffset: 2, ImageLimit: 1}, 0},
			{store.FindingQuery{CVE: "CVE-2024-1", Scope: store.RepositoryScope{Names: []string{"quarantine/other"}}, ImageLimit: 1}, 1},
			{store.FindingQuery{Package: "glibc", Scope: all, ImageOffset: 1, ImageLimit: 5}, 1},
		} {
			got := where(c.q)
			if len(got) != c.want {
				t.Errorf("where %+v: %q, want %d rows", c.q, got, c.want)
			}
			if c.want == 1 && !strings.HasPrefix(got[0], "29 ") {
				t.Errorf("where %+v: %q, want the second digest's row", c.q, got)
			}
		}
		// The summary counts in SQL what the rows hold.
		summary := func(q store.FindingQuery) string {
			t.Helper()
			sum, err := s.FindingsSummary(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%d digests, %d findings, %d CVEs, fix %v, %v, promoted %v", sum.Digests, sum.Findings, sum.UniqueCVEs,
				sum.FixAvailable, sum.Repositories, sum.Promoted)
		}
		for _, c := range []struct {
			q    store.FindingQuery
			want string
		}{
			{store.FindingQuery{CVE: "cve-2024-1", Scope: all}, "2 digests, 3 findings, 1 CVEs, fix true, [quarantine/app quarantine/other], promoted false"},
			{store.FindingQuery{CVE: "CVE-2024-1", Scope: store.RepositoryScope{Names: []string{"quarantine/other"}}}, "1 digests, 1 findings, 1 CVEs, fix false, [quarantine/other], promoted false"},
			{store.FindingQuery{Package: "glibc", Scope: all}, "2 digests, 3 findings, 1 CVEs, fix true, [quarantine/app quarantine/other], promoted false"},
			{store.FindingQuery{Package: "zlib1g", Scope: all}, "1 digests, 1 findings, 1 CVEs, fix false, [quarantine/app], promoted false"},
			{store.FindingQuery{Package: "nothing", Scope: all}, "0 digests, 0 findings, 0 CVEs, fix false, [], promoted false"},
			{store.FindingQuery{CVE: "CVE-2024-3", Scope: store.RepositoryScope{}}, "0 digests, 0 findings, 0 CVEs, fix false, [], promoted false"},
		} {
			if got := summary(c.q); got != c.want {
				t.Errorf("summary of %+v:\n got %s\nwant %s", c.q, got, c.want)
			}
		}
		if _, err := s.UpdateImage(ctx, b, func(*store.Image) (*store.Image, error) {
			return &store.Image{Digest: b, Repository: "quarantine/other", Verdict: pass(t0), UpdatedAt: t0}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkPromoted(ctx, b, t0); err != nil {
			t.Fatal(err)
		}
		if got := summary(store.FindingQuery{CVE: "CVE-2024-3", Scope: all}); got != "1 digests, 1 findings, 1 CVEs, fix true, [quarantine/other], promoted true" {
			t.Errorf("summary after promoting the digest: %s", got)
		}
		if _, err := s.FindingsSummary(ctx, store.FindingQuery{Scope: all}); err == nil {
			t.Error("a summary of nothing was answered")
		}
		rows, more, err := s.FindingsWhere(ctx, store.FindingQuery{CVE: "CVE-2024-1", Scope: all, Limit: 2})
		if err != nil || len(rows) != 2 || !more {
			t.Errorf("limit 2: %d rows, more %v, %v", len(rows), more, err)
		}
		for _, bad := range []store.FindingQuery{{Scope: all, Limit: 1}, {CVE: "x", Package: "y", Scope: all, Limit: 1}, {CVE: "x", Scope: all},
			{CVE: "x", Scope: all, Limit: store.MaxFindingRows + 1}, {CVE: "x", Scope: all, Limit: 1, ImageOffset: -1}} {
			if _, _, err := s.FindingsWhere(ctx, bad); err == nil {
				t.Errorf("query %+v accepted", bad)
			}
		}

		// A rescan replaces the digest's rows; a failed scan removes them.
		put(ScanOf(a, "quarantine/app", map[string][]scan.Finding{"linux/amd64": {Finding("CVE-2024-2", "zlib1g", "zlib", L, "1.3")}}))
		if got := where(store.FindingQuery{CVE: "CVE-2024-1", Scope: all}); len(got) != 1 {
			t.Errorf("after a rescan without it, CVE-2024-1 is in %q", got)
		}
		if counts, _ := s.ImageFindingCounts(ctx, []string{a}); fmt.Sprint(counts[a].Fixable) != "map[LOW:1]" {
			t.Errorf("after a rescan: %+v", counts[a])
		}
		same("after a rescan")
		put(store.Scan{Digest: b, Repository: "quarantine/other", Error: "boom"})
		same("after a failed scan")
		if got := where(store.FindingQuery{Package: "openssl", Scope: all}); len(got) != 0 {
			t.Errorf("after a failed scan, openssl is in %q", got)
		}
		// Another handle (another replica) reads the same index.
		if tot, err := open().FindingTotals(ctx, all); err != nil || tot.UniqueCVEs != 1 || tot.Fixable["LOW"] != 1 {
			t.Errorf("another handle's totals = %+v, %v", tot, err)
		}

		// Concurrent rescans of one digest, from two handles: the rows are
		// those of one scan, never a mix or a sum.
		handles := []store.Store{s, open()}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var fs []scan.Finding
				for j := range 20 + i {
					fs = append(fs, Finding(fmt.Sprintf("CVE-2025-%d", j), "pkg", "src", H, "2"))
				}
				if err := handles[i%2].PutScan(ctx, ScanOf(c, "live/app", map[string][]scan.Finding{"": fs})); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		sc, err := s.Scan(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		counts, _ = s.ImageFindingCounts(ctx, []string{c})
		if n := len(sc.Reports[0].Report.Findings); counts[c].Counts["HIGH"] != n {
			t.Errorf("after concurrent rescans the stored scan has %d findings, the index %d", n, counts[c].Counts["HIGH"])
		}
		same("after concurrent rescans")

		// Several scans in one transaction: all or none.
		d1, d2 := Digest(43), Digest(44)
		if err := s.PutScans(ctx, ScanOf(d1, "quarantine/app", map[string][]scan.Finding{"": {Finding("CVE-2024-9", "x", "x", L, "")}}),
			store.Scan{Digest: "sha256:bad"}); err == nil {
			t.Error("a batch with a malformed digest was stored")
		}
		if err := s.PutScans(ctx, ScanOf(d1, "quarantine/app", map[string][]scan.Finding{"": {Finding("CVE-2024-9", "x", "x", L, "")}}),
			ScanOf(d2, "quarantine/other", map[string][]scan.Finding{"": {Finding("CVE-2024-9", "y", "y", L, "9")}})); err != nil {
			t.Fatal(err)
		}
		if got := where(store.FindingQuery{CVE: "CVE-2024-9", Scope: all}); len(got) != 2 {
			t.Errorf("after a batch of two scans: %q", got)
		}
		same("after a batch")
	})

	t.Run("images pages", func(t *testing.T) {
		s := newStore(t)()
		for i, im := range []store.Image{
			{Repository: "quarantine/app", Verdict: fail(t0, "x"), UpdatedAt: t0},
			{Repository: "quarantine/app", Verdict: pass(t0), UpdatedAt: t0.Add(time.Minute)},
			{Repository: "quarantine/b_c", Verdict: pass(t0), UpdatedAt: t0},
			{Repository: "quarantine/bxc%", Verdict: pass(t0), UpdatedAt: t0},
			{Repository: "live/app", Verdict: pass(t0), UpdatedAt: t0},
		} {
			im.Digest = Digest(60 + i)
			put(t, s, im)
		}
		page := func(q store.ImageQuery) string {
			t.Helper()
			p, err := s.Images(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out := fmt.Sprintf("%d %v:", p.Total, p.ByState)
			for _, im := range p.Images {
				out += " " + im.Repository + "/" + string(im.Verdict.State) + "/" + im.Digest[len(im.Digest)-2:]
			}
			return out
		}
		for _, c := range []struct {
			q    store.ImageQuery
			want string
		}{
			{store.ImageQuery{Scope: all, Limit: 10}, "5 map[fail:1 pass:4]: live/app/pass/40 quarantine/app/pass/3d quarantine/app/fail/3c quarantine/b_c/pass/3e quarantine/bxc%/pass/3f"},
			{store.ImageQuery{Scope: all, Limit: 2, Offset: 1}, "5 map[fail:1 pass:4]: quarantine/app/pass/3d quarantine/app/fail/3c"},
			{store.ImageQuery{Scope: all, State: "pass", RepositoryContains: "b_", Limit: 10}, "1 map[fail:1 pass:4]: quarantine/b_c/pass/3e"},
			{store.ImageQuery{Scope: all, RepositoryContains: "c%", Limit: 10}, "1 map[fail:1 pass:4]: quarantine/bxc%/pass/3f"},
			{store.ImageQuery{Scope: store.RepositoryScope{Names: []string{"quarantine/app"}}, Limit: 10}, "2 map[fail:1 pass:1]: quarantine/app/pass/3d quarantine/app/fail/3c"},
		} {
			if got := page(c.q); got != c.want {
				t.Errorf("Images(%+v):\n got %s\nwant %s", c.q, got, c.want)
			}
		}
		if _, err := s.Images(ctx, store.ImageQuery{Scope: all}); err == nil {
			t.Error("a page without a limit was read")
		}
	})
}
