package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/workflow"
)

// fakeWorkflows records the calls and answers with err.
type fakeWorkflows struct {
	calls []string
	err   error
}

func (f *fakeWorkflows) call(s string, args ...any) error {
	f.calls = append(f.calls, fmt.Sprintf(s, args...))
	return f.err
}

func (f *fakeWorkflows) Create(_ context.Context, r workflow.CreateRequest) (*workflow.Result, error) {
	return &workflow.Result{}, f.call("create %s %s dry=%v now=%v", r.Name, r.Schedule, r.DryRun, r.RunImmediately)
}

func (f *fakeWorkflows) Update(_ context.Context, r workflow.UpdateRequest) (*workflow.Result, error) {
	s := "-"
	if r.Schedule != nil {
		s = *r.Schedule
	}
	return &workflow.Result{}, f.call("update %s %s", r.Name, s)
}

func (f *fakeWorkflows) Delete(_ context.Context, name string) ([]string, error) {
	return []string{"r1"}, f.call("delete %s", name)
}

func (f *fakeWorkflows) Show(_ context.Context, name string) (*workflow.View, error) {
	return &workflow.View{Name: name}, f.call("show %s", name)
}

func (f *fakeWorkflows) List(context.Context) ([]*workflow.View, error) { return nil, f.call("list") }

func (f *fakeWorkflows) RunNow(_ context.Context, name string) (*workflow.Run, error) {
	return &workflow.Run{ID: "r1"}, f.call("run %s", name)
}

func (f *fakeWorkflows) Runs(_ context.Context, name string, limit int) ([]workflow.RunSummary, error) {
	return nil, f.call("runs %s %d", name, limit)
}

func (f *fakeWorkflows) ImageStatuses(_ context.Context, r workflow.StatusRequest) (*workflow.StatusList, error) {
	return &workflow.StatusList{}, f.call("images %s %s %s", r.Name, r.Status, r.Image)
}

func (f *fakeWorkflows) Cancel(_ context.Context, name, id string) ([]string, error) {
	return nil, f.call("cancel %s %s", name, id)
}

func (f *fakeWorkflows) RunWithLog(_ context.Context, id string, after int64) (*workflow.RunDetail, error) {
	return &workflow.RunDetail{}, f.call("run-log %s %d", id, after)
}

// TestWorkflowRoutes: each route calls the service with the request's
// values, reading needs pull on quarantine/ and changing needs push, and
// the service's errors map to statuses.
func TestWorkflowRoutes(t *testing.T) {
	push := []string{"push quarantine"}
	pull := []string{"pull quarantine"}
	tests := []struct {
		name, method, path, body string
		allow                    []string
		err                      error
		wantCode                 int
		wantErr, wantCall        string
	}{
		{"create", "POST", "/api/v1/workflows", `{"config":"{}","schedule":"1d","run_immediately":true}`, push, nil, 201, "", "create  1d dry=false now=true"},
		{"create dry run", "POST", "/api/v1/workflows", `{"name":"w","schedule":"7d","dry_run":true}`, push, nil, 200, "", "create w 7d dry=true now=false"},
		{"create needs push", "POST", "/api/v1/workflows", `{"schedule":"1d"}`, pull, nil, 403, "DENIED", ""},
		{"create exists", "POST", "/api/v1/workflows", `{"schedule":"1d"}`, push, workflow.ErrExists, 409, "CONFLICT", "create  1d dry=false now=false"},
		{"create invalid config", "POST", "/api/v1/workflows", `{"schedule":"1d"}`, push, &workflow.ConfigError{Field: "version", Message: "required"}, 400, "INVALID", "create  1d dry=false now=false"},
		{"create unknown field", "POST", "/api/v1/workflows", `{"schedule":"1d","force":1}`, push, nil, 400, "INVALID", ""},
		{"list", "GET", "/api/v1/workflows", "", pull, nil, 200, "", "list"},
		{"list needs pull", "GET", "/api/v1/workflows", "", nil, nil, 403, "DENIED", ""},
		{"show", "GET", "/api/v1/workflows/weekly", "", pull, nil, 200, "", "show weekly"},
		{"show missing", "GET", "/api/v1/workflows/nope", "", pull, workflow.ErrNotFound, 404, "NOT_FOUND", "show nope"},
		{"update", "PATCH", "/api/v1/workflows/weekly", `{"schedule":"7d"}`, push, nil, 200, "", "update weekly 7d"},
		{"update invalid", "PATCH", "/api/v1/workflows/weekly", `{}`, push, workflow.ErrInvalid, 400, "INVALID", "update weekly -"},
		{"delete", "DELETE", "/api/v1/workflows/weekly", "", push, nil, 200, "", "delete weekly"},
		{"delete needs push", "DELETE", "/api/v1/workflows/weekly", "", pull, nil, 403, "DENIED", ""},
		{"run now", "POST", "/api/v1/workflows/weekly/runs", `{}`, push, nil, 202, "", "run weekly"},
		{"runs", "GET", "/api/v1/workflows/weekly/runs?limit=5", "", pull, nil, 200, "", "runs weekly 5"},
		{"runs bad limit", "GET", "/api/v1/workflows/weekly/runs?limit=x", "", pull, nil, 400, "INVALID", ""},
		{"images", "GET", "/api/v1/workflows/default/images?status=failed&image=nginx:1.27.1", "", pull, nil, 200, "", "images default failed nginx:1.27.1"},
		{"cancel one", "POST", "/api/v1/workflows/default/cancel", `{"run":"r1"}`, push, nil, 200, "", "cancel default r1"},
		{"cancel all", "POST", "/api/v1/workflows/default/cancel", `{}`, push, nil, 200, "", "cancel default "},
		{"run with log", "GET", "/api/v1/workflow-runs/r1?after=7", "", pull, nil, 200, "", "run-log r1 7"},
		{"run with bad cursor", "GET", "/api/v1/workflow-runs/r1?after=-1", "", pull, nil, 400, "INVALID", ""},
		{"wrong method on a wildcard path", "PUT", "/api/v1/workflows/weekly", `{}`, push, nil, 405, "METHOD_NOT_ALLOWED", ""},
		{"wrong method on a list", "DELETE", "/api/v1/workflows", "", push, nil, 405, "METHOD_NOT_ALLOWED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeWorkflows{err: tt.err}
			h := Handler(Options{Gate: &fakeGate{}, Workflows: f, Authorize: allowOnly(tt.allow...)})
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantErr != "" {
				var b ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code != tt.wantErr {
					t.Fatalf("error body %s, want code %s", rec.Body, tt.wantErr)
				}
			}
			if tt.wantCode == http.StatusMethodNotAllowed && rec.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if got := strings.Join(f.calls, ";"); got != tt.wantCall {
				t.Errorf("calls %q, want %q", got, tt.wantCall)
			}
		})
	}
}

// TestWorkflowRoutesOff: without a workflow service its routes are unknown.
func TestWorkflowRoutesOff(t *testing.T) {
	h := Handler(Options{Gate: &fakeGate{}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/workflows", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status %d, want 404", rec.Code)
	}
}
