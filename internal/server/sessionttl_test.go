package server_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/config"
)

// TestSessionTTLFromConfig: web.sessionTTL is how long a UI sign-in lasts
// (the session cookie's expiry, from the server's clock).
func TestSessionTTLFromConfig(t *testing.T) {
	s := startAuthServer(t, func(c *config.Config) { c.Web.SessionTTL = config.Duration(90 * time.Minute) })
	tr := &http.Transport{}
	resp, err := tr.RoundTrip(mustRequest(t, "GET", s.url+"/ui/login", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", body)
	}
	form := url.Values{"csrf": {string(m[1])}, "user": {"admin"}, "password": {s.admin}, "next": {"/ui/"}}
	req := mustRequest(t, "POST", s.url+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	want := s.clock.Now().Add(90 * time.Minute)
	for _, c := range resp.Cookies() {
		if c.Name == "drydock_session" {
			if !c.Expires.Equal(want.Truncate(time.Second)) {
				t.Fatalf("the session expires %s, want %s (web.sessionTTL 90m)", c.Expires, want)
			}
			return
		}
	}
	t.Fatalf("no session cookie: %v", resp.Cookies())
}

func mustRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
