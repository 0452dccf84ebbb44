package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/kube"
)

// fakeKube answers from fixed values and records the calls.
type fakeKube struct {
	calls []string
	err   error
}

func (f *fakeKube) Images(_ context.Context, fl kube.Filter) (*kube.ImagesReport, error) {
	f.calls = append(f.calls, "images "+fl.Cluster+"/"+fl.Namespace)
	return &kube.ImagesReport{}, f.err
}

func (f *fakeKube) Affected(_ context.Context, id string, fl kube.Filter) (*kube.AffectedReport, error) {
	f.calls = append(f.calls, "affected "+id+" "+fl.Namespace)
	return &kube.AffectedReport{Vulnerability: id}, f.err
}

func (f *fakeKube) WebhookConfigurations(_ context.Context, mutating bool) (*kube.WebhookManifests, error) {
	f.calls = append(f.calls, fmt.Sprintf("webhooks %v", mutating))
	return &kube.WebhookManifests{}, f.err
}

func (f *fakeKube) Plan(_ context.Context, req kube.PlanRequest) (*kube.Plan, error) {
	f.calls = append(f.calls, fmt.Sprintf("plan %s %s %d", req.Repository, req.To, len(req.Images)))
	return &kube.Plan{Repository: "live/" + req.Repository}, f.err
}

func (f *fakeKube) RecordRollout(_ context.Context, actor string, res *kube.RolloutResult) {
	f.calls = append(f.calls, fmt.Sprintf("record %s %s %d", actor, res.Plan.Repository, len(res.Workloads)))
}

func TestKubeEndpoints(t *testing.T) {
	big := `{"repository":"nginx","images":["` + strings.Repeat("d.io/live/nginx:1\",\"", 5000) + `x"]}`
	for _, tt := range []struct {
		name, method, path, body string
		allow                    []string
		err                      error
		nilKube                  bool
		wantCode                 int
		wantErr, wantCall        string
	}{
		{"images", "GET", "/api/v1/kube/images?namespace=a", "", []string{"promote live"}, nil, false, 200, "", "images /a"},
		{"images with pull only", "GET", "/api/v1/kube/images", "", []string{"pull live"}, nil, false, 403, "DENIED", ""},
		{"images, inventory off", "GET", "/api/v1/kube/images", "", []string{"promote live"}, fmt.Errorf("%w: off", kube.ErrNotConfigured), false, 409, "NOT_CONFIGURED", "images /"},
		{"kube off", "GET", "/api/v1/kube/images", "", []string{"promote live"}, nil, true, 409, "NOT_CONFIGURED", ""},
		{"affected", "GET", "/api/v1/kube/affected?id=CVE-2024-1&namespace=b", "", []string{"promote live"}, nil, false, 200, "", "affected CVE-2024-1 b"},
		{"affected bad id", "GET", "/api/v1/kube/affected?id=x", "", []string{"promote live"}, kube.ErrInvalidVulnerability, false, 400, "INVALID", "affected x "},
		{"webhooks", "GET", "/api/v1/kube/webhook-configurations?mutating=true", "", []string{"promote live"}, nil, false, 200, "", "webhooks true"},
		{"webhooks bad flag", "GET", "/api/v1/kube/webhook-configurations?mutating=maybe", "", []string{"promote live"}, nil, false, 400, "INVALID", ""},
		{"plan", "POST", "/api/v1/kube/rollout-plan", big, []string{"promote live"}, nil, false, 200, "", "plan nginx  5001"},
		{"plan refused", "POST", "/api/v1/kube/rollout-plan", `{"repository":"x"}`, []string{"promote live"}, kube.ErrInvalidPlan, false, 400, "INVALID", "plan x  0"},
		{"record", "POST", "/api/v1/kube/rollouts", `{"plan":{"repository":"live/nginx","images":[]},"workloads":[{"kind":"Deployment","namespace":"a","name":"web","containers":[],"state":"done"}]}`, []string{"promote live"}, nil, false, 204, "", "record alice live/nginx 1"},
		{"record without a plan", "POST", "/api/v1/kube/rollouts", `{"workloads":[]}`, []string{"promote live"}, nil, false, 400, "INVALID", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := &fakeKube{err: tt.err}
			o := Options{Gate: &fakeGate{}, Kube: k, Authorize: allowOnly(tt.allow...), Actor: func(*http.Request) string { return "alice" }}
			if tt.nilKube {
				o.Kube = nil
			}
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			rec := httptest.NewRecorder()
			Handler(o).ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantErr != "" {
				var b ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code != tt.wantErr {
					t.Fatalf("error body %s, want code %s", rec.Body, tt.wantErr)
				}
			}
			if got := strings.Join(k.calls, ";"); got != tt.wantCall {
				t.Errorf("calls %q, want %q", got, tt.wantCall)
			}
		})
	}
}
