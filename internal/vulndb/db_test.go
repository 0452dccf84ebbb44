package vulndb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// fakeSource imports hand-made records; its "files" are local paths whose
// content is ignored.
type fakeSource struct {
	name string
	urls []string
	imp  func(ctx context.Context, url, path string, sink vulndb.Sink) error
}

func (s *fakeSource) Name() string          { return s.name }
func (s *fakeSource) DefaultURLs() []string { return s.urls }
func (s *fakeSource) Import(ctx context.Context, url, path string, sink vulndb.Sink) error {
	return s.imp(ctx, url, path, sink)
}

// records returns a fakeSource that emits recs from one local file.
func records(t testing.TB, name string, recs ...any) *fakeSource {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".txt")
	if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fakeSource{name: name, urls: []string{p}, imp: func(_ context.Context, _, _ string, sink vulndb.Sink) error {
		for _, r := range recs {
			var err error
			switch r := r.(type) {
			case vulndb.Advisory:
				err = sink.Advisory(r)
			case vulndb.Release:
				err = sink.Release(r)
			case vulndb.PackageSupport:
				err = sink.PackageSupport(r)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}}
}

var t0 = time.Date(2025, 2, 12, 0, 0, 0, 0, time.UTC)

func clock(t time.Time) vulndb.UpdateOption { return vulndb.WithClock(func() time.Time { return t }) }

func build(t testing.TB, path string, srcs ...vulndb.Source) *vulndb.UpdateReport {
	t.Helper()
	rep, err := vulndb.Update(context.Background(), path, srcs, clock(t0))
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rep
}

func open(t testing.TB, path string) *vulndb.DB {
	t.Helper()
	db, err := vulndb.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func adv(id, src string, st vulndb.Status, fixed string) vulndb.Advisory {
	return vulndb.Advisory{ID: id, Distro: "debian", Release: "12", Package: "openssl", Status: st, FixedVersion: fixed}
}

func TestMergePrecedence(t *testing.T) {
	osvA := adv("CVE-2024-1", "osv", vulndb.StatusFixed, "3.0.15-1~deb12u1")
	osvA.Severity, osvA.SeveritySource = vulndb.SeverityHigh, "osv severity"
	osvA.FixedBy = []string{"DSA-5800-1"}
	osvA.References = []string{"https://b.example/", "https://a.example/"}
	osvA.Description = "from osv"
	osvA.Published = t0.Add(-48 * time.Hour)
	osvA.Modified = t0
	osvDup := adv("CVE-2024-1", "osv", vulndb.StatusAffected, "")
	osvDup.FixedBy = []string{"DLA-1-1"}
	trk := adv("CVE-2024-1", "debian-tracker", vulndb.StatusNoDSA, "")
	trk.FixedBy = []string{"DSA-5800-1", "DSA-5801-1"}
	trk.Title = "tracker title"
	trk.References = []string{"https://a.example/"}
	trk.Published = t0.Add(-24 * time.Hour)
	other := adv("CVE-2023-9", "osv", vulndb.StatusFixed, "3.0.11-1~deb12u1")
	elsewhere := adv("CVE-2024-1", "osv", vulndb.StatusFixed, "1.1.1w-0+deb11u1")
	elsewhere.Release = "11"

	path := filepath.Join(t.TempDir(), "db.sqlite")
	build(t, path, records(t, "osv", osvA, osvDup, other, elsewhere), records(t, "debian-tracker", trk))
	db := open(t, path)
	got, err := db.Advisories(context.Background(), "debian", "12", "openssl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "CVE-2023-9" || got[1].ID != "CVE-2024-1" {
		t.Fatalf("got %+v, want CVE-2023-9 and CVE-2024-1 in that order", got)
	}
	m := got[1]
	want := vulndb.Advisory{
		ID: "CVE-2024-1", Distro: "debian", Release: "12", Package: "openssl",
		Status: vulndb.StatusNoDSA, Source: "debian-tracker", // the tracker wins the status
		Severity: vulndb.SeverityHigh, SeveritySource: "osv severity", // first that has one
		Title: "tracker title", Description: "from osv",
		References: []string{"https://a.example/", "https://b.example/"},
		FixedBy:    []string{"DLA-1-1", "DSA-5800-1", "DSA-5801-1"},
		Published:  t0.Add(-48 * time.Hour), Modified: t0,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("merged\n got %+v\nwant %+v", m, want)
	}

	// Another precedence: OSV first; among OSV records the fixed one wins.
	db2, err := vulndb.Open(path, vulndb.WithPrecedence("osv", "debian-tracker"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got, err = db2.Advisories(context.Background(), "debian", "12", "openssl")
	if err != nil {
		t.Fatal(err)
	}
	if m := got[1]; m.Status != vulndb.StatusFixed || m.FixedVersion != "3.0.15-1~deb12u1" || m.Source != "osv" || m.Title != "tracker title" {
		t.Errorf("osv first: got %+v", m)
	}
	// Merge on plain records agrees with the database.
	merged := vulndb.Merge([]vulndb.Advisory{trk, osvA, osvDup}, "osv")
	if len(merged) != 1 || merged[0].Status != vulndb.StatusFixed {
		t.Errorf("Merge: %+v", merged)
	}
}

func TestAdvisoriesForMatchesAdvisories(t *testing.T) {
	var recs []any
	pkgs := []string{"bash", "curl", "openssl", "zlib", "nothing-here"}
	for i, p := range pkgs[:4] {
		for j := range i + 1 {
			a := adv("CVE-2024-"+string(rune('0'+j)), "osv", vulndb.StatusFixed, "1.0")
			a.Package = p
			recs = append(recs, a)
		}
	}
	path := filepath.Join(t.TempDir(), "db.sqlite")
	build(t, path, records(t, "osv", recs...))
	db := open(t, path)
	ctx := context.Background()
	batch, err := db.AdvisoriesFor(ctx, "debian", "12", pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 4 {
		t.Errorf("batch has %d packages, want 4", len(batch))
	}
	for i, p := range pkgs {
		one, err := db.Advisories(ctx, "debian", "12", p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(one, batch[p]) {
			t.Errorf("%s: Advisories %+v, AdvisoriesFor %+v", p, one, batch[p])
		}
		if p != "nothing-here" && len(one) != i+1 {
			t.Errorf("%s: %d advisories, want %d", p, len(one), i+1)
		}
	}
	if empty, err := db.AdvisoriesFor(ctx, "debian", "12", nil); err != nil || len(empty) != 0 {
		t.Errorf("AdvisoriesFor(nil) = %v, %v", empty, err)
	}
}

func TestReleasesSupportAndMeta(t *testing.T) {
	bookworm := vulndb.Release{Distro: "debian", Version: "12", Codename: "bookworm", Series: "bookworm",
		Released: time.Date(2023, 6, 10, 0, 0, 0, 0, time.UTC), EOL: time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)}
	bullseye := vulndb.Release{Distro: "debian", Version: "11", Codename: "bullseye", Series: "bullseye",
		Released: time.Date(2021, 8, 14, 0, 0, 0, 0, time.UTC)}
	sup := vulndb.PackageSupport{Distro: "debian", Release: "12", Package: "chromium", Kind: "limited", Details: "see README"}
	ended := vulndb.PackageSupport{Distro: "debian", Release: "12", Package: "nodejs", Kind: "ended", LastVersion: "18.19.0", EndDate: t0}
	path := filepath.Join(t.TempDir(), "db.sqlite")
	rep := build(t, path, records(t, "distroinfo", bookworm, bullseye), records(t, "securitysupport", sup, ended))
	db := open(t, path)
	ctx := context.Background()

	r, ok, err := db.Release(ctx, "debian", "bookworm")
	bookworm.Source = "distroinfo"
	if err != nil || !ok || !reflect.DeepEqual(r, bookworm) {
		t.Errorf("Release(bookworm) = %+v, %v, %v", r, ok, err)
	}
	if _, ok, _ := db.Release(ctx, "debian", "99"); ok {
		t.Error("Release(99) found")
	}
	rels, err := db.Releases(ctx, "debian")
	if err != nil || len(rels) != 2 || rels[0].Version != "11" || rels[1].Version != "12" {
		t.Errorf("Releases = %+v, %v", rels, err)
	}
	ps, err := db.PackageSupport(ctx, "debian", "12")
	if err != nil || len(ps) != 2 || ps[0].Package != "chromium" || !ps[1].EndDate.Equal(t0) {
		t.Errorf("PackageSupport = %+v, %v", ps, err)
	}
	ps, err = db.PackageSupport(ctx, "debian", "12", "nodejs", "bash")
	if err != nil || len(ps) != 1 || ps[0].Package != "nodejs" || ps[0].Source != "securitysupport" {
		t.Errorf("PackageSupport(nodejs) = %+v, %v", ps, err)
	}

	m := db.Meta()
	if m.SchemaVersion != vulndb.SchemaVersion || !m.BuiltAt.Equal(t0) || len(m.Sources) != 2 {
		t.Fatalf("Meta = %+v", m)
	}
	if s := m.Sources[0]; s.Name != "distroinfo" || s.Releases != 2 || len(s.Fetches) != 1 || s.Fetches[0].SHA256 == "" {
		t.Errorf("Meta.Sources[0] = %+v", s)
	}
	if !reflect.DeepEqual(rep.Sources[1].SourceMeta, m.Sources[1]) {
		t.Errorf("report %+v != meta %+v", rep.Sources[1].SourceMeta, m.Sources[1])
	}
	if db.Stale(t0.Add(7*24*time.Hour), 7*24*time.Hour) || !db.Stale(t0.Add(8*24*time.Hour), 7*24*time.Hour) {
		t.Error("Stale: wrong at the 7-day boundary")
	}
}

func TestSinkRejectsIncompleteRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	_, err := vulndb.Update(context.Background(), path, []vulndb.Source{records(t, "osv", vulndb.Advisory{ID: "CVE-1"})})
	if err == nil || !strings.Contains(err.Error(), "source osv") || !strings.Contains(err.Error(), "required") {
		t.Fatalf("err = %v, want a source osv error about required fields", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed first update left %s: %v", path, err)
	}
	assertNoTempFiles(t, filepath.Dir(path))
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".build-") || strings.HasPrefix(e.Name(), ".pull-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestFailedUpdateKeepsOldDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	good := records(t, "osv", adv("CVE-2024-1", "", vulndb.StatusFixed, "1"))
	tracker := records(t, "debian-tracker", adv("CVE-2024-2", "", vulndb.StatusFixed, "2"))
	build(t, path, good, tracker)
	reader := open(t, path) // an open reader must keep working

	boom := errors.New("boom")
	bad := &fakeSource{name: "debian-tracker", urls: tracker.urls, imp: func(_ context.Context, _, _ string, sink vulndb.Sink) error {
		if err := sink.Advisory(adv("CVE-2024-3", "", vulndb.StatusFixed, "3")); err != nil {
			return err
		}
		return boom
	}}
	later := t0.Add(time.Hour)
	if _, err := vulndb.Update(ctx, path, []vulndb.Source{good, bad}, clock(later)); !errors.Is(err, boom) || !strings.Contains(err.Error(), "source debian-tracker") {
		t.Fatalf("err = %v, want boom naming the source", err)
	}
	assertNoTempFiles(t, filepath.Dir(path))
	if got, err := reader.Advisories(ctx, "debian", "12", "openssl"); err != nil || len(got) != 2 {
		t.Errorf("open reader: %v, %v", got, err)
	}
	if db := open(t, path); !db.Meta().BuiltAt.Equal(t0) {
		t.Errorf("database replaced by a failed update: built %v", db.Meta().BuiltAt)
	}

	// keep-going: the failing source keeps its previous records.
	rep, err := vulndb.Update(ctx, path, []vulndb.Source{good, bad}, clock(later), vulndb.WithKeepGoing(true))
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Sources[0]; s.Name != "debian-tracker" || !errors.Is(s.Err, boom) || s.Advisories != 1 || len(s.Fetches) != 1 || !strings.Contains(s.Fetches[0].Error, "boom") {
		t.Errorf("report: %+v", rep.Sources[0])
	}
	db := open(t, path)
	got, err := db.Advisories(ctx, "debian", "12", "openssl")
	if err != nil {
		t.Fatal(err)
	}
	if m := db.Meta(); !strings.Contains(m.Sources[0].Fetches[0].Error, "boom") || m.Sources[1].Fetches[0].Error != "" {
		t.Errorf("meta after keep-going: %+v", m)
	}
	if len(got) != 2 || got[1].ID != "CVE-2024-2" || !db.Meta().BuiltAt.Equal(later) {
		t.Errorf("after keep-going: %+v built %v", got, db.Meta().BuiltAt)
	}

	// --only: the other source is copied, fetch records included.
	osv2 := records(t, "osv", adv("CVE-2025-1", "", vulndb.StatusAffected, ""))
	rep, err = vulndb.Update(ctx, path, []vulndb.Source{osv2, tracker}, clock(later), vulndb.WithOnly("osv"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sources[0].Updated || !rep.Sources[1].Updated {
		t.Errorf("updated flags: %+v", rep.Sources)
	}
	db = open(t, path)
	got, err = db.Advisories(ctx, "debian", "12", "openssl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "CVE-2024-2" || got[1].ID != "CVE-2025-1" {
		t.Errorf("after --only osv: %+v", got)
	}
	if m := db.Meta(); len(m.Sources) != 2 || len(m.Sources[0].Fetches) != 1 {
		t.Errorf("meta after --only: %+v", m)
	}
	if _, err := vulndb.Update(ctx, path, []vulndb.Source{osv2}, vulndb.WithOnly("nope")); err == nil || !strings.Contains(err.Error(), `unknown source "nope"`) {
		t.Errorf("unknown --only: %v", err)
	}
}

func TestKeepGoingWithoutPreviousDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	bad := &fakeSource{name: "debian-tracker", urls: []string{filepath.Join(t.TempDir(), "missing")}}
	rep, err := vulndb.Update(context.Background(), path, []vulndb.Source{bad, records(t, "osv", adv("CVE-2024-1", "", vulndb.StatusFixed, "1"))},
		clock(t0), vulndb.WithKeepGoing(true))
	if err != nil {
		t.Fatal(err)
	}
	var fe *vulndb.FetchError
	if s := rep.Sources[0]; !errors.As(s.Err, &fe) || s.Advisories != 0 || len(s.Fetches) != 1 || s.Fetches[0].Error == "" {
		t.Errorf("failed source: %+v", s)
	}
	m := open(t, path).Meta()
	if len(m.Sources) != 2 || m.Sources[0].Fetches[0].Error == "" || m.Sources[1].Advisories != 1 {
		t.Errorf("meta: %+v", m)
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	build(t, good, records(t, "osv", adv("CVE-2024-1", "", vulndb.StatusFixed, "1")))
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"text", []byte(strings.Repeat("not a database\n", 20))},
		{"truncated", data[:len(data)/2]},
		{"header-only", data[:100]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vulndb.Open(write(tc.name, tc.data))
			if !errors.Is(err, vulndb.ErrCorrupt) || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("err = %v, want ErrCorrupt naming the file", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := vulndb.Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("schema", func(t *testing.T) {
		for _, v := range []uint32{0, 99} {
			b := append([]byte(nil), data...)
			b[60], b[61], b[62], b[63] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) // user_version
			_, err := vulndb.Open(write("schema", b))
			var se *vulndb.SchemaError
			if !errors.As(err, &se) || se.Found != int(v) || !strings.Contains(err.Error(), "drydock db update") {
				t.Errorf("user_version %d: err = %v, want a SchemaError", v, err)
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.db")
	build(f, good, records(f, "osv", adv("CVE-2024-1", "", vulndb.StatusFixed, "1")))
	data, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:4096])
	f.Add([]byte("SQLite format 3\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := vulndb.Open(p)
		if err != nil {
			return
		}
		defer db.Close()
		ctx := context.Background()
		_, _ = db.Advisories(ctx, "debian", "12", "openssl")
		_, _ = db.AdvisoriesFor(ctx, "debian", "12", []string{"openssl", "bash"})
		_, _ = db.Releases(ctx, "debian")
		_, _ = db.PackageSupport(ctx, "debian", "12")
	})
}
