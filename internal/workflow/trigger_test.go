package workflow_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
	"github.com/drydock-project/drydock/internal/workflow"
)

// suiteMirror is a loopback archive serving one security suite's
// InRelease, with ETag and Last-Modified validators, counting what it
// sends.
type suiteMirror struct {
	mu       sync.Mutex
	body     string
	etag     string
	modified time.Time
	requests int
	full     int // 200 answers
	bytes    int
}

func (m *suiteMirror) set(body string, modified time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.body, m.modified = body, modified
	m.etag = `"` + strings.Fields(body)[1] + `"`
}

func (m *suiteMirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests++
	if r.URL.Path != "/debian-security/dists/bookworm-security/InRelease" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", m.etag)
	w.Header().Set("Last-Modified", m.modified.UTC().Format(http.TimeFormat))
	if r.Header.Get("If-None-Match") == m.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	m.full++
	m.bytes += len(m.body)
	_, _ = w.Write([]byte(m.body))
}

func (m *suiteMirror) counts() (requests, full, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests, m.full, m.bytes
}

// seedScan records, as an earlier run would have, that image was scanned
// and updates from the suite at inRelease.
func (h *harness) seedScan(wf, id, image, inRelease string) {
	h.t.Helper()
	at := h.clock.Now()
	r := &workflow.Run{ID: id, Workflow: wf, Trigger: workflow.Trigger{Kind: workflow.TriggerManual}, State: workflow.StateSucceeded,
		CreatedAt: at, EndedAt: at, Tasks: []workflow.Task{
			{ID: id + "-t", Kind: workflow.TaskTrigger, State: workflow.StateSucceeded, CreatedAt: at},
			{ID: id + "-s1", Kind: workflow.TaskScan, Image: image, State: workflow.StateSucceeded, CreatedAt: at,
				Scan: &workflow.ScanResult{Target: "quarantine/" + image, Fixable: workflow.Counts{}, Suites: []string{inRelease},
					SkipReason: "no fixable vulnerability found and nothing pending from the security suite"}},
		}}
	if err := h.store.CreateRun(h.t.Context(), r); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) runsBy(wf string, kind workflow.TriggerKind) []*workflow.Run {
	h.t.Helper()
	runs, err := h.store.Runs(h.t.Context(), workflow.RunFilter{Workflow: wf})
	if err != nil {
		h.t.Fatal(err)
	}
	return slices.DeleteFunc(runs, func(r *workflow.Run) bool { return r.Trigger.Kind != kind })
}

