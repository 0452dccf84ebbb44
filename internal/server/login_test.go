package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/server"
)

// authServer is a drydock server over real HTTP on loopback with the
// default authentication (anonymous access off, the bootstrap admin) and
// its clock under the test's control.
type authServer struct {
	url   string
	data  string
	clock *fakeClock
	srv   *server.Server
	stop  func()
	admin string // the bootstrap admin's password
}

func startAuthServer(t *testing.T, edit func(*config.Config)) *authServer {
	t.Helper()
	s := &authServer{data: t.TempDir(), clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	cfg := config.Default()
	cfg.Data = s.data
	cfg.Addr = "127.0.0.1:0"
	cfg.Gate.SweepInterval = config.Duration(time.Hour)
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.WithClock(s.clock.Now))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(s.stop)
	s.srv, s.url = srv, "http://"+ln.Addr().String()
	// No bootstrap admin when anonymous access is on.
	if pw, err := os.ReadFile(filepath.Join(s.data, "auth", "initial-admin-password")); err == nil {
		s.admin = strings.TrimSpace(string(pw))
	} else if len(cfg.Auth.Anonymous) == 0 {
		t.Fatal(err)
	}
	return s
}

// get sends GET path with Basic credentials (none when user is "") or a
// bearer token (user "Bearer").
func (s *authServer) get(t *testing.T, base, path, user, pass string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch user {
	case "":
	case "Bearer":
		req.Header.Set("Authorization", "Bearer "+pass)
	default:
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// loginFailures reads the audit log's login_failed records (once the
// server has stopped and flushed them).
func loginFailures(t *testing.T, data string) []map[string]any {
	t.Helper()
	l, closeLog, err := audit.OpenFile(audit.DefaultPath(data))
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	var out []map[string]any
	err = l.Scan(context.Background(), 0, func(e *audit.Entry) error {
		if e.Action != audit.ActionLoginFailed {
			return nil
		}
		d := map[string]any{"actor": e.Actor}
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := l.Verify(context.Background()); err != nil || !res.OK() {
		t.Errorf("audit verify: %+v, %v", res, err)
	}
	return out
}

// TestLoginThrottleOverHTTP: against a real server, 60 wrong passwords in
// a row meet 429 with Retry-After after the tenth; the right password
// works once the wait is over; the audit log holds a few records whose
// counts add up to every refusal, not one record per guess.
func TestLoginThrottleOverHTTP(t *testing.T) {
	s := startAuthServer(t, nil)
	var codes []int
	for range 60 {
		resp := s.get(t, s.url, "/v2/", "admin", "wrong-guess")
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "6" {
			t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	for i, c := range codes {
		if want := map[bool]int{true: 401, false: 429}[i < 10]; c != want {
			t.Fatalf("attempt %d: %d, want %d (all: %v)", i+1, c, want, codes)
		}
	}
	if resp := s.get(t, s.url, "/v2/", "admin", s.admin); resp.StatusCode != 429 {
		t.Fatalf("the right password while throttled: %d", resp.StatusCode)
	}
	s.clock.Set(s.clock.Now().Add(6 * time.Second))
	if resp := s.get(t, s.url, "/v2/", "admin", s.admin); resp.StatusCode != 200 {
		t.Fatalf("the right password after the wait: %d", resp.StatusCode)
	}
	s.stop() // flushes the open bursts to the audit log
	recs := loginFailures(t, s.data)
	total, throttled := 0, 0
	for _, r := range recs {
		if r["actor"] != "admin" || r["remote"] != "127.0.0.1" {
			t.Errorf("record %v", r)
		}
		total += int(r["count"].(float64))
		throttled += int(r["throttled"].(float64))
	}
	if total != 61 || throttled != 51 || len(recs) != 2 {
		t.Errorf("%d records counting %d refusals (%d throttled); want 2 records of 61 (51 throttled): %v", len(recs), total, throttled, recs)
	}
}

// TestMetricsNeedCredential: /metrics answers only a credential with the
// metrics role (or admin) on the main address; metrics.addr serves it
// without one on its own listener.
func TestMetricsNeedCredential(t *testing.T) {
	s := startAuthServer(t, func(c *config.Config) { c.Metrics.Addr = "127.0.0.1:0" })
	st, err := auth.OpenStore(auth.DefaultPath(s.data))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.AddUser(ctx, "alice", "alice-password", auth.Grants{{Role: auth.RolePull, Namespace: auth.AllNamespaces},
		{Role: auth.RolePush, Namespace: auth.AllNamespaces}, {Role: auth.RolePromote, Namespace: auth.AllNamespaces}}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := st.CreateToken(ctx, auth.TokenSpec{Name: "prometheus", Grants: auth.Grants{{Role: auth.RoleMetrics, Namespace: auth.AllNamespaces}}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, c := range []struct {
		name, user, pass string
		want             int
	}{
		{"no credential", "", "", 401},
		{"pull, push and promote everywhere", "alice", "alice-password", 403},
		{"a wrong password", "alice", "nope", 401},
		{"a metrics token as Bearer", "Bearer", tok, 200},
		{"a metrics token as the password", "prometheus", tok, 200},
		{"admin", "admin", s.admin, 200},
	} {
		if resp := s.get(t, s.url, "/metrics", c.user, c.pass); resp.StatusCode != c.want {
			t.Errorf("%s: /metrics = %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	var addr string
	for range 100 {
		if addr = s.srv.MetricsAddr(); addr != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "drydock_http_requests_total") {
		t.Errorf("metrics.addr /metrics = %d:\n%.300s", resp.StatusCode, body)
	}
	if resp := s.get(t, "http://"+addr, "/v2/", "", ""); resp.StatusCode != 404 {
		t.Errorf("metrics.addr serves /v2/: %d", resp.StatusCode)
	}
	// Anonymous access, when on, does not include metrics unless granted.
	anon := startAuthServer(t, func(c *config.Config) { c.Auth.Anonymous = []string{"pull:*"} })
	if resp := anon.get(t, anon.url, "/metrics", "", ""); resp.StatusCode != 403 {
		t.Errorf("anonymous pull:* reads /metrics: %d", resp.StatusCode)
	}
}
