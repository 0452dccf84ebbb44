package osinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

// newestDistroInfo is the distro-info-data version with the newest dates.
const newestDistroInfo = "2026.10.12-1"

func day(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func loadDistroInfo(t *testing.T, version, distro string) []vulndb.Release {
	t.Helper()
	p := filepath.Join(vulndatatest.Dir(t), "debian-eol", "distro-info-data", version, distro+".csv")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rels, err := ParseDistroInfo(f, distro)
	if err != nil {
		t.Fatalf("ParseDistroInfo(%s): %v", p, err)
	}
	return rels
}

func TestParseDistroInfoRealData(t *testing.T) {
	root := filepath.Join(vulndatatest.Dir(t), "debian-eol", "distro-info-data")
	files, err := filepath.Glob(filepath.Join(root, "*", "*.csv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no distro-info-data CSVs under %s: %v", root, err)
	}
	for _, p := range files {
		distro := strings.TrimSuffix(filepath.Base(p), ".csv")
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		rels, err := ParseDistroInfo(f, distro)
		f.Close()
		if err != nil || len(rels) == 0 {
			t.Errorf("%s: %d releases, %v", p, len(rels), err)
		}
	}

	deb := loadDistroInfo(t, newestDistroInfo, vulndb.Debian)
	want := vulndb.Release{Distro: "debian", Version: "11", Codename: "Bullseye", Series: "bullseye",
		Created: day("2019-07-06"), Released: day("2021-08-14"), EOL: day("2024-08-14"),
		EOLLTS: day("2026-08-31"), EOLELTS: day("2031-06-30"), Source: DistroInfoSource}
	if got := find(deb, "11"); got != want {
		t.Errorf("bullseye = %+v\nwant       %+v", got, want)
	}
	if sid := find(deb, "sid"); sid.Series != "sid" || sid.Version != "" || !sid.Released.IsZero() {
		t.Errorf("sid = %+v", sid)
	}
	ubu := loadDistroInfo(t, newestDistroInfo, vulndb.Ubuntu)
	jammy := find(ubu, "22.04")
	if jammy.Series != "jammy" || jammy.EOL != day("2027-06-01") || jammy.EOLELTS != day("2032-04-21") || !jammy.EOLLTS.IsZero() {
		t.Errorf("jammy = %+v", jammy)
	}
}

func find(rels []vulndb.Release, key string) vulndb.Release {
	for _, r := range rels {
		if r.Version == key || r.Series == key {
			return r
		}
	}
	return vulndb.Release{}
}

func TestLifecycleRealData(t *testing.T) {
	deb := loadDistroInfo(t, newestDistroInfo, vulndb.Debian)
	ubu := loadDistroInfo(t, newestDistroInfo, vulndb.Ubuntu)
	debian := func(v, code string) OS {
		return OS{ID: "debian", VersionID: v, VersionCodename: code, Family: FamilyDebian}
	}
	tests := []struct {
		name      string
		os        OS
		rels      []vulndb.Release
		now       string
		state     State
		until     string
		supported bool
	}{
		// The clock of the feed snapshot, and today's date.
		{"bullseye 2025-02-12: LTS", debian("11", "bullseye"), deb, "2025-02-12", StateLTS, "2026-08-31", true},
		{"bullseye 2024-08-14: last regular day", debian("11", "bullseye"), deb, "2024-08-14", StateSupported, "2024-08-14", true},
		// Bullseye's LTS ended on 2026-08-31: only paid ELTS remains, which
		// counts as ended.
		{"bullseye 2026-11-24: LTS over", debian("11", "bullseye"), deb, "2026-11-24", StateELTS, "2031-06-30", false},
		{"bookworm 2025-02-12", debian("12", "bookworm"), deb, "2025-02-12", StateSupported, "2026-07-11", true},
		// Bookworm's regular support ended 2026-07-11: LTS until 2028-06-30.
		{"bookworm 2026-11-24", debian("12", "bookworm"), deb, "2026-11-24", StateLTS, "2028-06-30", true},
		{"trixie 2026-11-24", debian("13", "trixie"), deb, "2026-11-24", StateSupported, "2028-08-09", true},
		{"buster 2026-11-24", debian("10", "buster"), deb, "2026-11-24", StateELTS, "2029-06-30", false},
		{"buster 2030-01-01: all over", debian("10", "buster"), deb, "2030-01-01", StateEnded, "2029-06-30", false},
		{"trixie while testing", OS{ID: "debian", Family: FamilyDebian, DebianVersion: "trixie/sid"}, deb, "2025-02-12", StateUnknown, "", false},
		{"sid", OS{ID: "debian", Family: FamilyDebian, DebianVersion: "forky/sid", VersionCodename: "sid"}, deb, "2026-11-24", StateUnknown, "", false},
		{"not in data", debian("99", ""), deb, "2026-11-24", StateUnknown, "", false},
		{"ubuntu 22.04 2025-02-12", OS{ID: "ubuntu", VersionID: "22.04", Family: FamilyDebian}, ubu, "2025-02-12", StateSupported, "2027-06-01", true},
		{"ubuntu 22.04 2030-01-01: ESM only", OS{ID: "ubuntu", VersionID: "22.04", Family: FamilyDebian}, ubu, "2030-01-01", StateELTS, "2032-04-21", false},
		{"ubuntu 18.04 2026-11-24", OS{ID: "ubuntu", VersionID: "18.04", Family: FamilyDebian}, ubu, "2026-11-24", StateELTS, "2028-04-26", false},
		{"ubuntu 22.10 2025-02-12", OS{ID: "ubuntu", VersionID: "22.10", Family: FamilyDebian}, ubu, "2025-02-12", StateEnded, "2023-07-20", false},
		{"ubuntu id against debian data", OS{ID: "ubuntu", VersionID: "12"}, deb, "2025-02-12", StateUnknown, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Lifecycle(tt.os, tt.rels, day(tt.now).Add(12*time.Hour))
			var until time.Time
			if tt.until != "" {
				until = day(tt.until)
			}
			wantEnded := tt.state == StateELTS || tt.state == StateEnded
			if s.State != tt.state || !s.Until.Equal(until) || s.Supported() != tt.supported || s.Ended() != wantEnded {
				t.Errorf("Lifecycle = %s until %s (release %q), supported %v; want %s until %s, supported %v",
					s.State, s.Until.Format(dateLayout), s.Release.Series, s.Supported(), tt.state, tt.until, tt.supported)
			}
		})
	}
}

