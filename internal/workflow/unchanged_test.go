package workflow_test

import (
	"archive/zip"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources/distroinfo"
	"github.com/drydock-project/drydock/internal/vulndb/sources/osv"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
	"github.com/drydock-project/drydock/internal/workflow"
)

// advisoryDB builds a vulnerability database from the real distro-info
// data and one OSV advisory for bookworm's openssl, fixed in fixed:
// an advisory published before the archive has the fix is what makes a
// workflow find a fixable finding it cannot fix yet.
func advisoryDB(t *testing.T, path, fixed string, built time.Time) {
	t.Helper()
	dir := vulndatatest.Dir(t)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, err := zw.Create("DSA-9999-1.json")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(`{"schema_version":"1.6.0","id":"DSA-9999-1","modified":"2026-12-01T00:00:00Z","published":"2026-12-01T00:00:00Z",
"related":["CVE-2026-99999"],"summary":"openssl - security update","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"` + fixed + `"}]}]}]}`))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/vulndata/", http.StripPrefix("/vulndata", http.FileServer(http.Dir(dir))))
	mux.HandleFunc("/osv/Debian/all.zip", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(zb.Bytes()) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	osvSrc, err := osv.New()
	if err != nil {
		t.Fatal(err)
	}
	info := "/vulndata/debian-eol/distro-info-data/2026.10.12-1/"
	if _, err := vulndb.Update(t.Context(), path, []vulndb.Source{distroinfo.New(), osvSrc},
		vulndb.WithClock(func() time.Time { return built }),
		vulndb.WithSourceURLs(distroinfo.New().Name(), srv.URL+info+"debian.csv", srv.URL+info+"ubuntu.csv"),
		vulndb.WithSourceURLs(osvSrc.Name(), srv.URL+"/osv/Debian/all.zip")); err != nil {
		t.Fatal(err)
	}
}

// TestRunUnchangedPatch: the latest patch has a fixable finding whose fix
// the archive does not publish yet; the patch built from the original is
// the latest patch again (same digest: the patcher is reproducible), so
// the run writes no new tag and says why.
func TestRunUnchangedPatch(t *testing.T) {
	img, err := openImage(t, testimage.DistrolessBookworm).Open()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, false, withMirror(t))
	h.start()
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	advisoryDB(t, h.opts.DBPath, "3.0.0-1", t0) // an old fix: nothing fixable
	h.push(img, "quarantine/app:1.0")
	res, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "app", "1.0"), Schedule: "1d", RunImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(res.Run.ID, 10*time.Minute)
	p := task(t, r, workflow.TaskPatch, "app:1.0")
	if p.State != workflow.StateSucceeded || p.Patch.Tag != "1.0-1" {
		t.Fatalf("first run: %s %+v\n%s", p.State, p.Patch, h.log(r.ID))
	}
	if s := task(t, r, workflow.TaskScan, "app:1.0"); s.Scan.Fixable.Total() != 0 {
		t.Fatalf("the old advisory counts as fixable: %v", s.Scan.Fixable)
	}

	advisoryDB(t, h.opts.DBPath, "3.0.99-1~deb12u1", t0.Add(time.Hour))
	r = h.waitRun(h.runNow("").ID, 10*time.Minute)
	t.Logf("second run:\n%s", h.log(r.ID))
	s := task(t, r, workflow.TaskScan, "app:1.0")
	if s.Scan.Target != "quarantine/app:1.0-1" || !s.Scan.Patch || s.Scan.Fixable.Total() == 0 || !strings.Contains(strings.Join(s.Scan.Signals, ","), workflow.SignalDB) {
		t.Fatalf("the scan of 1.0-1: %+v", s.Scan)
	}
	p = task(t, r, workflow.TaskPatch, "app:1.0")
	if p.State != workflow.StateSkipped || !p.Patch.Unchanged || p.Patch.SameAs != "app:1.0-1" || p.Patch.TagWritten ||
		!strings.Contains(p.Patch.SkipReason, "equals the latest patch app:1.0-1") {
		t.Errorf("second patch: %s %+v", p.State, p.Patch)
	}
	if !strings.Contains(h.log(r.ID), "not yet available: libssl3") {
		t.Errorf("the log does not say the fix is not published yet")
	}
	if tags := h.tags("quarantine/app"); strings.Join(tags, ",") != "1.0,1.0-1" {
		t.Errorf("tags: %v", tags)
	}
	if r.State != workflow.StateSucceeded {
		t.Errorf("run %s: %s", r.State, r.Error)
	}
}
