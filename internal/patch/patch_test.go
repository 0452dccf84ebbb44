package patch

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/version"
	"github.com/drydock-project/drydock/internal/vulndb"
)

func update(name, installed, candidate string) backend.Update {
	return backend.Update{Name: name, Arch: "amd64", Installed: installed, Candidate: candidate}
}

// wantedOf runs the engine's package choice for mode over cands.
func wantedOf(mode Mode, want map[string]string, cands []backend.Update, installed map[string]string, plan *Plan) ([]string, map[string]bool) {
	e := &engine{req: Request{Mode: mode}}
	var inst []inventory.Package
	for n, v := range installed {
		inst = append(inst, inventory.Package{Name: n, Version: v})
	}
	return e.wanted(cands, inst, want, version.Deb{}, plan)
}

func TestWanted(t *testing.T) {
	cands := []backend.Update{
		update("libssl3", "3.0.20-1~deb12u1", "3.0.22-1~deb12u2"),
		update("openssl", "3.0.20-1~deb12u1", "3.0.22-1~deb12u2"),
		update("libc6", "2.36-9+deb12u9", "2.36-9+deb12u10"),
	}
	installed := map[string]string{
		"libssl3": "3.0.20-1~deb12u1", "openssl": "3.0.20-1~deb12u1", "libc6": "2.36-9+deb12u9",
		"zlib1g": "1:1.2.13.dfsg-1", "perl-base": "5.36.0-7+deb12u1",
	}
	t.Run("update-all", func(t *testing.T) {
		plan := &Plan{}
		want, req := wantedOf(UpdateAll, map[string]string{"zlib1g": "9"}, cands, installed, plan)
		if !slices.Equal(want, []string{"libssl3", "openssl", "libc6"}) {
			t.Errorf("want %q", want)
		}
		if len(req) != 3 || !req["libc6"] || len(plan.Unavailable) != 0 {
			t.Errorf("requested %v, unavailable %v", req, plan.Unavailable)
		}
	})
	t.Run("update-all without candidates", func(t *testing.T) {
		want, req := wantedOf(UpdateAll, nil, nil, installed, &Plan{})
		if len(want) != 0 || len(req) != 0 {
			t.Errorf("want %q, requested %v", want, req)
		}
	})
	t.Run("from report", func(t *testing.T) {
		plan := &Plan{}
		wantPkgs := map[string]string{
			"openssl":   "3.0.22-1~deb12u1",        // reached
			"libssl3":   "3.0.22-1~deb12u2",        // reached exactly
			"libc6":     "2.36-9+deb12u11",         // candidate too old
			"zlib1g":    "1:1.2.13.dfsg-1+deb12u1", // installed, no candidate
			"perl-base": "",                        // no fixed version: any update, but none offered
			"curl":      "7.88.1-10+deb12u9",       // not installed on this platform
		}
		want, req := wantedOf(FromReport, wantPkgs, cands, installed, plan)
		// Sorted by name; libc6 is still updated to the best candidate.
		if !slices.Equal(want, []string{"libc6", "libssl3", "openssl"}) {
			t.Errorf("want %q", want)
		}
		if len(req) != 3 || !req["libc6"] || !req["libssl3"] || !req["openssl"] || req["curl"] {
			t.Errorf("requested %v", req)
		}
		wantUn := []Unavailable{
			{Package: "libc6", Installed: "2.36-9+deb12u9", Wanted: "2.36-9+deb12u11", Candidate: "2.36-9+deb12u10"},
			{Package: "perl-base", Installed: "5.36.0-7+deb12u1", Wanted: ""},
			{Package: "zlib1g", Installed: "1:1.2.13.dfsg-1", Wanted: "1:1.2.13.dfsg-1+deb12u1"},
		}
		if !slices.Equal(plan.Unavailable, wantUn) {
			t.Errorf("unavailable:\n got %+v\nwant %+v", plan.Unavailable, wantUn)
		}
	})
	t.Run("from report, empty fixed version with a candidate", func(t *testing.T) {
		plan := &Plan{}
		want, _ := wantedOf(FromReport, map[string]string{"openssl": ""}, cands, installed, plan)
		if !slices.Equal(want, []string{"openssl"}) || len(plan.Unavailable) != 0 {
			t.Errorf("want %q, unavailable %+v", want, plan.Unavailable)
		}
	})
	t.Run("from report, nothing wanted", func(t *testing.T) {
		plan := &Plan{}
		want, req := wantedOf(FromReport, nil, cands, installed, plan)
		if len(want) != 0 || len(req) != 0 || len(plan.Unavailable) != 0 {
			t.Errorf("want %q, requested %v, unavailable %v", want, req, plan.Unavailable)
		}
	})
}

