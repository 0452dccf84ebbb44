package server_test

import (
	"context"
	"io"
	"testing"

	"github.com/drydock-project/drydock/internal/auth"
)

// TestFindingsRoutesAuthOverHTTP: the findings, findings-index and audit
// routes answer 401 without (or with wrong) credentials, 403 to a user
// without the role they need, and work for the admin; over HTTP, through
// the server's own authentication.
func TestFindingsRoutesAuthOverHTTP(t *testing.T) {
	s := startAuthServer(t, nil)
	st, err := auth.OpenStore(auth.DefaultPath(s.data))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// pusher may push but pull nowhere; reader may pull everywhere but is
	// no admin.
	if err := st.AddUser(ctx, "pusher", "pusher-password", auth.Grants{{Role: auth.RolePush, Namespace: auth.AllNamespaces}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(ctx, "reader", "reader-password", auth.Grants{{Role: auth.RolePull, Namespace: auth.AllNamespaces}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	const d = "sha256:4c1e5d6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"
	for _, c := range []struct {
		path                  string
		pusher, reader, admin int // the statuses for each; 401 for anyone else
	}{
		{"/api/v1/findings?digest=" + d, 403, 404, 404},
		{"/api/v1/audit", 403, 403, 200},
		{"/api/v1/cves/CVE-2024-6387", 403, 200, 200},
		{"/api/v1/packages/openssl", 403, 200, 200},
		{"/api/v1/findings/totals", 403, 200, 200},
		{"/api/v1/findings/counts?digest=" + d, 403, 200, 200},
		{"/api/v1/images?verdict=fail", 403, 200, 200},
		{"/api/v1/findings/history?days=30", 403, 200, 200},
		{"/api/v1/findings/history?days=0", 400, 400, 400},
		{"/api/v1/images/end-of-life", 403, 200, 200},
		{"/api/v1/images/end-of-life?within=x", 400, 400, 400},
	} {
		for _, u := range []struct {
			user, pass string
			want       int
		}{
			{"", "", 401}, {"admin", "wrong", 401}, {"reader", "nope", 401},
			{"pusher", "pusher-password", c.pusher}, {"reader", "reader-password", c.reader}, {"admin", s.admin, c.admin},
		} {
			resp := s.get(t, s.url, c.path, u.user, u.pass)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != u.want {
				t.Errorf("GET %s as %q: %d %s, want %d", c.path, u.user, resp.StatusCode, b, u.want)
			}
		}
	}
}
