package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/audit"
)

// getWith sends GET url with an Authorization header (none when empty).
func getWith(t *testing.T, url, authz string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestLoginThrottleAndMetrics runs against a real `drydock serve` with
// the default authentication (anonymous access off): 60 wrong passwords in
// a row meet 429 with Retry-After; the audit log holds a few records that
// count them, and verifies; /metrics is refused without a credential and
// served to a metrics token.
func TestLoginThrottleAndMetrics(t *testing.T) {
	s := startServeEnv(t, "", nil)
	addUser(t, s.Data, "alice", "alice-password", "pull:*", "push:*", "promote:*")
	basic := func(user, pass string) string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	if resp, body := getWith(t, s.URL()+"/metrics", ""); resp.StatusCode != 401 || strings.Contains(body, "drydock_") {
		t.Errorf("/metrics without a credential: %d", resp.StatusCode)
	}
	if resp, _ := getWith(t, s.URL()+"/metrics", basic("alice", "alice-password")); resp.StatusCode != 403 {
		t.Errorf("/metrics as alice (no metrics role): %d", resp.StatusCode)
	}
	tok := createToken(t, s.Data, "prometheus", "30d", "metrics")
	resp, body := getWith(t, s.URL()+"/metrics", "Bearer "+tok)
	if resp.StatusCode != 200 || !strings.Contains(body, "drydock_http_requests_total") {
		t.Errorf("/metrics with a metrics token: %d", resp.StatusCode)
	}

	n401, n429 := 0, 0
	for i := range 60 {
		resp, body := getWith(t, s.URL()+"/v2/", basic("alice", "guess"))
		switch resp.StatusCode {
		case 401:
			n401++
			if n429 > 0 {
				t.Fatalf("attempt %d: 401 after a 429", i+1)
			}
		case 429:
			n429++
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `too many failed logins for user \"alice\"`) {
				t.Fatalf("429 without Retry-After or reason: %v %s", resp.Header, body)
			}
		default:
			t.Fatalf("attempt %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	// About ten at full speed (a slow run refills a few).
	if n429 < 40 || n401 < 10 {
		t.Errorf("%d refused, %d throttled; want the throttle to answer most of 60", n401, n429)
	}

	s.Stop() // writes the open burst
	records, total := 0, 0
	for _, e := range auditOf(t, s.Data, func(e audit.Entry) bool { return e.Action == audit.ActionLoginFailed && e.Actor == "alice" }) {
		var d struct{ Count int }
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		records++
		total += d.Count
	}
	if total < 60 || records > 4 {
		t.Errorf("%d login_failed records for alice counting %d refusals; want a few counting at least 60", records, total)
	}
	mustDrydock(t, nil, "audit", "verify", "--data", s.Data)
}
