package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/drydock-project/drydock/internal/gc"
)

// fakeGC knows run 1 only.
type fakeGC struct{}

func (fakeGC) Start(context.Context, gc.Request) (*gc.Run, error) { return &gc.Run{ID: 1}, nil }
func (fakeGC) Runs(context.Context, int) ([]gc.Run, error)        { return []gc.Run{{ID: 1}}, nil }
func (fakeGC) Quotas(context.Context) ([]gc.QuotaUsage, error)    { return nil, nil }
func (fakeGC) Run(_ context.Context, id int64) (*gc.Run, error) {
	if id != 1 {
		return nil, fmt.Errorf("run %d: %w", id, gc.ErrRunNotFound)
	}
	return &gc.Run{ID: 1}, nil
}

// TestGCRunStatus: a known run is 200, an unknown one 404 NOT_FOUND (the
// shared error mapping), a malformed id 400.
func TestGCRunStatus(t *testing.T) {
	h := Handler(Options{Gate: &fakeGate{}, GC: fakeGC{}, Authorize: allowOnly("admin "), Actor: func(*http.Request) string { return "alice" }})
	for _, tt := range []struct {
		path     string
		wantCode int
		wantErr  string
	}{
		{"/api/v1/gc/runs/1", 200, ""},
		{"/api/v1/gc/runs/2", 404, "NOT_FOUND"},
		{"/api/v1/gc/runs/x", 400, "INVALID"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		if rec.Code != tt.wantCode {
			t.Fatalf("%s: status %d, want %d: %s", tt.path, rec.Code, tt.wantCode, rec.Body)
		}
		if tt.wantErr != "" {
			var b ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code != tt.wantErr || b.Error.Message == "" {
				t.Fatalf("%s: error body %s, want code %s", tt.path, rec.Body, tt.wantErr)
			}
		}
	}
}
