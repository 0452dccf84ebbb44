package scan

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// fakeDB is an in-memory Database of hand-made records.
type fakeDB struct {
	advs []vulndb.Advisory
	rels []vulndb.Release
	sup  []vulndb.PackageSupport
	meta vulndb.Meta
}

func (d *fakeDB) AdvisoriesFor(_ context.Context, distro, release string, pkgs []string) (map[string][]vulndb.Advisory, error) {
	out := map[string][]vulndb.Advisory{}
	for _, a := range d.advs {
		if a.Distro == distro && a.Release == release && slices.Contains(pkgs, a.Package) {
			out[a.Package] = append(out[a.Package], a)
		}
	}
	return out, nil
}

func (d *fakeDB) Releases(_ context.Context, distro string) ([]vulndb.Release, error) {
	var out []vulndb.Release
	for _, r := range d.rels {
		if r.Distro == distro {
			out = append(out, r)
		}
	}
	return out, nil
}

func (d *fakeDB) PackageSupport(_ context.Context, distro, release string, pkgs ...string) ([]vulndb.PackageSupport, error) {
	var out []vulndb.PackageSupport
	for _, p := range d.sup {
		if p.Distro == distro && p.Release == release && slices.Contains(pkgs, p.Package) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (d *fakeDB) Meta() vulndb.Meta { return d.meta }

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

const status = `Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.15-1~deb12u1

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.15-1~deb12u1

Package: libfoo1
Status: install ok installed
Architecture: amd64
Source: foo (1:2.3-4)
Version: 1:2.3-4+b1

Package: bar
Status: install ok installed
Architecture: all
Version: 1.0~rc1-1

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: legacy
Status: install ok installed
Architecture: amd64
Version: 0.9-1
`

func testFS(osRelease string) fstest.MapFS {
	return fstest.MapFS{
		"etc/os-release":      {Data: []byte(osRelease)},
		"etc/debian_version":  {Data: []byte("12.8\n")},
		"var/lib/dpkg/status": {Data: []byte(status)},
	}
}

const bookwormRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n"

func adv(id, pkg string, st vulndb.Status, fixed string, sev vulndb.Severity) vulndb.Advisory {
	return vulndb.Advisory{ID: id, Distro: "debian", Release: "12", Package: pkg, Status: st, FixedVersion: fixed,
		Severity: sev, SeveritySource: "debian urgency", Title: id + " title", Source: "debian-tracker"}
}

func testDB() *fakeDB {
	fixed := vulndb.StatusFixed
	a := adv("CVE-2024-0001", "openssl", fixed, "3.0.15-1~deb12u2", vulndb.SeverityHigh)
	a.FixedBy = []string{"DSA-5999-1"}
	a.References = []string{"https://security-tracker.debian.org/tracker/CVE-2024-0001"}
	other := adv("CVE-2024-0099", "openssl", fixed, "9.9", vulndb.SeverityCritical)
	other.Release = "11" // another release: never applies
	return &fakeDB{
		advs: []vulndb.Advisory{
			a,
			adv("CVE-2024-0002", "openssl", fixed, "3.0.15-1~deb12u1", vulndb.SeverityHigh), // equal: fixed
			adv("CVE-2024-0003", "openssl", vulndb.StatusNotAffected, "", vulndb.SeverityHigh),
			adv("CVE-2024-0004", "openssl", vulndb.StatusWillNotFix, "", vulndb.SeverityLow),
			adv("CVE-2024-0005", "foo", fixed, "2.3-9", vulndb.SeverityMedium),    // epoch 1 > 0: fixed
			adv("CVE-2024-0006", "foo", fixed, "1:2.3-5", vulndb.SeverityMedium),  // source 1:2.3-4 < 1:2.3-5
			adv("CVE-2024-0007", "bar", fixed, "1.0-1", vulndb.SeverityLow),       // 1.0~rc1-1 < 1.0-1
			adv("CVE-2024-0008", "bar", fixed, "1.0~rc1-1", vulndb.SeverityLow),   // equal
			adv("CVE-2024-0009", "bar", fixed, "1.0~beta1-1", vulndb.SeverityLow), // ~beta < ~rc
			adv("CVE-2024-0010", "bar", vulndb.StatusNoDSA, "", vulndb.SeverityMedium),
			adv("CVE-2024-0011", "bar", vulndb.StatusPostponed, "", ""),
			adv("CVE-2024-0012", "bar", vulndb.StatusUndetermined, "", vulndb.SeverityUnknown),
			adv("CVE-2024-0013", "bar", vulndb.StatusEndOfLife, "", vulndb.SeverityLow),
			adv("CVE-2024-0014", "bar", vulndb.StatusAffected, "", vulndb.SeverityCritical),
			adv("CVE-2024-0015", "gone", vulndb.StatusAffected, "", vulndb.SeverityCritical), // not installed
			adv("CVE-2024-0016", "bar", fixed, "", vulndb.SeverityLow),                       // fixed everywhere
			other,
		},
		rels: []vulndb.Release{{Distro: "debian", Version: "12", Codename: "Bookworm", Series: "bookworm",
			Released: day("2023-06-10"), EOL: day("2026-06-10"), EOLLTS: day("2028-06-30"), EOLELTS: day("2033-06-30")}},
		sup: []vulndb.PackageSupport{{Distro: "debian", Release: "12", Package: "legacy", Kind: "ended",
			LastVersion: "0.9-1", EndDate: day("2025-01-01"), Details: "https://example.org/legacy", Source: "debian-security-support"}},
		meta: vulndb.Meta{SchemaVersion: 1, BuiltAt: day("2025-02-12"),
			Sources: []vulndb.SourceMeta{{Name: "debian-tracker", DataAsOf: day("2025-02-12")}}},
	}
}

func clockAt(s string) Option { return WithClock(func() time.Time { return day(s) }) }

type key struct{ id, pkg, fixed string }

func keys(r *Report) []key {
	var out []key
	for _, f := range r.Findings {
		out = append(out, key{f.VulnerabilityID, f.PkgName, f.FixedVersion})
	}
	return out
}

func TestMatching(t *testing.T) {
	rep, err := New(testDB(), clockAt("2025-02-13"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := rep.FS(context.Background(), testFS(bookwormRelease))
	if err != nil {
		t.Fatal(err)
	}
	want := []key{
		{"CVE-2024-0007", "bar", "1.0-1"},
		{"CVE-2024-0010", "bar", ""},
		{"CVE-2024-0011", "bar", ""},
		{"CVE-2024-0012", "bar", ""},
		{"CVE-2024-0013", "bar", ""},
		{"CVE-2024-0014", "bar", ""},
		{"CVE-2024-0006", "libfoo1", "1:2.3-5"},
		{"CVE-2024-0001", "libssl3", "3.0.15-1~deb12u2"},
		{"CVE-2024-0004", "libssl3", ""},
		{"CVE-2024-0001", "openssl", "3.0.15-1~deb12u2"},
		{"CVE-2024-0004", "openssl", ""},
	}
	if got := keys(r); !slices.Equal(got, want) {
		t.Errorf("findings:\n got %v\nwant %v", got, want)
	}
	if r.Status != StatusOK || r.Clean() || r.Packages != 5 || r.SourcePackages != 4 || r.DB.Stale {
		t.Errorf("report: status %s packages %d sources %d stale %v", r.Status, r.Packages, r.SourcePackages, r.DB.Stale)
	}
	for _, f := range r.Findings {
		switch f.VulnerabilityID {
		case "CVE-2024-0001":
			if f.SrcName != "openssl" || f.SrcVersion != "3.0.15-1~deb12u1" || !slices.Equal(f.FixedBy, []string{"DSA-5999-1"}) ||
				f.Status != vulndb.StatusFixed || f.Severity != vulndb.SeverityHigh || len(f.References) != 1 || f.DataSource != "debian-tracker" {
				t.Errorf("finding %+v", f)
			}
		case "CVE-2024-0006":
			if f.InstalledVersion != "1:2.3-4+b1" || f.SrcVersion != "1:2.3-4" || f.SrcName != "foo" {
				t.Errorf("binNMU finding %+v", f)
			}
		case "CVE-2024-0010":
			if f.Status != vulndb.StatusNoDSA {
				t.Errorf("no-dsa finding %+v", f)
			}
		case "CVE-2024-0011":
			if f.Severity != vulndb.SeverityUnknown {
				t.Errorf("severity-less finding %+v", f)
			}
		}
	}
	if len(r.PackageSupport) != 1 || r.PackageSupport[0].SrcName != "legacy" || !slices.Equal(r.PackageSupport[0].Binaries, []string{"legacy"}) {
		t.Errorf("package support %+v", r.PackageSupport)
	}
}

func TestFilters(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want int
	}{
		{"none", nil, 11},
		{"ignore-unfixed", []Option{WithIgnoreUnfixed(true)}, 4},
		{"high", []Option{WithSeverities(vulndb.SeverityHigh)}, 2},
		{"critical,unknown", []Option{WithSeverities(vulndb.SeverityCritical, vulndb.SeverityUnknown)}, 3},
		{"unfixed+low", []Option{WithIgnoreUnfixed(true), WithSeverities(vulndb.SeverityLow)}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(testDB(), append(tc.opts, clockAt("2025-02-13"))...)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.FS(context.Background(), testFS(bookwormRelease))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Findings) != tc.want {
				t.Errorf("%d findings, want %d: %v", len(r.Findings), tc.want, keys(r))
			}
			for _, f := range r.Findings {
				if r.Filters.IgnoreUnfixed && !f.Fixable() {
					t.Errorf("unfixed finding kept: %+v", f)
				}
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	if _, err := New(testDB(), WithPkgTypes("os", "library")); !errors.Is(err, ErrLibraryScanning) ||
		!strings.Contains(err.Error(), "library scanning not supported") {
		t.Errorf("pkg-types library: %v", err)
	}
	if _, err := New(testDB(), WithSeverities("SEVERE")); err == nil {
		t.Error("unknown severity accepted")
	}
	if _, err := New(nil); err == nil {
		t.Error("nil DB accepted")
	}
	if _, err := New(testDB(), WithMaxDBAge(0)); err == nil {
		t.Error("zero max age accepted")
	}
	if got, err := ParseSeverities(" high,Critical,,HIGH"); err != nil || !slices.Equal(got, []vulndb.Severity{"HIGH", "CRITICAL"}) {
		t.Errorf("ParseSeverities = %v, %v", got, err)
	}
	if _, err := ParseSeverities("HIGH,nope"); err == nil {
		t.Error("ParseSeverities accepted nope")
	}
}

func TestEndOfLifeAndStale(t *testing.T) {
	s, err := New(testDB(), clockAt("2033-07-15"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.FS(context.Background(), testFS(bookwormRelease))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusEndOfLife || !r.OS.EOSL || r.Clean() || !strings.Contains(r.StatusReason, "2028-06-30") {
		t.Errorf("status %s eosl %v reason %q", r.Status, r.OS.EOSL, r.StatusReason)
	}
	if !r.DB.Stale || len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "stale") {
		t.Errorf("stale DB not flagged: %+v %v", r.DB, r.Warnings)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "END OF LIFE: ") {
		t.Errorf("table does not start with the end-of-life notice:\n%s", buf.String())
	}
	// An EOL OS with every finding filtered out is still not clean.
	s, _ = New(testDB(), clockAt("2033-07-15"), WithSeverities(vulndb.SeverityHigh), WithIgnoreUnfixed(true))
	r, _ = s.FS(context.Background(), testFS(bookwormRelease))
	if r.Clean() {
		t.Error("end-of-life report is clean")
	}
	// Paid ELTS only (2029) is end-of-life too.
	s, _ = New(testDB(), clockAt("2029-01-01"))
	r, _ = s.FS(context.Background(), testFS(bookwormRelease))
	if r.Status != StatusEndOfLife || r.Support.State != "elts" || !r.Support.PublicSupportEnded.Equal(day("2028-06-30")) {
		t.Errorf("2029: status %s support %+v", r.Status, r.Support)
	}
	// Supported: 2027 is LTS.
	s, _ = New(testDB(), clockAt("2027-01-01"), WithMaxDBAge(10000*24*time.Hour))
	r, _ = s.FS(context.Background(), testFS(bookwormRelease))
	if r.Status != StatusOK || r.Support.State != "lts" || r.DB.Stale {
		t.Errorf("2027: status %s support %+v stale %v", r.Status, r.Support, r.DB.Stale)
	}
}

func TestUnsupported(t *testing.T) {
	tests := map[string]fstest.MapFS{
		"no os-release": {"var/lib/dpkg/status": {Data: []byte(status)}},
		"unknown distro": {"etc/os-release": {Data: []byte("ID=plan9\nVERSION_ID=4\n")},
			"var/lib/dpkg/status": {Data: []byte(status)}},
		"debian release without data": {"etc/os-release": {Data: []byte("ID=debian\nVERSION_ID=\"9\"\nVERSION_CODENAME=stretch\n")},
			"var/lib/dpkg/status": {Data: []byte(status)}},
	}
	// (A RHEL-family image without an rpm database is unverifiable, not
	// unsupported: see TestUnverifiable.)
	for name, fsys := range tests {
		t.Run(name, func(t *testing.T) {
			s, _ := New(testDB(), clockAt("2025-02-13"))
			r, err := s.FS(context.Background(), fsys)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != StatusUnsupported || r.Clean() || len(r.Findings) != 0 || r.StatusReason == "" {
				t.Errorf("report %+v", r)
			}
			var buf bytes.Buffer
			if err := WriteTable(&buf, r); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), "UNSUPPORTED: ") || strings.Contains(buf.String(), "Total: 0") {
				t.Errorf("table:\n%s", buf.String())
			}
			if tr := TrivyFromReport(r); len(tr.Results) != 0 {
				t.Errorf("trivy results for an unsupported OS: %+v", tr.Results)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	var outs []string
	for range 3 {
		db := testDB()
		slices.Reverse(db.advs)
		s, _ := New(db, clockAt("2025-02-13"))
		r, err := s.FS(context.Background(), testFS(bookwormRelease))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, w := range []Writer{WriteJSON, WriteTable, WriteTrivyJSON} {
			if err := w(&buf, r); err != nil {
				t.Fatal(err)
			}
		}
		outs = append(outs, buf.String())
	}
	if outs[0] != outs[1] || outs[1] != outs[2] {
		t.Error("output differs between runs")
	}
}

func TestCorruptImage(t *testing.T) {
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A layer whose bytes are not a tar stream.
	bad, err := mutate.AppendLayers(img, static.NewLayer([]byte("not a tar archive at all"), types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Scan(context.Background(), bad, testDB(), clockAt("2025-02-13")); err == nil {
		t.Error("scanning a corrupt layer succeeded")
	}
	// A well-formed image without an OS is unsupported, not an error.
	r, err := Scan(context.Background(), img, testDB(), clockAt("2025-02-13"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusUnsupported || r.Artifact.Digest == "" {
		t.Errorf("random image: %+v", r)
	}
}

func FuzzParseSeverities(f *testing.F) {
	for _, s := range []string{"HIGH,CRITICAL", "low", "", ",,", "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL", "HIGH,x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sev, err := ParseSeverities(s)
		if err != nil {
			return
		}
		for _, v := range sev {
			if severityRank(v) < 0 {
				t.Errorf("ParseSeverities(%q) returned %q", s, v)
			}
		}
	})
}