// TestSecuritySuiteTrigger: the engine polls the security suite its
// images update from with conditional requests (304 and no body while
// unchanged, one request per poll interval), and a change queues exactly
// one run for those images once the debounce window has passed; a
// workflow with the security-suite signal off is not triggered.
func TestSecuritySuiteTrigger(t *testing.T) {
	mirror := &suiteMirror{}
	srv := httptest.NewServer(mirror)
	defer srv.Close()
	inRelease := srv.URL + "/debian-security/dists/bookworm-security/InRelease"
	t0 := mustTime(t, "2026-12-06 14:00")
	mirror.set("Suite: bookworm-security-v1\nDate: Sat, 05 Dec 2026 10:00:00 UTC\n"+strings.Repeat("SHA256: x\n", 500), t0.Add(-time.Hour))

	h := newHarness(t, false, func(o *workflow.Options) {
		o.PollInterval, o.Debounce = 10*time.Minute, 2*time.Minute
	})
	ctx := t.Context()
	h.clock.Set(t0)
	off := false
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Name: "strict", Config: config("incremental", "nginx", "1.27.1"), Schedule: "1d", SecuritySuite: &off}); err != nil {
		t.Fatal(err)
	}
	h.seedScan("default", "r00000001", "nginx:1.27.1", inRelease)
	h.seedScan("strict", "r00000002", "nginx:1.27.1", inRelease)

	step := func(at string, wantRequests, wantFull, wantRuns int) {
		t.Helper()
		h.tickAt(at)
		req, full, _ := mirror.counts()
		runs := h.runsBy("default", workflow.TriggerSecuritySuite)
		if req != wantRequests || full != wantFull || len(runs) != wantRuns {
			t.Fatalf("after the tick at %s: %d requests (%d full), %d runs; want %d (%d), %d", at, req, full, len(runs), wantRequests, wantFull, wantRuns)
		}
	}
	step("2026-12-06 14:00", 1, 1, 0) // first sight: remembered, not a change
	step("2026-12-06 14:05", 1, 1, 0) // within the poll interval: no request
	step("2026-12-06 14:10", 2, 1, 0) // unchanged: 304, no body
	step("2026-12-06 14:20", 3, 1, 0)
	_, _, bytes := mirror.counts()
	mirror.set("Suite: bookworm-security-v2\nDate: Sun, 06 Dec 2026 14:25:00 UTC\n"+strings.Repeat("SHA256: y\n", 500), t0.Add(25*time.Minute))
	step("2026-12-06 14:30", 4, 2, 0) // changed: pending, waiting out the debounce window
	v, err := h.eng.Show(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Pending) != 1 || v.Pending[0].Kind != workflow.TriggerSecuritySuite || !slices.Equal(v.Pending[0].Images, []string{"nginx:1.27.1"}) {
		t.Fatalf("pending triggers: %+v", v.Pending)
	}
	step("2026-12-06 14:31", 4, 2, 0)
	step("2026-12-06 14:32", 4, 2, 1) // quiet for 2 minutes: one run
	step("2026-12-06 14:33", 4, 2, 1)
	step("2026-12-06 14:40", 5, 2, 1) // polled again: unchanged
	step("2026-12-06 15:00", 6, 2, 1)

	run := h.runsBy("default", workflow.TriggerSecuritySuite)[0]
	if !slices.Equal(run.Trigger.Images, []string{"nginx:1.27.1"}) || !strings.Contains(run.Trigger.Detail, inRelease) {
		t.Errorf("run trigger %+v", run.Trigger)
	}
	if n := len(h.runsBy("strict", workflow.TriggerSecuritySuite)); n != 0 {
		t.Errorf("the workflow with the security-suite signal off got %d runs", n)
	}
	if v, _ := h.eng.Show(ctx, ""); len(v.Pending) != 0 {
		t.Errorf("pending after the run was queued: %+v", v.Pending)
	}
	// Unchanged polls cost no body: the only bodies sent are the first
	// sight and the change.
	if _, _, after := mirror.counts(); after-bytes > 6000 {
		t.Errorf("unchanged polls downloaded %d bytes", after-bytes)
	}
}

// TestDBUpdateTrigger: a vulnerability database that brings fixable
// findings queues one run, after the debounce window, for the images that
// have them, and not for the others. The clock is in March 2026, when
// bullseye was still in LTS: the real data of February 2025 has fixes for
// the bullseye main suite's packages, and none for today's bookworm.
func TestDBUpdateTrigger(t *testing.T) {
	bullseye, err := openImage(t, testimage.BullseyeNginxCurl).Open()
	if err != nil {
		t.Fatal(err)
	}
	bookworm, err := openImage(t, testimage.BookwormNginx).Open()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, false, func(o *workflow.Options) { o.Debounce = 5 * time.Minute })
	ctx := t.Context()
	h.push(bullseye, "quarantine/web:11")
	h.push(bookworm, "quarantine/nginx:1.27.1")
	h.clock.Set(mustTime(t, "2026-03-02 08:00"))
	cfg := `{"version":"v1","repositories":[{"repository":"web","tags":["11"]},{"repository":"nginx","tags":["1.27.1"]}]}`
	if _, err := h.eng.Create(ctx, workflow.CreateRequest{Config: cfg, Schedule: "7d"}); err != nil {
		t.Fatal(err)
	}
	h.tickAt("2026-03-02 08:01") // no database: nothing to compare
	if n := len(h.runsBy("default", workflow.TriggerDBUpdate)); n != 0 {
		t.Fatalf("%d runs without a database", n)
	}
	realdb.Copy(t, h.opts.DBPath) // "drydock db update"
	h.tickAt("2026-03-02 09:00")
	v, err := h.eng.Show(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Pending) != 1 || v.Pending[0].Kind != workflow.TriggerDBUpdate || !slices.Equal(v.Pending[0].Images, []string{"web:11"}) {
		t.Fatalf("pending after the database update: %+v", v.Pending)
	}
	h.tickAt("2026-03-02 09:04")
	if n := len(h.runsBy("default", workflow.TriggerDBUpdate)); n != 0 {
		t.Fatalf("a run before the debounce window passed")
	}
	h.tickAt("2026-03-02 09:05")
	h.tickAt("2026-03-02 09:30")
	runs := h.runsBy("default", workflow.TriggerDBUpdate)
	if len(runs) != 1 || !slices.Equal(runs[0].Trigger.Images, []string{"web:11"}) {
		t.Fatalf("runs after the debounce window: %d %+v", len(runs), runs)
	}
}
