package web

import (
	"context"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/workflow"
)

// fakeWorkflows serves one workflow with one run in a given state; the
// rest of api.Workflows is left out (a call panics).
type fakeWorkflows struct {
	api.Workflows
	state workflow.State
}

func (f *fakeWorkflows) List(context.Context) ([]*workflow.View, error) {
	return []*workflow.View{{Name: "nightly", Type: "continuouspatching", Schedule: "1d"}}, nil
}

func (f *fakeWorkflows) Runs(_ context.Context, name string, _ int) ([]workflow.RunSummary, error) {
	return []workflow.RunSummary{{ID: "r1", State: f.state, Images: 2, Patched: 1}}, nil
}

func (f *fakeWorkflows) RunWithLog(_ context.Context, id string, _ int64) (*workflow.RunDetail, error) {
	if id != "r1" {
		return nil, workflow.ErrNotFound
	}
	r := &workflow.Run{ID: "r1", Workflow: "nightly", State: f.state, Tasks: []workflow.Task{
		{ID: "r1-t", Kind: workflow.TaskTrigger, State: workflow.StateSucceeded},
		{ID: "r1-p1", Kind: workflow.TaskPatch, Image: "nginx:1.27.1", State: f.state, Error: "<script>alert(1)</script>"}}}
	return &workflow.RunDetail{Run: r, Summary: workflow.Summarize(r), Log: []workflow.LogLine{{Seq: 1, Task: "r1-p1", Text: "installing <b>zlib</b>"}}}, nil
}

// TestWorkflowPages: the workflows page lists the last runs; a run page
// shows its tasks and log, escaped, and reloads itself (a meta refresh,
// no script) exactly while the run is not finished; a run of another
// workflow's URL is 404.
func TestWorkflowPages(t *testing.T) {
	wf := &fakeWorkflows{state: workflow.StateRunning}
	h := newHarness(t, func(o *api.Options) { o.Workflows = wf })
	c := h.client(t)
	c.login("reader", "reader-password")
	resp, body := c.do("GET", "/ui/workflows", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `href="/ui/workflows/nightly/runs/r1"`) {
		t.Fatalf("workflows page %d:\n%s", resp.StatusCode, body)
	}
	const refresh = `<meta http-equiv="refresh" content="2">`
	for _, tt := range []struct {
		state   workflow.State
		refresh bool
	}{{workflow.StateQueued, true}, {workflow.StateRunning, true}, {workflow.StateSucceeded, false}, {workflow.StateFailed, false}, {workflow.StateCanceled, false}} {
		wf.state = tt.state
		resp, body := c.do("GET", "/ui/workflows/nightly/runs/r1", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `id="run-state" class="state `+string(tt.state)+`"`) {
			t.Fatalf("%s run page %d:\n%s", tt.state, resp.StatusCode, body)
		}
		if strings.Contains(body, refresh) != tt.refresh {
			t.Errorf("%s run: refresh %v, want %v", tt.state, !tt.refresh, tt.refresh)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "<b>zlib") || !strings.Contains(body, "installing &lt;b&gt;zlib") {
			t.Errorf("%s run page does not escape the log or the errors:\n%s", tt.state, body)
		}
	}
	if resp, _ := c.do("GET", "/ui/workflows/weekly/runs/r1", nil); resp.StatusCode != 404 {
		t.Errorf("a run under another workflow's URL: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/ui/workflows/nightly/runs/r2", nil); resp.StatusCode != 404 {
		t.Errorf("no such run: %d", resp.StatusCode)
	}
}
