package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/testenv"
)

// failingPublisher refuses every event.
type failingPublisher struct{}

func (failingPublisher) Publish(events.Event) error { return errors.New("event bus down") }

// TestGuardLogsLostRecords: a refused live/ write whose audit entry or
// event cannot be written is still refused, and the loss is logged as
// such (an operator must learn that a bypass attempt went unrecorded);
// when both are written, nothing claims they were lost. Found by
// mutation testing (issue #19): the two error branches could be negated
// without any test noticing.
func TestGuardLogsLostRecords(t *testing.T) {
	const (
		auditLost = "audit: recording a refused live/ write failed"
		eventLost = "event not published"
	)
	for _, tc := range []struct {
		name         string
		closeAudit   bool
		pub          interface{ Publish(events.Event) error }
		want, absent []string
	}{
		{name: "both recorded", pub: &published{}, absent: []string{auditLost, eventLost}},
		{name: "audit lost", closeAudit: true, pub: &published{}, want: []string{auditLost}, absent: []string{eventLost}},
		{name: "event lost", pub: failingPublisher{}, want: []string{eventLost}, absent: []string{auditLost}},
		{name: "both lost", closeAudit: true, pub: failingPublisher{}, want: []string{auditLost, eventLost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			al, closeAudit, err := audit.OpenFile(filepath.Join(t.TempDir(), "audit.db"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.closeAudit {
				closeAudit()
			} else {
				defer closeAudit()
			}
			var logs testenv.LockedBuffer
			h := guardLive(slog.New(slog.NewTextHandler(&logs, nil)), al, tc.pub, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Errorf("%s %s reached the registry", r.Method, r.URL.Path)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPut, "http://drydock/v2/live/manifests/prod", strings.NewReader("{}")))
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "live/ is write-protected") {
				t.Errorf("answer %d %s, want 403 write-protected", rec.Code, rec.Body)
			}
			out := logs.String()
			if !strings.Contains(out, "refused a write to live/") {
				t.Errorf("the refusal is not logged:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("log lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("log claims %q:\n%s", a, out)
				}
			}
			if !tc.closeAudit {
				n := 0
				if err := al.Scan(t.Context(), 1, func(*audit.Entry) error { n++; return nil }); err != nil || n != 1 {
					t.Errorf("audit entries: %d, %v; want 1", n, err)
				}
			}
		})
	}
}
