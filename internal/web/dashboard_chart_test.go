package web

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// The dashboard draws the fixable findings history as an accessible
// inline SVG with its numbers in a table, and lists end-of-life images,
// from a real store written on three days.
func TestDashboardChartAndEOL(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, dbtest.SQLite(t).Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	today := time.Now().UTC()
	now := today.AddDate(0, 0, -10)
	s.SetClock(func() time.Time { return now })
	H, C := vulndb.SeverityHigh, vulndb.SeverityCritical
	put := func(sc store.Scan) {
		t.Helper()
		if err := s.PutScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		im := store.Image{Repository: sc.Repository, Verdict: gate.Verdict{State: gate.StateFail}}
		if _, err := s.UpdateImage(ctx, sc.Digest, func(*store.Image) (*store.Image, error) { return &im, nil }); err != nil {
			t.Fatal(err)
		}
	}
	old := storetest.ScanOf(storetest.Digest(1), hostileRepo, map[string][]scan.Finding{"": {
		storetest.Finding("CVE-2024-1", "a", "a", H, "1"), storetest.Finding("CVE-2024-2", "b", "b", H, "1"), storetest.Finding("CVE-2024-3", "c", "c", H, "1")}})
	old.Reports[0].Report.OS = scan.OS{ID: "debian", Version: "11.11", EOSL: true}
	old.Reports[0].Report.Support = scan.Support{State: "ended", Codename: "bullseye", PublicSupportEnded: time.Date(2024, 8, 14, 0, 0, 0, 0, time.UTC)}
	put(old)
	now = today.AddDate(0, 0, -2)
	put(storetest.ScanOf(storetest.Digest(2), "quarantine/new", map[string][]scan.Finding{"": {storetest.Finding("CVE-2024-4", "d", "d", C, "2")}}))
	now = today
	rescan := storetest.ScanOf(storetest.Digest(1), hostileRepo, map[string][]scan.Finding{"": {storetest.Finding("CVE-2024-1", "a", "a", H, "1")}})
	rescan.Reports[0].Report.OS, rescan.Reports[0].Report.Support = old.Reports[0].Report.OS, old.Reports[0].Report.Support
	put(rescan)

	h := newHarness(t, func(o *api.Options) { o.Index, o.Dashboard = s, s })
	root := h.client(t)
	root.login("root", "root-password")
	resp, body := root.do("GET", "/ui/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("dashboard: %d\n%s", resp.StatusCode, body)
	}
	svg := regexp.MustCompile(`(?s)<svg viewBox="[^"]+" role="img" aria-labelledby="chart-title chart-desc"[^>]*>.*?</svg>`).FindString(body)
	if svg == "" {
		t.Fatalf("no accessible chart on the dashboard:\n%s", body)
	}
	for _, want := range []string{
		`<title id="chart-title">Fixable findings by severity, ` + today.AddDate(0, 0, 1-chartDays).Format(time.DateOnly) + ` to ` + today.Format(time.DateOnly) + `</title>`,
		`on the first day, 2 on the last (CRITICAL 1, HIGH 1).</desc>`,
		`class="series critical"`, `class="series high"`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q:\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, "<polyline"); n != 2 {
		t.Errorf("%d lines, want 2 (CRITICAL and HIGH)", n)
	}
	// The numbers, for screen readers and for reading: the days a total changed.
	table := regexp.MustCompile(`(?s)<table id="chart-table">.*?</table>`).FindString(body)
	var rows []string
	for _, m := range regexp.MustCompile(`<tr><th scope="row">([0-9-]+)</th><td class="num">(\d+)</td><td class="num">(\d+)</td></tr>`).FindAllStringSubmatch(table, -1) {
		rows = append(rows, m[1][5:]+" "+m[2]+"/"+m[3])
	}
	day := func(n int) string { return today.AddDate(0, 0, n).Format("01-02") }
	want := fmt.Sprint([]string{day(1-chartDays) + " 0/0", day(-10) + " 0/3", day(-2) + " 1/3", day(0) + " 1/1"})
	if fmt.Sprint(rows) != want {
		t.Errorf("the chart's table rows (CRITICAL/HIGH) = %v, want %s\n%s", rows, want, table)
	}
	// End-of-life: the bullseye image, its repository escaped.
	eol := regexp.MustCompile(`(?s)<table id="eol-images">.*?</table>`).FindString(body)
	if !strings.Contains(eol, "debian 11.11 (bullseye)") || !strings.Contains(eol, "2024-08-14") || strings.Contains(eol, "<script>") ||
		!strings.Contains(eol, "&lt;script&gt;") || !strings.Contains(body, `<span id="eol-total">1</span>`) {
		t.Errorf("end-of-life list:\n%s", eol)
	}

	// A user who may pull only some repositories sees no history (it
	// covers them all), and the end-of-life images he may pull.
	if _, err := s.UpdateImage(ctx, storetest.Digest(3), func(*store.Image) (*store.Image, error) {
		return &store.Image{Repository: "live/app", Verdict: gate.Verdict{State: gate.StatePass}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	reader := h.client(t)
	reader.login("reader", "reader-password")
	_, body = reader.do("GET", "/ui/", nil)
	if strings.Contains(body, "<polyline") || !strings.Contains(body, `id="chart-note"`) || !strings.Contains(body, `<span id="eol-total">1</span>`) {
		t.Errorf("reader's dashboard:\n%s", body)
	}
}

func TestNiceCeil(t *testing.T) {
	for n, want := range map[int]int{0: 4, 3: 4, 4: 4, 5: 8, 9: 20, 17: 20, 21: 40, 99: 200, 1234: 2000, 400000: 400000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}
