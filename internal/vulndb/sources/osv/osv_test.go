package osv

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

// recorder is a vulndb.Sink that keeps advisories.
type recorder struct {
	advs []vulndb.Advisory
}

func (r *recorder) Advisory(a vulndb.Advisory) error { r.advs = append(r.advs, a); return nil }
func (r *recorder) Release(vulndb.Release) error     { return errors.New("unexpected Release") }
func (r *recorder) PackageSupport(vulndb.PackageSupport) error {
	return errors.New("unexpected PackageSupport")
}

func (r *recorder) find(id, distro, release, pkg string) (vulndb.Advisory, bool) {
	for _, a := range r.advs {
		if a.ID == id && a.Distro == distro && a.Release == release && a.Package == pkg {
			return a, true
		}
	}
	return vulndb.Advisory{}, false
}

func importFile(t testing.TB, url, file string) *recorder {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	if err := s.Import(context.Background(), url, file, &r); err != nil {
		t.Fatalf("Import(%s): %v", file, err)
	}
	return &r
}

// checkInvariants holds for every import: one record per key, statuses and
// fixed versions consistent, FixedBy sorted.
func checkInvariants(t *testing.T, advs []vulndb.Advisory, distro string) {
	t.Helper()
	seen := map[key]bool{}
	for _, a := range advs {
		k := key{a.ID, a.Distro, a.Release, a.Package}
		if seen[k] {
			t.Errorf("duplicate record %v", k)
		}
		seen[k] = true
		if a.Distro != distro || a.Release == "" || a.Package == "" || a.ID == "" || a.Source != Name {
			t.Errorf("bad record %+v", k)
		}
		if (a.Status == vulndb.StatusFixed) != (a.FixedVersion != "") {
			t.Errorf("%v: status %s with fixed version %q", k, a.Status, a.FixedVersion)
		}
		if !slices.IsSorted(a.FixedBy) {
			t.Errorf("%v: FixedBy not sorted: %v", k, a.FixedBy)
		}
	}
}

func TestImportDebianReal(t *testing.T) {
	zipPath := filepath.Join(vulndatatest.Dir(t), "osv", "Debian", "all.zip")
	r := importFile(t, "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip", zipPath)
	checkInvariants(t, r.advs, vulndb.Debian)
	t.Logf("%d Debian advisory records", len(r.advs))

	tests := []struct {
		id, release, pkg string
		status           vulndb.Status
		fixed            string
		severity         vulndb.Severity
		sevSource        string
		fixedBy          []string
	}{
		// CVE record + DSA-5673-1 (bookworm, bullseye).
		{"CVE-2024-2961", "12", "glibc", vulndb.StatusFixed, "2.36-9+deb12u6", vulndb.SeverityUnknown, "", []string{"DSA-5673-1"}},
		{"CVE-2024-2961", "11", "glibc", vulndb.StatusFixed, "2.31-13+deb11u9", vulndb.SeverityUnknown, "", []string{"DSA-5673-1"}},
		{"CVE-2024-2961", "13", "glibc", vulndb.StatusFixed, "2.37-18", vulndb.SeverityUnknown, "", nil},
		// No Debian:10 entry in the CVE record: from DLA-3807-1 alone.
		{"CVE-2024-2961", "10", "glibc", vulndb.StatusFixed, "2.28-10+deb10u3", vulndb.SeverityUnknown, "", []string{"DLA-3807-1"}},
		// CVSS 3.1 AV:N/AC:H/.../C:H/I:H/A:H = 8.1, urgency not yet assigned.
		{"CVE-2024-6387", "12", "openssh", vulndb.StatusFixed, "1:9.2p1-2+deb12u3", vulndb.SeverityHigh, "osv cvss_v3", []string{"DSA-5724-1"}},
		{"CVE-2023-38545", "12", "curl", vulndb.StatusFixed, "7.88.1-10+deb12u4", vulndb.SeverityCritical, "osv cvss_v3", []string{"DSA-5523-1"}},
		{"CVE-2024-3094", "13", "xz-utils", vulndb.StatusFixed, "5.6.1+really5.4.5-1", vulndb.SeverityCritical, "osv cvss_v3", nil},
		// Debian urgency wins over CVSS (CVE-2002-0639 also has a 9.8 vector).
		{"CVE-2002-0639", "12", "openssh", vulndb.StatusFixed, "1:3.4", vulndb.SeverityHigh, "debian urgency", nil},
		{"CVE-2004-0971", "12", "krb5", vulndb.StatusFixed, "1.13.2+dfsg-2", vulndb.SeverityLow, "debian urgency", nil},
		// No CVE record in the subset: from the DSA/DLA records only.
		{"CVE-2023-1393", "11", "xorg-server", vulndb.StatusFixed, "2:1.20.11-1+deb11u6", vulndb.SeverityUnknown, "", []string{"DSA-5380-1"}},
		{"CVE-2023-1393", "10", "xorg-server", vulndb.StatusFixed, "2:1.20.4-1+deb10u9", vulndb.SeverityUnknown, "", []string{"DLA-3372-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.id+"/"+tc.release+"/"+tc.pkg, func(t *testing.T) {
			a, ok := r.find(tc.id, vulndb.Debian, tc.release, tc.pkg)
			if !ok {
				t.Fatal("no record")
			}
			if a.Status != tc.status || a.FixedVersion != tc.fixed || a.Severity != tc.severity || a.SeveritySource != tc.sevSource || !slices.Equal(a.FixedBy, tc.fixedBy) {
				t.Errorf("got %s %q %s %q %v; want %s %q %s %q %v", a.Status, a.FixedVersion, a.Severity, a.SeveritySource, a.FixedBy,
					tc.status, tc.fixed, tc.severity, tc.sevSource, tc.fixedBy)
			}
		})
	}
	// The Debian export's CVE records also list Alpine entries: not emitted
	// from the Debian export.
	for _, a := range r.advs {
		if a.Distro != vulndb.Debian {
			t.Fatalf("non-Debian record from the Debian export: %+v", a)
		}
	}
	// An advisory without CVE ids keeps its own id; none is a bare DSA
	// record otherwise.
	if a, ok := r.find("DSA-5356-2", vulndb.Debian, "11", "sox"); !ok || a.FixedVersion != "14.4.2+git20190427-2+deb11u2" || !slices.Equal(a.FixedBy, []string{"DSA-5356-2"}) {
		t.Errorf("DSA-5356-2 (regression update, no CVE) = %+v, %v", a, ok)
	}
	eol := 0
	for _, a := range r.advs {
		if a.Status == vulndb.StatusEndOfLife {
			eol++
		}
	}
	if eol == 0 {
		t.Error("no end-of-life record, want some (urgency end-of-life)")
	}
}