func TestParseDistroInfo(t *testing.T) {
	tests := []struct {
		name    string
		distro  string
		in      string
		want    []vulndb.Release
		wantErr string
	}{
		{
			name:   "debian with empty trailing fields",
			distro: "debian",
			in:     "version,codename,series,created,release,eol,eol-lts,eol-elts\n14,Forky,forky,2025-08-09\n,Sid,sid,1993-08-16\n",
			want: []vulndb.Release{
				{Distro: "debian", Version: "14", Codename: "Forky", Series: "forky", Created: day("2025-08-09"), Source: DistroInfoSource},
				{Distro: "debian", Codename: "Sid", Series: "sid", Created: day("1993-08-16"), Source: DistroInfoSource},
			},
		},
		{
			name:   "ubuntu LTS, server date later",
			distro: "ubuntu",
			in:     "version,codename,series,created,release,eol,eol-server,eol-esm\n10.04 LTS,Lucid Lynx,lucid,2009-10-29,2010-04-29,2013-05-09,2015-04-30,\n",
			want: []vulndb.Release{
				{Distro: "ubuntu", Version: "10.04", Codename: "Lucid Lynx", Series: "lucid", Created: day("2009-10-29"),
					Released: day("2010-04-29"), EOL: day("2015-04-30"), Source: DistroInfoSource},
			},
		},
		{name: "missing column", distro: "debian", in: "version,codename,series,created,release\n", wantErr: `lacks column "eol"`},
		{name: "bad date", distro: "debian", in: "version,codename,series,created,release,eol\n1,A,a,2020-13-01,,\n", wantErr: "line 2: column created"},
		{name: "empty", distro: "debian", in: "", wantErr: "reading header"},
		{name: "no names", distro: "debian", in: "version,codename,series,created,release,eol\n,,,,,\n", wantErr: "neither version nor series"},
		{name: "no distro", distro: "", in: "x", wantErr: "empty distro"},
		{name: "bad quoting", distro: "debian", in: "version,codename,series,created,release,eol\n\"1,A\n", wantErr: "distro-info debian"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDistroInfo(strings.NewReader(tt.in), tt.distro)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] = %+v\nwant  %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzParseDistroInfo(f *testing.F) {
	f.Add("version,codename,series,created,release,eol,eol-lts,eol-elts\n12,Bookworm,bookworm,2021-08-14,2023-06-10,2026-07-11,2028-06-30,2033-06-30\n")
	f.Add("version,codename,series,created,release,eol,eol-server,eol-esm,eol-legacy\n22.04 LTS,Jammy Jellyfish,jammy,2021-10-14,2022-04-21,2027-06-01,2027-06-01,2032-04-21,2037-04-30\n")
	f.Add("version\n\"")
	f.Fuzz(func(t *testing.T, in string) {
		for _, distro := range []string{"debian", "ubuntu"} {
			rels, err := ParseDistroInfo(strings.NewReader(in), distro)
			if err != nil {
				continue
			}
			for _, r := range rels {
				_ = Lifecycle(OS{ID: distro, VersionID: r.Version, VersionCodename: r.Series}, rels, day("2026-11-24"))
			}
		}
	})
}
