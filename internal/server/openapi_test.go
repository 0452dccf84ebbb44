package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

// TestAPIAuthOverHTTP: without anonymous access, the OpenAPI document is
// served to anyone while the new routes answer 401 without credentials
// and work for the admin, who alone may write a global exception.
func TestAPIAuthOverHTTP(t *testing.T) {
	s := startAuthServer(t, nil)
	do := func(method, path, user, pass string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	doc, _ := api.OpenAPI()
	if code, b := do("GET", "/api/v1/openapi.json", "", "", nil); code != http.StatusOK || !bytes.Equal(b, doc) {
		t.Fatalf("openapi.json without credentials: %d", code)
	}
	for _, p := range []string{"/api/v1/exceptions", "/api/v1/openvex/exceptions", "/api/v1/exceptions/1", "/api/v1/db/status",
		"/api/v1/findings?digest=sha256:" + strings.Repeat("a", 64), "/api/v1/audit", "/api/v1/audit?after=0", "/api/v1/policy"} {
		if code, _ := do("GET", p, "", "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", p, code)
		}
		if code, _ := do("GET", p, "admin", "wrong", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %d, want 401", p, code)
		}
	}
	if code, _ := do("POST", "/api/v1/exceptions/1/revoke", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("revoke without credentials: %d, want 401", code)
	}
	for _, c := range []struct{ method, path string }{{"PUT", "/api/v1/policy"}, {"POST", "/api/v1/policy/validate"}} {
		if code, _ := do(c.method, c.path, "", "", api.PolicyRequest{Policy: gatekeeper.DefaultPolicy}); code != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401", c.method, c.path, code)
		}
	}
	// The admin reads the log forward (the CLI's audit and --follow).
	var page api.AuditPage
	code, b := do("GET", "/api/v1/audit?after=0&limit=2", "admin", s.admin, nil)
	if err := json.Unmarshal(b, &page); err != nil || code != http.StatusOK || len(page.Entries) == 0 || page.Entries[0].Seq != 1 {
		t.Errorf("audit after=0 as the admin: %d %s", code, b)
	}
	var st gatekeeper.DBStatus
	code, b = do("GET", "/api/v1/db/status", "admin", s.admin, nil)
	if err := json.Unmarshal(b, &st); err != nil || code != http.StatusOK || st.Present || st.Error == "" {
		t.Fatalf("db status without a database: %d %s", code, b)
	}
	req := api.ExceptionRequest{Scope: "global", Package: "glibc", Justification: "vulnerable_code_not_in_execute_path",
		Reason: "no untrusted input reaches it", Expires: "2026-04-01T00:00:00Z"}
	var ch gatekeeper.ExceptionChange
	code, b = do("POST", "/api/v1/exceptions", "admin", s.admin, req)
	if err := json.Unmarshal(b, &ch); err != nil || code != http.StatusCreated || ch.Exception.Author != "admin" || ch.Exception.Scope != "global" {
		t.Fatalf("a global exception by the admin: %d %s", code, b)
	}
	var list api.ExceptionsResponse
	code, b = do("GET", "/api/v1/exceptions?package=glibc", "admin", s.admin, nil)
	if err := json.Unmarshal(b, &list); err != nil || code != http.StatusOK || len(list.Exceptions) != 1 {
		t.Fatalf("list: %d %s", code, b)
	}
}
