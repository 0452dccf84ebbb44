package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

func TestDashboardRoutes(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, dbtest.SQLite(t).Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	H := vulndb.SeverityHigh
	old := storetest.ScanOf(storetest.Digest(1), "quarantine/old", map[string][]scan.Finding{"": {storetest.Finding("CVE-2024-1", "libc6", "glibc", H, "2.1")}})
	old.Reports[0].Report.OS = scan.OS{ID: "debian", Version: "11.11", EOSL: true}
	old.Reports[0].Report.Support = scan.Support{State: "ended", Codename: "bullseye", PublicSupportEnded: time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC)}
	fresh := storetest.ScanOf(storetest.Digest(2), "live/new", map[string][]scan.Finding{"": {storetest.Finding("CVE-2024-2", "zlib1g", "zlib", H, "")}})
	fresh.Reports[0].Report.OS = scan.OS{ID: "debian", Version: "13.1"}
	fresh.Reports[0].Report.Support = scan.Support{State: "supported"}
	for _, sc := range []store.Scan{old, fresh} {
		if err := s.PutScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		im := store.Image{Repository: sc.Repository, Verdict: gate.Verdict{State: gate.StateFail}}
		if _, err := s.UpdateImage(ctx, sc.Digest, func(*store.Image) (*store.Image, error) { return &im, nil }); err != nil {
			t.Fatal(err)
		}
	}
	exs := fakeExceptions{now: now}
	everywhere := Handler(Options{Gate: &fakeGate{}, Index: s, Dashboard: s, Exceptions: exs, Authorize: allowOnly("pull quarantine", "pull live")})
	quarantineOnly := Handler(Options{Gate: &fakeGate{}, Index: s, Dashboard: s, Exceptions: exs, Authorize: allowOnly("pull quarantine")})

	code, b := get(t, everywhere, "/api/v1/findings/history?days=3")
	var hist HistoryResponse
	if err := json.Unmarshal(b, &hist); err != nil || code != http.StatusOK {
		t.Fatalf("history: %d %s", code, b)
	}
	var got []string
	for _, p := range hist.Days {
		got = append(got, fmt.Sprint(p.Day, p.Fixable))
	}
	if want := "[2026-11-29map[] 2026-11-30map[] 2026-12-01map[HIGH:1]]"; fmt.Sprint(got) != want {
		t.Errorf("history = %s, want %s", got, want)
	}
	if code, b := get(t, everywhere, "/api/v1/findings/history"); code != http.StatusOK || strings.Count(string(b), `"day"`) != DefaultHistoryDays {
		t.Errorf("default history: %d, %d days", code, strings.Count(string(b), `"day"`))
	}
	// The series covers every repository: a caller who may pull only some is refused.
	if code, b := get(t, quarantineOnly, "/api/v1/findings/history"); code != http.StatusForbidden {
		t.Errorf("history for a quarantine reader: %d %s", code, b)
	}

	eol := func(h http.Handler, path string) EOLResponse {
		t.Helper()
		code, b := get(t, h, path)
		var out EOLResponse
		if err := json.Unmarshal(b, &out); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		return out
	}
	if e := eol(quarantineOnly, "/api/v1/images/end-of-life"); e.Total != 1 || e.By != "2026-12-31" || len(e.Images) != 1 ||
		e.Images[0].Repository != "quarantine/old" || e.Images[0].SupportEnd != "2026-08-31" || !e.Images[0].Ended || e.Images[0].OS != "debian 11.11 (bullseye)" {
		t.Errorf("end-of-life images: %+v", e)
	}
	if e := eol(everywhere, "/api/v1/images/end-of-life?within=0&limit=1"); e.Total != 1 || e.By != "2026-12-01" {
		t.Errorf("end-of-life images today: %+v", e)
	}
	if e := eol(Handler(Options{Gate: &fakeGate{}, Index: s, Dashboard: s, Exceptions: exs, Authorize: allowOnly("pull live")}), "/api/v1/images/end-of-life"); e.Total != 0 || e.Images == nil {
		t.Errorf("end-of-life images for a live reader: %+v", e)
	}

	for path, field := range map[string]string{
		"/api/v1/findings/history?days=0":         "days:",
		"/api/v1/findings/history?days=401":       "days:",
		"/api/v1/findings/history?days=x":         "days:",
		"/api/v1/images/end-of-life?within=-1":    "within:",
		"/api/v1/images/end-of-life?within=366":   "within:",
		"/api/v1/images/end-of-life?limit=0":      "limit:",
		"/api/v1/images/end-of-life?limit=100000": "limit:",
	} {
		if code, b := get(t, everywhere, path); code != http.StatusBadRequest || !strings.Contains(string(b), field) {
			t.Errorf("GET %s: %d %s, want 400 naming %s", path, code, b, field)
		}
	}
	if code, _ := get(t, Handler(Options{Gate: &fakeGate{}, Index: s}), "/api/v1/findings/history"); code != http.StatusNotFound {
		t.Errorf("history without a dashboard: %d", code)
	}
}
