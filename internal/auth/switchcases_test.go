package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests added for the auth mutants gremlins could not cover (listed as
// NOT COVERED by `make mutate`; test/mutation/SURVIVORS.md, fifth pass),
// each planted by hand: these fail on the mutant.

// TestLoadHtpasswd reads an htpasswd file from disk; errors name the file.
// LoadHtpasswd was only called by internal/server, so both of its error
// checks could be negated without a test of this package noticing.
func TestLoadHtpasswd(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(good, []byte("alice:"+hash(t, "s3cret")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := LoadHtpasswd(good)
	if err != nil {
		t.Fatalf("LoadHtpasswd: %v", err)
	}
	if !h.Verify("alice", "s3cret") || h.Verify("alice", "wrong") {
		t.Error("the loaded file does not verify alice's password, or accepts a wrong one")
	}
	missing := filepath.Join(dir, "absent")
	if _, err := LoadHtpasswd(missing); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("LoadHtpasswd(missing) = %v, want an error naming the file", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("alice:{SHA}notbcrypt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHtpasswd(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadHtpasswd(bad) = %v, want an error naming %s", err, bad)
	}
}

// TestStoreFailureIsAnInternalError checks the answer when the user store
// cannot be read: 500 (not a 401 blaming the client), OnError told, and no
// panic when OnError is not set. Mutant: `a.OnError != nil` -> `== nil`.
func TestStoreFailureIsAnInternalError(t *testing.T) {
	s := newTestStore(t, newFakeClock())
	if err := s.Close(); err != nil { // the store's database is gone
		t.Fatal(err)
	}
	served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("request served") })
	for _, hook := range []bool{true, false} {
		var heard []error
		a := &Authenticator{Store: s}
		if hook {
			a.OnError = func(_ *http.Request, err error) { heard = append(heard, err) }
		}
		req := httptest.NewRequest(http.MethodGet, "/v2/quarantine/app/tags/list", nil)
		req.SetBasicAuth("alice", "alice-password")
		rec := httptest.NewRecorder()
		a.Middleware(served).ServeHTTP(rec, req)
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("OnError set %v: status %d, want 500 (%s)", hook, rec.Code, rec.Body)
		}
		if hook && len(heard) != 1 {
			t.Errorf("OnError heard %d errors, want 1", len(heard))
		}
	}
}

// TestLogin signs in to the web UI through Authenticator.Login (only
// internal/web called it): a store user gets in; an htpasswd user, a wrong
// password and an API token do not; OnFailure hears the refusals and
// OnThrottled the throttled attempt. Mutants: `err == nil && p.Kind !=
// KindUser` negated either way (an htpasswd user signed in), the two hook
// checks negated.
func TestLogin(t *testing.T) {
	f := newFixture(t)
	h, err := ParseHtpasswd(strings.NewReader("legacy:" + hash(t, "legacy-password") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.a.Htpasswd, f.a.HtpasswdGrants = h, mustGrants(t, "pull:live")
	var throttled []string
	f.a.OnThrottled = func(_ *http.Request, name string, _ *Wait) { throttled = append(throttled, name) }
	req := httptest.NewRequest(http.MethodPost, "/login", nil)

	p, err := f.a.Login(req, "alice", "alice-password")
	if err != nil || p.Kind != KindUser || p.Name != "alice" {
		t.Fatalf("Login(alice) = %+v, %v", p, err)
	}
	for _, c := range []struct{ user, pass string }{
		{"legacy", "legacy-password"}, // htpasswd users use the registry and the API only
		{"alice", "wrong-password"},
	} {
		p, err := f.a.Login(req, c.user, c.pass)
		if !errors.Is(err, ErrBadCredentials) || p.Name != "" {
			t.Errorf("Login(%s, %s) = %+v, %v, want ErrBadCredentials", c.user, c.pass, p, err)
		}
		if heard := f.takeFailures(); len(heard) != 1 || !strings.HasPrefix(heard[0], c.user+": ") {
			t.Errorf("Login(%s, %s): OnFailure heard %q", c.user, c.pass, heard)
		}
	}
	if _, err := f.a.Login(req, "alice", TokenPrefix+"whatever"); !errors.Is(err, ErrTokenSignIn) {
		t.Errorf("Login with a token = %v, want ErrTokenSignIn", err)
	}

	th, err := NewMemoryThrottle(ThrottleLimit{1, time.Hour}, ThrottleLimit{100, time.Hour}, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.a.Throttle = th
	if _, err := f.a.Login(req, "bob", "wrong-password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("first wrong password = %v", err)
	}
	f.takeFailures()
	var te *ThrottledError
	if _, err := f.a.Login(req, "bob", "bob-password"); !errors.As(err, &te) {
		t.Fatalf("second attempt within the hour = %v, want ThrottledError", err)
	}
	if len(throttled) != 1 || throttled[0] != "bob" {
		t.Errorf("OnThrottled heard %q, want [bob]", throttled)
	}
	if heard := f.takeFailures(); len(heard) != 0 {
		t.Errorf("a throttled attempt told OnFailure %q", heard)
	}
	f.a.OnThrottled, f.a.OnFailure = nil, nil // no hooks: refusals still answered, no panic
	if _, err := f.a.Login(req, "bob", "bob-password"); !errors.As(err, &te) {
		t.Errorf("throttled attempt without hooks = %v", err)
	}
	if _, err := f.a.Login(req, "legacy", "legacy-password"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("htpasswd user without hooks = %v", err)
	}
}

// TestRequire guards a global-role handler (metrics, admin): the admin is
// served; a user without the role gets 403 DENIED, told to OnDenied; an
// anonymous caller is also told to log in. Require was not called by this
// package's tests. Mutants: `a.OnDenied != nil` and `p.Kind ==
// KindAnonymous` negated in Require.
func TestRequire(t *testing.T) {
	f := newFixture(t, "pull")
	h := f.a.Require(RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) }))
	do := func(header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "http://drydock.test/metrics", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(basic("root", "root-password")); rec.Code != http.StatusOK || rec.Body.String() != "served" {
		t.Fatalf("admin: %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct {
		who    string
		header map[string]string
		login  bool
	}{
		{"alice", basic("alice", "alice-password"), false},
		{"anonymous", nil, true},
	} {
		f.mu.Lock()
		f.denied = nil
		f.mu.Unlock()
		rec := do(c.header)
		body := rec.Body.String()
		if rec.Code != http.StatusForbidden || !strings.Contains(body, "DENIED") {
			t.Errorf("%s: %d %s, want 403 DENIED", c.who, rec.Code, body)
		}
		if got := strings.Contains(body, "log in first: drydock login drydock.test"); got != c.login {
			t.Errorf("%s: told to log in %v, want %v: %s", c.who, got, c.login, body)
		}
		f.mu.Lock()
		denied := f.denied
		f.mu.Unlock()
		if len(denied) != 1 {
			t.Errorf("%s: OnDenied heard %q, want one refusal", c.who, denied)
		}
	}
	f.a.OnDenied = nil // no hook: still refused, no panic
	if rec := do(basic("alice", "alice-password")); rec.Code != http.StatusForbidden {
		t.Errorf("alice without OnDenied: %d", rec.Code)
	}
}
