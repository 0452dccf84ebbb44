package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/patchjob"
)

// fakePatcher records submissions and answers statuses of job 7.
type fakePatcher struct {
	calls []string
	req   patch.Request
}

func (f *fakePatcher) Submit(_ context.Context, actor string, req patch.Request) (int64, error) {
	f.calls = append(f.calls, fmt.Sprintf("submit %s -> %s by %s (%s, %d packages)", req.Image, req.Output, actor, req.Mode, len(req.Packages)))
	if err := patch.Check(req); err != nil {
		return 0, err
	}
	return 7, nil
}

func (f *fakePatcher) Status(_ context.Context, id int64) (*patchjob.Status, error) {
	f.calls = append(f.calls, fmt.Sprintf("status %d", id))
	if id != 7 {
		return nil, fmt.Errorf("%w: %d", patchjob.ErrNotFound, id)
	}
	return &patchjob.Status{ID: 7, State: patchjob.StateRunning, Request: f.req,
		Progress: &patchjob.Progress{Phase: "unpack", Phases: []string{"linux/amd64 read", "linux/amd64 unpack"}}}, nil
}

const trivyReport = `{"SchemaVersion": 2, "Results": [{"Class": "os-pkgs", "Vulnerabilities": [{"PkgName": "libssl3", "FixedVersion": "3.0.1-1"}]}]}`

// TestPatchEndpoints: POST /api/v1/patch needs pull on the input and
// push on the output (quarantine/, never live/); GET of the job needs
// pull on its input.
func TestPatchEndpoints(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		allow    []string
		wantCode int
		wantErr  string
		wantCall string
	}{
		{"submit", "POST", "/api/v1/patch", `{"image":"quarantine/app:1","mode":"update-all"}`,
			[]string{"pull quarantine", "push quarantine"}, 202, "", "submit quarantine/app:1 ->  by alice (update-all, 0 packages)"},
		{"submit from live to quarantine", "POST", "/api/v1/patch", `{"image":"live/app:1","mode":"update-all","output":"quarantine/app:1-p"}`,
			[]string{"pull live", "push quarantine"}, 202, "", "submit live/app:1 -> quarantine/app:1-p by alice (update-all, 0 packages)"},
		{"submit with a report", "POST", "/api/v1/patch", `{"image":"quarantine/app:1","report":` + trivyReport + `}`,
			[]string{"pull quarantine", "push quarantine"}, 202, "", "submit quarantine/app:1 ->  by alice (report, 1 packages)"},
		{"submit without push", "POST", "/api/v1/patch", `{"image":"quarantine/app:1","mode":"update-all"}`,
			[]string{"pull quarantine"}, 403, "DENIED", ""},
		{"submit without pull", "POST", "/api/v1/patch", `{"image":"live/app:1","mode":"update-all"}`,
			[]string{"push quarantine"}, 403, "DENIED", ""},
		{"submit to live", "POST", "/api/v1/patch", `{"image":"quarantine/app:1","mode":"update-all","output":"live/app:2"}`,
			[]string{"pull quarantine", "push quarantine", "push live"}, 400, "INVALID", ""},
		{"submit a registry image", "POST", "/api/v1/patch", `{"image":"registry.example.com/app:1","mode":"update-all"}`,
			[]string{"pull quarantine", "push quarantine"}, 400, "INVALID", ""},
		{"submit a local layout", "POST", "/api/v1/patch", `{"image":"oci:/etc:x","mode":"update-all"}`,
			[]string{"pull quarantine", "push quarantine"}, 400, "INVALID", ""},
		{"submit without mode", "POST", "/api/v1/patch", `{"image":"quarantine/app:1"}`,
			[]string{"pull quarantine", "push quarantine"}, 400, "INVALID", "submit quarantine/app:1 ->  by alice (, 0 packages)"},
		{"submit a bad report", "POST", "/api/v1/patch", `{"image":"quarantine/app:1","report":{"x":1}}`,
			[]string{"pull quarantine", "push quarantine"}, 400, "INVALID", ""},
		{"submit an unknown field", "POST", "/api/v1/patch", `{"image":"quarantine/app:1","mode":"update-all","privileged":true}`,
			[]string{"pull quarantine", "push quarantine"}, 400, "INVALID", ""},
		{"status", "GET", "/api/v1/patch/7", "", []string{"pull quarantine"}, 200, "", "status 7"},
		{"status without pull", "GET", "/api/v1/patch/7", "", []string{"push quarantine"}, 403, "DENIED", "status 7"},
		{"status of an unknown job", "GET", "/api/v1/patch/8", "", []string{"pull quarantine"}, 404, "NOT_FOUND", "status 8"},
		{"status of a bad id", "GET", "/api/v1/patch/x", "", []string{"pull quarantine"}, 400, "INVALID", ""},
		{"status by POST", "PUT", "/api/v1/patch", "", nil, 405, "METHOD_NOT_ALLOWED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePatcher{req: patch.Request{Image: "quarantine/app:1", Mode: patch.UpdateAll}}
			h := Handler(Options{Gate: &fakeGate{}, Patches: p, Authorize: allowOnly(tt.allow...), Actor: func(*http.Request) string { return "alice" }})
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
			if got := strings.Join(p.calls, ";"); got != tt.wantCall {
				t.Errorf("calls %q, want %q", got, tt.wantCall)
			}
			if tt.wantCode == 202 {
				var a PatchAccepted
				if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Job != 7 || a.Status != "/api/v1/patch/7" {
					t.Errorf("accepted %s", rec.Body)
				}
			}
		})
	}
}