type clockAt time.Time

func (c clockAt) Now() time.Time { return time.Time(c) }

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestCheckSupport(t *testing.T) {
	releases := []vulndb.Release{
		{Distro: "debian", Version: "11", Codename: "bullseye", Series: "bullseye", Released: day("2021-08-14"), EOL: day("2024-08-14"), EOLLTS: day("2026-08-31"), EOLELTS: day("2031-06-30")},
		{Distro: "debian", Version: "12", Codename: "bookworm", Series: "bookworm", Released: day("2023-06-10"), EOL: day("2026-06-10"), EOLLTS: day("2028-06-30")},
		{Distro: "debian", Version: "10", Codename: "buster", Series: "buster", Released: day("2019-07-06"), EOL: day("2022-09-10"), EOLLTS: day("2024-06-30")},
		{Distro: "debian", Version: "13", Codename: "trixie", Series: "trixie", Released: day("2025-08-09")},
		{Distro: "ubuntu", Version: "20.04", Series: "focal", Released: day("2020-04-23"), EOL: day("2025-05-29"), EOLELTS: day("2030-04-02")},
	}
	debian := func(v, code string) osinfo.OS {
		return osinfo.OS{ID: "debian", Family: osinfo.FamilyDebian, VersionID: v, VersionCodename: code}
	}
	ubuntu := osinfo.OS{ID: "ubuntu", Family: osinfo.FamilyDebian, VersionID: "20.04", VersionCodename: "focal"}
	tests := []struct {
		name     string
		os       osinfo.OS
		now      string
		allowEOL bool
		support  string
		end      string
		err      string // "" for no error
	}{
		{"supported", debian("12", "bookworm"), "2025-02-12", false, "supported", "2026-06-10", ""},
		{"last regular day", debian("12", "bookworm"), "2026-06-10", false, "supported", "2026-06-10", ""},
		{"LTS", debian("11", "bullseye"), "2025-02-12", false, "lts", "2026-08-31", ""},
		{"no end date yet", debian("13", "trixie"), "2026-01-01", false, "supported", "", ""},
		{"not released yet", debian("13", "trixie"), "2025-01-01", false, "unknown", "", ""},
		{"unknown release", debian("99", "future"), "2025-01-01", false, "unknown", "", ""},
		{"ELTS is end of life", debian("11", "bullseye"), "2026-11-24", false, "elts", "2026-08-31", "(elts)"},
		{"ended", debian("10", "buster"), "2025-01-01", false, "ended", "2024-06-30", "public security support ended on 2024-06-30 (ended)"},
		{"ended, allowed", debian("10", "buster"), "2025-01-01", true, "ended", "2024-06-30", ""},
		{"ubuntu ESM is end of life", ubuntu, "2025-06-01", false, "elts", "2025-05-29", "(elts)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := supportEngine(t, releases, day(tt.now), tt.allowEOL)
			plan := &Plan{OS: "Debian GNU/Linux"}
			err := e.checkSupport(tt.os, plan)
			if plan.Support != tt.support || plan.SupportEnd != tt.end {
				t.Errorf("plan support %q until %q, want %q until %q", plan.Support, plan.SupportEnd, tt.support, tt.end)
			}
			if tt.err == "" {
				if err != nil {
					t.Errorf("checkSupport: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrEndOfLife) {
				t.Fatalf("checkSupport error %v, want ErrEndOfLife", err)
			}
			for _, s := range []string{tt.err, "Debian GNU/Linux", "--allow-eol"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
	t.Run("no distro-info data", func(t *testing.T) {
		e := supportEngine(t, nil, day("2025-01-01"), false)
		plan := &Plan{}
		if err := e.checkSupport(debian("10", "buster"), plan); err != nil || plan.Support != "unknown" || plan.SupportEnd != "" {
			t.Errorf("checkSupport without releases = %v, support %q %q", err, plan.Support, plan.SupportEnd)
		}
	})
}

// supportEngine is an engine deciding end-of-life with releases at now.
func supportEngine(t *testing.T, releases []vulndb.Release, now time.Time, allowEOL bool) *engine {
	t.Helper()
	o, err := makeOptions([]Option{WithReleases(releases), WithClock(clockAt(now))})
	if err != nil {
		t.Fatal(err)
	}
	return &engine{o: o, req: Request{AllowEOL: allowEOL}}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := makeOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.clock == nil || o.log == nil || o.tempDir == "" || o.progress == nil || !strings.HasPrefix(o.tool, "drydock ") ||
		o.cacheDir == "" || o.backends[osinfo.FamilyDebian] == nil || o.sandbox == nil {
		t.Errorf("defaults: %+v", o)
	}
	o, err = makeOptions([]Option{WithTool("x"), WithCacheDir("/c")})
	if err != nil || o.tool != "x" || o.cacheDir != "/c" {
		t.Errorf("options not applied: %+v, %v", o, err)
	}
	for _, bad := range []Option{WithTool(""), WithCacheDir(""), WithTempDir(""), WithClock(nil), WithLogger(nil),
		WithProgress(nil), WithVulnDB(nil), WithHTTPClient(nil), WithBackend(osinfo.FamilyAlpine, nil)} {
		if _, err := makeOptions([]Option{bad}); err == nil {
			t.Error("a bad option was accepted")
		}
	}
}

func TestPlanHelpers(t *testing.T) {
	p := &Plan{Changes: []Change{{Package: "a", To: "1", Size: 10}, {Package: "b", To: "2:3", Size: 5}}}
	if p.DownloadSize() != 15 {
		t.Errorf("DownloadSize = %d", p.DownloadSize())
	}
	if got := joinChanges(p.Changes); got != "a=1,b=2:3" {
		t.Errorf("joinChanges = %q", got)
	}
	if got := joinChanges(nil); got != "" {
		t.Errorf("joinChanges(nil) = %q", got)
	}
}

// TestRegression_CheckSupportELTSEndDate: for a release in ELTS (paid support
// only), checkSupport's refusal says "public security support ended on
// <date>" with the end of ELTS, a date in the future: bullseye on
// 2026-11-24 gets "ended on 2031-06-30 (elts)". Want the day public
// support actually ended, the end of LTS: 2026-08-31 (for Ubuntu ESM, the
// end of standard support).
func TestRegression_CheckSupportELTSEndDate(t *testing.T) {
	releases := []vulndb.Release{{Distro: "debian", Version: "11", Codename: "bullseye", Series: "bullseye",
		Released: day("2021-08-14"), EOL: day("2024-08-14"), EOLLTS: day("2026-08-31"), EOLELTS: day("2031-06-30")}}
	e := supportEngine(t, releases, day("2026-11-24"), false)
	err := e.checkSupport(osinfo.OS{ID: "debian", Family: osinfo.FamilyDebian, VersionID: "11"}, &Plan{OS: "Debian GNU/Linux 11"})
	if err == nil || !strings.Contains(err.Error(), "ended on 2026-08-31") {
		t.Errorf("checkSupport error %q, want it to say public support ended on 2026-08-31", err)
	}
}
