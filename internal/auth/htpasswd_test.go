package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseHtpasswd(t *testing.T) {
	good := hash(t, "s3cret")
	tests := []struct {
		name, body, want string
	}{
		{"ok", "# users\n\nalice:" + good + "\n", ""},
		{"no colon", "alice\n", "line 1"},
		{"md5 refused", "alice:$apr1$abc$def\n", "not a bcrypt hash"},
		{"duplicate", "a:" + good + "\na:" + good + "\n", "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHtpasswd(strings.NewReader(tt.body))
			if tt.want == "" && err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	h, err := ParseHtpasswd(strings.NewReader("alice:" + hash(t, "s3cret") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(h.Middleware("drydock", func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, "/v2/")
	}, ok))
	defer srv.Close()
	tests := []struct {
		name, path, user, pass string
		want                   int
	}{
		{"open path", "/healthz", "", "", http.StatusTeapot},
		{"no creds", "/v2/", "", "", http.StatusUnauthorized},
		{"wrong password", "/v2/", "alice", "nope", http.StatusUnauthorized},
		{"unknown user", "/v2/", "bob", "s3cret", http.StatusUnauthorized},
		{"good", "/v2/", "alice", "s3cret", http.StatusTeapot},
		{"good again (cached)", "/v2/x", "alice", "s3cret", http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
				t.Errorf("missing challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func FuzzParseHtpasswd(f *testing.F) {
	f.Add("a:$2a$04$abcdefghijklmnopqrstuu\n")
	f.Add("#x\n\n:\n")
	f.Fuzz(func(t *testing.T, body string) {
		_, _ = ParseHtpasswd(strings.NewReader(body))
	})
}