func TestImportAlpineReal(t *testing.T) {
	zipPath := filepath.Join(vulndatatest.Dir(t), "osv", "Alpine", "all.zip")
	r := importFile(t, "https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip", zipPath)
	checkInvariants(t, r.advs, vulndb.Alpine)
	t.Logf("%d Alpine advisory records", len(r.advs))
	// secdb's "0" (not affected) comes through OSV as "fixed": "0".
	a, ok := r.find("CVE-2022-2274", vulndb.Alpine, "3.21", "openssl")
	if !ok || a.Status != vulndb.StatusNotAffected {
		t.Errorf("CVE-2022-2274 alpine 3.21 openssl = %+v, %v; want not_affected", a, ok)
	}
}

// writeZip writes members to a zip file in t's temp dir.
func writeZip(t testing.TB, dir string, members map[string]string) string {
	t.Helper()
	p := filepath.Join(dir, "all.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(members[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Hand-made records: parsing edge cases only, not vulnerability facts.
func TestImportEdgeCases(t *testing.T) {
	members := map[string]string{
		"UBUNTU-CVE-2099-0001.json": `{"id":"UBUNTU-CVE-2099-0001","upstream":["CVE-2099-0001"],
		  "published":"2099-01-02T03:04:05Z","modified":"2099-01-03T00:00:00.123456Z",
		  "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},{"type":"Ubuntu","score":"negligible"}],
		  "affected":[
		    {"package":{"ecosystem":"Ubuntu:22.04:LTS","name":"pkga"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0-1ubuntu0.1"}]}]},
		    {"package":{"ecosystem":"Ubuntu:Pro:22.04:LTS","name":"pkga"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0-1ubuntu0.1+esm1"}]}]},
		    {"package":{"ecosystem":"Ubuntu:24.10","name":"pkga"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]},
		    {"package":{"ecosystem":"PyPI","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`,
		"USN-9999-1.json": `{"id":"USN-9999-1","related":["UBUNTU-CVE-2099-0001"],"affected":[
		    {"package":{"ecosystem":"Ubuntu:22.04:LTS","name":"pkga"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0-1ubuntu0.1"}]}]}]}`,
		"CVE-2099-0002.json": `{"id":"CVE-2099-0002","affected":[
		    {"package":{"ecosystem":"Alpine:v3.21","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.2-r0"}]}]},
		    {"package":{"ecosystem":"Alpine:v3.21","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.10-r0"}]}]},
		    {"package":{"ecosystem":"Alpine:v3.20","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"0"}]}]},
		    {"package":{},"ranges":[{"type":"GIT","repo":"r","events":[{"introduced":"0"}]}]}]}`,
		"DEBIAN-CVE-2099-0003.json": `{"id":"DEBIAN-CVE-2099-0003","affected":[
		    {"package":{"ecosystem":"Debian:11","name":"d"},"ecosystem_specific":{"urgency":"end-of-life"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]},
		    {"package":{"ecosystem":"Debian:12","name":"d"},"ecosystem_specific":{"urgency":"low**"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0-2"}]}]},
		    {"package":{"ecosystem":"Debian:6.0","name":"d"},"ecosystem_specific":{"urgency":42},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`,
		"CVE-2099-0004.json": `{"id":"CVE-2099-0004","withdrawn":"2099-01-01T00:00:00Z","affected":[
		    {"package":{"ecosystem":"Debian:12","name":"d"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`,
		"dir/": "",
	}
	p := writeZip(t, t.TempDir(), members)
	r := importFile(t, "file:///tmp/all.zip", p)
	want := []vulndb.Advisory{
		{ID: "CVE-2099-0001", Distro: "ubuntu", Release: "22.04", Package: "pkga", Status: vulndb.StatusFixed, FixedVersion: "1.0-1ubuntu0.1",
			Severity: vulndb.SeverityLow, SeveritySource: "ubuntu priority", FixedBy: []string{"USN-9999-1"}},
		{ID: "CVE-2099-0001", Distro: "ubuntu", Release: "24.10", Package: "pkga", Status: vulndb.StatusAffected,
			Severity: vulndb.SeverityLow, SeveritySource: "ubuntu priority"},
		{ID: "CVE-2099-0002", Distro: "alpine", Release: "3.20", Package: "a", Status: vulndb.StatusNotAffected, Severity: vulndb.SeverityUnknown},
		{ID: "CVE-2099-0002", Distro: "alpine", Release: "3.21", Package: "a", Status: vulndb.StatusFixed, FixedVersion: "1.10-r0", Severity: vulndb.SeverityUnknown},
		{ID: "CVE-2099-0003", Distro: "debian", Release: "11", Package: "d", Status: vulndb.StatusEndOfLife, Severity: vulndb.SeverityUnknown},
		{ID: "CVE-2099-0003", Distro: "debian", Release: "12", Package: "d", Status: vulndb.StatusFixed, FixedVersion: "1.0-2", Severity: vulndb.SeverityLow, SeveritySource: "debian urgency"},
		{ID: "CVE-2099-0003", Distro: "debian", Release: "6", Package: "d", Status: vulndb.StatusAffected, Severity: vulndb.SeverityUnknown},
	}
	var got []vulndb.Advisory
	for _, a := range r.advs {
		a.Published, a.Modified, a.Source, a.Title, a.Description, a.References = time.Time{}, time.Time{}, "", "", "", nil
		got = append(got, a)
	}
	slices.SortFunc(got, func(a, b vulndb.Advisory) int {
		return cmpStrings(a.ID, b.ID, a.Release, b.Release, a.Package, b.Package)
	})
	if len(got) != len(want) {
		t.Fatalf("got %d records %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !advEqual(got[i], want[i]) {
			t.Errorf("record %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
	if a, _ := r.find("CVE-2099-0001", "ubuntu", "22.04", "pkga"); a.Modified.Nanosecond() != 123456000 || !a.Published.Equal(time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("times not parsed: %v %v", a.Published, a.Modified)
	}
}

func advEqual(a, b vulndb.Advisory) bool {
	return a.ID == b.ID && a.Distro == b.Distro && a.Release == b.Release && a.Package == b.Package &&
		a.Status == b.Status && a.FixedVersion == b.FixedVersion && a.Severity == b.Severity &&
		a.SeveritySource == b.SeveritySource && slices.Equal(a.FixedBy, b.FixedBy)
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	s, err := New(WithMaxRecordSize(64))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(WithMaxRecordSize(0)); err == nil {
		t.Error("WithMaxRecordSize(0) accepted")
	}
	big := writeZip(t, filepath.Join(dir), map[string]string{"CVE-1.json": `{"id":"CVE-1","details":"` + strings.Repeat("x", 100) + `"}`})
	if err := s.Import(context.Background(), "", big, &recorder{}); err == nil || !strings.Contains(err.Error(), "CVE-1.json") {
		t.Errorf("oversized record: err = %v", err)
	}
	bad := writeZip(t, t.TempDir(), map[string]string{"X.json": `{"id":`})
	if err := importErr(bad); err == nil || !strings.Contains(err.Error(), "X.json") {
		t.Errorf("malformed record: err = %v", err)
	}
	noID := writeZip(t, t.TempDir(), map[string]string{"X.json": `{}`})
	if err := importErr(noID); err == nil {
		t.Error("record without id accepted")
	}
	badTime := writeZip(t, t.TempDir(), map[string]string{"X.json": `{"id":"CVE-2000-0001","published":"yesterday"}`})
	if err := importErr(badTime); err == nil || !strings.Contains(err.Error(), "CVE-2000-0001") {
		t.Errorf("bad time: err = %v", err)
	}
	// A truncated zip names the file.
	data, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(t.TempDir(), "trunc.zip")
	if err := os.WriteFile(trunc, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := importErr(trunc); err == nil || !strings.Contains(err.Error(), trunc) {
		t.Errorf("truncated zip: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Import(ctx, "", bad, &recorder{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func importErr(file string) error {
	s, _ := New()
	return s.Import(context.Background(), "", file, &recorder{})
}

func FuzzImport(f *testing.F) {
	f.Add(`{"id":"CVE-2099-1","affected":[{"package":{"ecosystem":"Debian:12","name":"d"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1"}]}]}]}`, 0)
	f.Add(`{"id":"DSA-1-1","related":["CVE-2099-1"],"affected":[{"package":{"ecosystem":"Alpine:v3.1","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"0"}]}]}]}`, 0)
	f.Add(`{"id":"x","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N"}]}`, 40)
	s, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, member string, cut int) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, name := range []string{"DSA-1-1.json", "CVE-2099-1.json"} {
			w, err := zw.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(member)); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		if cut > 0 && cut < len(data) {
			data = data[:len(data)-cut] // truncated archive
		}
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		_ = s.importZip(context.Background(), "", "fuzz.zip", zr, &recorder{}) // must not panic
	})
}

// countingSink counts records and samples the heap.
type countingSink struct {
	n    int
	peak uint64
}

func (c *countingSink) Advisory(vulndb.Advisory) error {
	c.n++
	if c.n%2000 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c.peak = max(c.peak, ms.HeapInuse)
	}
	return nil
}
func (c *countingSink) Release(vulndb.Release) error               { return nil }
func (c *countingSink) PackageSupport(vulndb.PackageSupport) error { return nil }

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkImportDebian imports the full OSV Debian export (19,346
// records, 92 MB of JSON) and reports records/s and the peak heap in use.
func BenchmarkImportDebian(b *testing.B) {
	zipPath := filepath.Join(vulndatatest.Dir(b), "osv", "Debian", "all.zip")
	s, err := New()
	if err != nil {
		b.Fatal(err)
	}
	var sink countingSink
	b.ReportAllocs()
	cpu0 := cpuTime()
	start := time.Now()
	for b.Loop() {
		sink.n = 0
		if err := s.Import(context.Background(), "https://example.invalid/Debian/all.zip", zipPath, &sink); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(sink.n), "advisories/op")
	b.ReportMetric(19346*float64(b.N)/elapsed.Seconds(), "osv-records/s")
	// CPU time (user+system) per op, meaningful on a loaded machine.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(sink.peak)/(1<<20), "peak-heap-MiB")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxRSS-MiB") // whole test process; Linux reports KiB
	}
}

func TestImportDeterministic(t *testing.T) {
	zipPath := filepath.Join(vulndatatest.Dir(t), "osv", "Alpine", "all.zip")
	a := importFile(t, "Alpine/all.zip", zipPath)
	b := importFile(t, "Alpine/all.zip", zipPath)
	if !reflect.DeepEqual(a.advs, b.advs) {
		t.Error("two imports of the same file differ")
	}
}
