package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/store"
)

// fakeGate answers from fixed values and records the calls.
type fakeGate struct {
	calls []string
	err   error
}

func (f *fakeGate) Verdict(_ context.Context, ref string) (*gatekeeper.Status, error) {
	f.calls = append(f.calls, "verdict "+ref)
	if f.err != nil {
		return nil, f.err
	}
	return &gatekeeper.Status{Repository: "quarantine/app", Digest: "sha256:1", Verdict: gate.Verdict{State: gate.StatePass}}, nil
}

func (f *fakeGate) Promote(_ context.Context, req gatekeeper.PromoteRequest) (*gatekeeper.Promotion, error) {
	f.calls = append(f.calls, "promote "+req.Source+" "+req.Target+" by "+req.Actor)
	if f.err != nil {
		return nil, f.err
	}
	return &gatekeeper.Promotion{Source: req.Source, Target: "live/app:1"}, nil
}

func (f *fakeGate) RecordImport(_ context.Context, actor, ref, source string) (*gatekeeper.Status, error) {
	f.calls = append(f.calls, "import "+ref+" from "+source+" by "+actor)
	return &gatekeeper.Status{}, f.err
}

func (f *fakeGate) Rescan(_ context.Context, ref string) (int64, error) {
	f.calls = append(f.calls, "rescan "+ref)
	return 7, f.err
}

func (f *fakeGate) Images(context.Context) ([]store.Image, error) {
	return []store.Image{{Digest: "sha256:1", Repository: "quarantine/app"}, {Digest: "sha256:2", Repository: "secret/app"}}, f.err
}

// allowOnly allows the roles listed as "role repo-namespace".
func allowOnly(allowed ...string) Authorizer {
	return func(_ *http.Request, role, repo string) error {
		ns, _, _ := strings.Cut(repo, "/")
		for _, a := range allowed {
			if a == role+" "+ns {
				return nil
			}
		}
		return fmt.Errorf("may not %s %s", role, repo)
	}
}

func TestHandler(t *testing.T) {
	refused := &gatekeeper.RefusedError{Source: "quarantine/app:1", Digest: "sha256:1",
		Verdict: gate.Verdict{State: gate.StateFail, Reasons: []gate.Reason{{Rule: gate.RuleMaxSeverity, Message: "1 finding(s)"}}}}
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		allow    []string
		err      error
		wantCode int
		wantErr  string // error code in the body
		wantCall string
	}{
		{"verdict", "GET", "/api/v1/verdict?ref=quarantine/app:1", "", []string{"pull quarantine"}, nil, 200, "", "verdict quarantine/app:1"},
		{"verdict without pull", "GET", "/api/v1/verdict?ref=quarantine/app:1", "", nil, nil, 403, "DENIED", ""},
		{"verdict bad ref", "GET", "/api/v1/verdict?ref=app", "", []string{"pull quarantine"}, nil, 400, "INVALID", ""},
		{"verdict unknown image", "GET", "/api/v1/verdict?ref=quarantine/x:1", "", []string{"pull quarantine"}, gatekeeper.ErrUnknownImage, 404, "NOT_FOUND", "verdict quarantine/x:1"},
		{"promote", "POST", "/api/v1/promote", `{"source":"quarantine/app:1"}`, []string{"pull quarantine", "promote live"}, nil, 200, "", "promote quarantine/app:1  by alice"},
		{"promote without the promote role", "POST", "/api/v1/promote", `{"source":"quarantine/app:1"}`, []string{"pull quarantine"}, nil, 403, "DENIED", ""},
		{"promote refused", "POST", "/api/v1/promote", `{"source":"quarantine/app:1"}`, []string{"pull quarantine", "promote live"}, refused, 403, "PROMOTION_REFUSED", "promote quarantine/app:1  by alice"},
		{"promote into quarantine", "POST", "/api/v1/promote", `{"source":"quarantine/app:1","target":"quarantine/b:1"}`, []string{"pull quarantine", "promote live"}, nil, 400, "INVALID", ""},
		{"promote unknown field", "POST", "/api/v1/promote", `{"source":"quarantine/app:1","force":true}`, []string{"pull quarantine", "promote live"}, nil, 400, "INVALID", ""},
		{"promote not JSON", "POST", "/api/v1/promote", `source=x`, []string{"pull quarantine", "promote live"}, nil, 400, "INVALID", ""},
		{"promote server error", "POST", "/api/v1/promote", `{"source":"quarantine/app:1"}`, []string{"pull quarantine", "promote live"}, errors.New("disk full"), 500, "INTERNAL", "promote quarantine/app:1  by alice"},
		{"import", "POST", "/api/v1/imports", `{"reference":"quarantine/app@sha256:1111111111111111111111111111111111111111111111111111111111111111","source":"docker.io/library/app:1"}`, []string{"push quarantine"}, nil, 200, "", "import quarantine/app@sha256:1111111111111111111111111111111111111111111111111111111111111111 from docker.io/library/app:1 by alice"},
		{"import without push", "POST", "/api/v1/imports", `{"reference":"quarantine/app:1","source":"x"}`, []string{"pull quarantine"}, nil, 403, "DENIED", ""},
		{"rescan", "POST", "/api/v1/rescan", `{"reference":"quarantine/app:1"}`, []string{"push quarantine"}, nil, 202, "", "rescan quarantine/app:1"},
		{"unknown endpoint", "GET", "/api/v1/nope", "", nil, nil, 404, "NOT_FOUND", ""},
		{"wrong method", "DELETE", "/api/v1/verdict", "", nil, nil, 405, "METHOD_NOT_ALLOWED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGate{err: tt.err}
			h := Handler(Options{Gate: g, Authorize: allowOnly(tt.allow...), Actor: func(*http.Request) string { return "alice" }})
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.body != "" && strings.HasPrefix(tt.body, "{") {
				req.Header.Set("Content-Type", "application/json")
			} else if tt.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantErr != "" {
				var b ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code != tt.wantErr || b.Error.Message == "" {
					t.Fatalf("error body %s, want code %s", rec.Body, tt.wantErr)
				}
				if tt.wantErr == "PROMOTION_REFUSED" && (b.Verdict == nil || b.Verdict.State != gate.StateFail) {
					t.Errorf("refusal without the verdict: %s", rec.Body)
				}
			}
			if got := strings.Join(g.calls, ";"); got != tt.wantCall {
				t.Errorf("calls %q, want %q", got, tt.wantCall)
			}
		})
	}
}

func TestVerdictsListsOnlyPullable(t *testing.T) {
	h := Handler(Options{Gate: &fakeGate{}, Authorize: allowOnly("pull quarantine")})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/verdicts", nil))
	var resp VerdictsResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(resp.Images) != 1 || resp.Images[0].Repository != "quarantine/app" {
		t.Errorf("images %+v, want only quarantine/app", resp.Images)
	}
}
