package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// fixture is a store, an Authenticator and a server: /auth/token is the
// token endpoint, /v2/ a stand-in registry that answers 200 with who it
// served behind Middleware and AuthorizeMiddleware.
type fixture struct {
	clock *fakeClock
	store *Store
	a     *Authenticator
	srv   *httptest.Server

	mu       sync.Mutex
	failures []string // "name: reason"
	denied   []string
}

func newFixture(t *testing.T, anonymous ...string) *fixture {
	t.Helper()
	f := &fixture{clock: newFakeClock()}
	f.store = newTestStore(t, f.clock)
	key, err := f.store.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.a = &Authenticator{
		Store:     f.store,
		Issuer:    NewIssuer(key, 5*time.Minute, f.clock.Now),
		Anonymous: mustGrants(t, anonymous...),
		OnFailure: func(_ *http.Request, name, reason string) {
			f.mu.Lock()
			f.failures = append(f.failures, name+": "+reason)
			f.mu.Unlock()
		},
		OnDenied: func(_ *http.Request, p Principal, err *DeniedError) {
			f.mu.Lock()
			f.denied = append(f.denied, err.Error())
			f.mu.Unlock()
		},
		OnError: func(_ *http.Request, err error) { t.Errorf("OnError: %v", err) },
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/token", f.a.TokenHandler())
	mux.Handle("/v2/", f.a.Middleware(f.a.AuthorizeMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		fmt.Fprintf(w, "%s %s %s", p.Kind, p.Name, UserFrom(r.Context()))
	}))))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	ctx := context.Background()
	for _, u := range []struct{ name, grants string }{
		{"alice", "push:quarantine,pull:quarantine"},
		{"bob", "pull:live"},
		{"dave", "pull"},
		{"root", "admin"},
	} {
		if err := f.store.AddUser(ctx, u.name, u.name+"-password", mustGrants(t, u.grants)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.DisableUser(ctx, "dave", true); err != nil {
		t.Fatal(err)
	}
	return f
}

// takeFailures returns and forgets what OnFailure heard.
func (f *fixture) takeFailures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.failures
	f.failures = nil
	return out
}

// response is what a test looks at in an answer.
type response struct {
	status    int
	body      string
	challenge string
	message   string // errors[0].message
}

func (f *fixture) do(t *testing.T, method, path string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, body: string(b), challenge: resp.Header.Get("WWW-Authenticate")}
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil && len(e.Errors) == 1 {
		r.message = e.Errors[0].Message
		if resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("error answer without the registry header")
		}
	}
	return r
}

func basic(user, pass string) map[string]string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return map[string]string{"Authorization": r.Header.Get("Authorization")}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func (f *fixture) token(t *testing.T, spec TokenSpec) string {
	t.Helper()
	secret, _, err := f.store.CreateToken(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestMiddlewareAuthentication(t *testing.T) {
	f := newFixture(t)
	host := strings.TrimPrefix(f.srv.URL, "http://")
	ci := f.token(t, TokenSpec{Name: "ci", Grants: mustGrants(t, "pull:quarantine")})
	owned := f.token(t, TokenSpec{Name: "alices", Owner: "alice", Grants: mustGrants(t, "pull:quarantine")})
	revoked := f.token(t, TokenSpec{Name: "old", Grants: mustGrants(t, "pull")})
	if err := f.store.RevokeToken(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	const path = "/v2/quarantine/nginx/manifests/1.27"
	tests := []struct {
		name    string
		header  map[string]string
		status  int
		body    string // of a 200
		message string // of a 401
		failure string // what OnFailure heard
	}{
		{"user", basic("alice", "alice-password"), 200, "user alice alice", "", ""},
		{"wrong password", basic("alice", "bob-password"), 401, "", "invalid username or password", "alice: invalid username or password"},
		{"unknown user", basic("mallory", "alice-password"), 401, "", "invalid username or password", "mallory: invalid username or password"},
		{"disabled user", basic("dave", "dave-password"), 401, "", `user disabled: "dave"`, "dave: user disabled"},
		{"token as basic password", basic("anything", ci), 200, "token token:ci token:ci", "", ""},
		{"token as bearer", bearer(ci), 200, "token token:ci token:ci", "", ""},
		{"owned token", bearer(owned), 200, "token token:alices token:alices", "", ""},
		{"revoked token", basic("x", revoked), 401, "", "token revoked", "token:"},
		{"wrong token", bearer(wrongSecret(ci)), 401, "", "invalid username or password", "token:"},
		{"bad scheme", map[string]string{"Authorization": "Digest x"}, 401, "", `malformed Authorization header: unsupported scheme "Digest"`, "unknown: "},
		{"none", nil, 401, "", "authentication required: log in with `drydock login " + host + "` (or docker/podman login)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.takeFailures()
			r := f.do(t, http.MethodGet, path, tt.header)
			failures := f.takeFailures()
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				if r.body != tt.body {
					t.Fatalf("body %q, want %q", r.body, tt.body)
				}
				return
			}
			if !strings.HasPrefix(r.message, tt.message) {
				t.Errorf("message %q, want %q", r.message, tt.message)
			}
			wantChallenge := fmt.Sprintf(`Bearer realm="%s/auth/token",service="drydock",scope="repository:quarantine/nginx:pull"`, f.srv.URL)
			if r.challenge != wantChallenge {
				t.Errorf("challenge %q, want %q", r.challenge, wantChallenge)
			}
			switch {
			case tt.failure == "" && len(failures) != 0:
				t.Errorf("OnFailure called without credentials: %q", failures)
			case tt.failure != "" && (len(failures) != 1 || !strings.HasPrefix(failures[0], tt.failure)):
				t.Errorf("OnFailure heard %q, want %q", failures, tt.failure)
			}
		})
	}
}

func TestExpiredToken(t *testing.T) {
	f := newFixture(t)
	secret := f.token(t, TokenSpec{Name: "ci", Grants: mustGrants(t, "pull"), ExpiresAt: f.clock.Now().Add(24 * time.Hour)})
	if r := f.do(t, http.MethodGet, "/v2/live/x/tags/list", bearer(secret)); r.status != 200 {
		t.Fatalf("before expiry: %+v", r)
	}
	f.clock.Advance(25 * time.Hour)
	r := f.do(t, http.MethodGet, "/v2/live/x/tags/list", basic("ci", secret))
	if r.status != 401 || r.message != `token "ci" expired at 2026-10-02T12:00:00Z` {
		t.Fatalf("after expiry: %+v", r)
	}
}

func TestChallengeScheme(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, http.MethodPut, "/v2/quarantine/x/manifests/v1", map[string]string{"X-Forwarded-Proto": "https"})
	want := fmt.Sprintf(`Bearer realm="https://%s/auth/token",service="drydock",scope="repository:quarantine/x:pull,push"`, strings.TrimPrefix(f.srv.URL, "http://"))
	if r.status != 401 || r.challenge != want {
		t.Fatalf("%d %q, want %q", r.status, r.challenge, want)
	}
	if r := f.do(t, http.MethodGet, "/v2/", nil); r.status != 401 || !strings.HasPrefix(r.challenge, `Bearer realm="http://`) || strings.Contains(r.challenge, "scope") {
		t.Fatalf("base: %d %q", r.status, r.challenge)
	}
}

func TestAnonymous(t *testing.T) {
	f := newFixture(t, "pull:live")
	if r := f.do(t, http.MethodGet, "/v2/live/nginx/manifests/1", nil); r.status != 200 || r.body != "anonymous anonymous anonymous" {
		t.Fatalf("anonymous pull from live: %+v", r)
	}
	r := f.do(t, http.MethodGet, "/v2/quarantine/nginx/manifests/1", nil)
	if r.status != 403 || !strings.HasPrefix(r.message, `"anonymous" may not pull from quarantine/nginx: needs the pull role on namespace quarantine; log in first`) {
		t.Fatalf("anonymous pull from quarantine: %+v", r)
	}
	f.mu.Lock()
	denied := f.denied
	f.mu.Unlock()
	if len(denied) != 1 {
		t.Fatalf("OnDenied heard %q", denied)
	}
	// The base is challenged, so that clients that have credentials use them.
	if r := f.do(t, http.MethodGet, "/v2/", nil); r.status != 401 || !strings.HasPrefix(r.challenge, "Bearer ") {
		t.Fatalf("base: %+v", r)
	}
	// The token endpoint gives anonymous clients a token that pulls from live.
	tok := f.fetchToken(t, nil)
	if r := f.do(t, http.MethodGet, "/v2/live/nginx/manifests/1", bearer(tok)); r.status != 200 || r.body != "anonymous anonymous anonymous" {
		t.Fatalf("anonymous bearer: %+v", r)
	}
	// Turning anonymous access off invalidates the token at once.
	f.a.Anonymous = nil
	if r := f.do(t, http.MethodGet, "/v2/live/nginx/manifests/1", bearer(tok)); r.status != 401 {
		t.Fatalf("anonymous bearer after anonymous access was turned off: %+v", r)
	}
}

// fetchToken does the token flow's GET with header and returns the token.
func (f *fixture) fetchToken(t *testing.T, header map[string]string) string {
	t.Helper()
	r := f.do(t, http.MethodGet, "/auth/token?service=drydock&scope=repository:quarantine/x:pull,push&account=a", header)
	if r.status != 200 {
		t.Fatalf("token endpoint: %+v", r)
	}
	var tr map[string]any
	if err := json.Unmarshal([]byte(r.body), &tr); err != nil {
		t.Fatal(err)
	}
	if tr["token"] != tr["access_token"] || tr["expires_in"] != 300.0 || tr["issued_at"] != "2026-10-01T12:00:00Z" {
		t.Fatalf("token answer %s", r.body)
	}
	return tr["token"].(string)
}

func TestTokenFlow(t *testing.T) {
	f := newFixture(t)
	tok := f.fetchToken(t, basic("alice", "alice-password"))
	if r := f.do(t, http.MethodPut, "/v2/quarantine/x/manifests/v1", bearer(tok)); r.status != 200 || r.body != "user alice alice" {
		t.Fatalf("with the bearer token: %+v", r)
	}
	payload, mac, _ := strings.Cut(tok, ".")
	tampered := flip(payload) + "." + mac
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/manifests/v1", bearer(tampered)); r.status != 401 || !strings.Contains(r.message, "invalid bearer token") {
		t.Fatalf("tampered: %+v", r)
	}

	// An API token works in the flow too, as the password.
	secret := f.token(t, TokenSpec{Name: "ci", Grants: mustGrants(t, "pull:quarantine")})
	ciTok := f.fetchToken(t, basic("whatever", secret))
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/manifests/v1", bearer(ciTok)); r.status != 200 || r.body != "token token:ci token:ci" {
		t.Fatalf("token's bearer: %+v", r)
	}
	if err := f.store.RevokeToken(context.Background(), "ci"); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/manifests/v1", bearer(ciTok)); r.status != 401 || !strings.HasPrefix(r.message, "token revoked") {
		t.Fatalf("bearer of a revoked token: %+v", r)
	}

	// Failures at the token endpoint get a Basic challenge.
	for _, h := range []map[string]string{nil, basic("alice", "wrong-password")} {
		r := f.do(t, http.MethodGet, "/auth/token?service=drydock", h)
		if r.status != 401 || r.challenge != `Basic realm="drydock"` {
			t.Fatalf("token endpoint with %v: %+v", h, r)
		}
	}

	f.clock.Advance(5 * time.Minute)
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/manifests/v1", bearer(tok)); r.status != 401 || !strings.Contains(r.message, "bearer token expired") {
		t.Fatalf("past the ttl: %+v", r)
	}
}

func TestTokenEndpointPOST(t *testing.T) {
	f := newFixture(t)
	post := func(form url.Values) response {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/auth/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return send(t, req)
	}
	r := post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"},
		"scope": {"repository:quarantine/x:pull"}, "service": {"drydock"}, "client_id": {"test"}})
	var tr tokenResponse
	if r.status != 200 || json.Unmarshal([]byte(r.body), &tr) != nil || tr.Scope != "repository:quarantine/x:pull" || tr.AccessToken == "" {
		t.Fatalf("POST: %+v", r)
	}
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/tags/list", bearer(tr.AccessToken)); r.status != 200 {
		t.Fatalf("with the POSTed token: %+v", r)
	}
	if r := post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"nope-nope"}}); r.status != 401 || r.message != "invalid username or password" {
		t.Fatalf("POST with a wrong password: %+v", r)
	}
	if r := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}); r.status != 400 || !strings.Contains(r.body, "unsupported_grant_type") {
		t.Fatalf("refresh_token grant: %+v", r)
	}
	if r := f.do(t, http.MethodDelete, "/auth/token", nil); r.status != 405 {
		t.Fatalf("DELETE: %+v", r)
	}
}

func TestRoleChangeAppliesAtOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.fetchToken(t, basic("alice", "alice-password"))
	const path = "/v2/quarantine/x/manifests/v1"
	if r := f.do(t, http.MethodPut, path, bearer(tok)); r.status != 200 {
		t.Fatalf("push before: %+v", r)
	}
	if err := f.store.SetGrants(ctx, "alice", mustGrants(t, "pull:quarantine")); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, http.MethodPut, path, bearer(tok))
	if r.status != 403 || r.message != `"alice" may not push to quarantine/x: needs the push role on namespace quarantine` {
		t.Fatalf("push after losing push: %+v", r)
	}
	if r := f.do(t, http.MethodGet, path, bearer(tok)); r.status != 200 {
		t.Fatalf("pull after: %+v", r)
	}
	if err := f.store.DisableUser(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, http.MethodGet, path, bearer(tok)); r.status != 401 || !strings.HasPrefix(r.message, "user disabled") {
		t.Fatalf("after disabling: %+v", r)
	}
	if err := f.store.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, http.MethodGet, path, bearer(tok)); r.status != 401 || r.message != `user "alice" not found` {
		t.Fatalf("after deleting: %+v", r)
	}
}

func TestMountNeedsPullOnSource(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.store.AddUser(ctx, "builder", "builder-password", mustGrants(t, "push:team,pull:team")); err != nil {
		t.Fatal(err)
	}
	const mount = "/v2/team/app/blobs/uploads/?mount=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef&from=quarantine/nginx"
	r := f.do(t, http.MethodPost, mount, basic("builder", "builder-password"))
	if r.status != 403 || r.message != `"builder" may not pull from quarantine/nginx (to mount a blob into team/app): needs the pull role on namespace quarantine` {
		t.Fatalf("mount without pull on the source: %+v", r)
	}
	if r := f.do(t, http.MethodPost, "/v2/team/app/blobs/uploads/", basic("builder", "builder-password")); r.status != 200 {
		t.Fatalf("plain upload: %+v", r)
	}
	if err := f.store.SetGrants(ctx, "builder", mustGrants(t, "push:team,pull:team,pull:quarantine")); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, http.MethodPost, mount, basic("builder", "builder-password")); r.status != 200 {
		t.Fatalf("mount with pull on the source: %+v", r)
	}
}

func TestHtpasswdFallback(t *testing.T) {
	f := newFixture(t)
	h, err := ParseHtpasswd(strings.NewReader("legacy:" + hash(t, "legacy-password") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.a.Htpasswd, f.a.HtpasswdGrants = h, mustGrants(t, "pull:live")
	if r := f.do(t, http.MethodGet, "/v2/live/x/tags/list", basic("legacy", "legacy-password")); r.status != 200 || r.body != "htpasswd legacy legacy" {
		t.Fatalf("htpasswd user: %+v", r)
	}
	if r := f.do(t, http.MethodPut, "/v2/live/x/manifests/v1", basic("legacy", "legacy-password")); r.status != 403 {
		t.Fatalf("htpasswd user pushing: %+v", r)
	}
	if r := f.do(t, http.MethodGet, "/v2/live/x/tags/list", basic("legacy", "wrong-password")); r.status != 401 {
		t.Fatalf("htpasswd user, wrong password: %+v", r)
	}
	tok := f.fetchToken(t, basic("legacy", "legacy-password"))
	if r := f.do(t, http.MethodGet, "/v2/live/x/tags/list", bearer(tok)); r.status != 200 || r.body != "htpasswd legacy legacy" {
		t.Fatalf("htpasswd bearer: %+v", r)
	}
	f.a.Htpasswd = nil
	if r := f.do(t, http.MethodGet, "/v2/live/x/tags/list", bearer(tok)); r.status != 401 {
		t.Fatalf("htpasswd bearer without htpasswd: %+v", r)
	}
}

func TestAuthorize(t *testing.T) {
	p := func(grants string) Principal {
		return Principal{Name: "p", Kind: KindUser, Grants: mustGrants(t, grants)}
	}
	tests := []struct {
		method, target, grants string
		want                   string // "" = allowed, else part of the error
	}{
		{"GET", "/v2/", "", ""},
		{"GET", "/v2/_catalog", "", ""},
		{"GET", "/auth/token", "", ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/v2/quarantine/a/b/manifests/v1", "pull:quarantine", ""},
		{"HEAD", "/v2/quarantine/a/blobs/sha256:00", "pull:quarantine", ""},
		{"GET", "/v2/quarantine/a/tags/list", "pull:live", "needs the pull role on namespace quarantine"},
		{"GET", "/v2/quarantine/a/referrers/sha256:00", "pull", ""},
		{"PUT", "/v2/quarantine/a/manifests/v1", "pull:quarantine", `"p" may not push to quarantine/a: needs the push role`},
		{"PATCH", "/v2/quarantine/a/blobs/uploads/123", "push:quarantine", ""},
		{"DELETE", "/v2/live/a/manifests/sha256:00", "push:quarantine", "push role on namespace live"},
		{"DELETE", "/v2/live/a/manifests/sha256:00", "admin", ""},
		{"POST", "/v2/live/a/blobs/uploads/?mount=sha256:00&from=quarantine/a", "push:live", "needs the pull role on namespace quarantine"},
		{"POST", "/v2/live/a/blobs/uploads/?mount=sha256:00&from=quarantine/a", "push:live,pull:quarantine", ""},
		{"POST", "/v2/live/a/blobs/uploads/?mount=sha256:00&from=Bad//x", "push:live,pull", "invalid repository name to mount from"},
		{"GET", "/v2/Quarantine/a/manifests/v1", "pull", "invalid repository name"},
		{"GET", "/v2/quarantine/../live/a/manifests/v1", "pull:quarantine", "invalid repository name"},
		{"GET", "/v2/something", "pull", "not a registry API route"},
		{"GET", "/v2/something", "admin", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://h"+tt.target, nil)
			err := Authorize(p(tt.grants), r)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			if _, ok := err.(*DeniedError); !ok || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a *DeniedError containing %q", err, tt.want)
			}
		})
	}
}

// TestGGCRTransport drives go-containerregistry's client transport through
// the bearer flow: ping, challenge, token endpoint, bearer request.
func TestGGCRTransport(t *testing.T) {
	f := newFixture(t)
	reg, err := name.NewRegistry(strings.TrimPrefix(f.srv.URL, "http://"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	scopes := []string{"repository:quarantine/x:pull"}
	secret := f.token(t, TokenSpec{Name: "ci", Grants: mustGrants(t, "pull:quarantine")})
	for _, cfg := range []authn.AuthConfig{
		{Username: "alice", Password: "alice-password"},
		{Username: "ci", Password: secret},
	} {
		rt, err := transport.NewWithContext(ctx, reg, authn.FromConfig(cfg), http.DefaultTransport, scopes)
		if err != nil {
			t.Fatalf("%s: %v", cfg.Username, err)
		}
		client := &http.Client{Transport: rt}
		for _, path := range []string{"/v2/", "/v2/quarantine/x/tags/list"} {
			resp, err := client.Get(f.srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s GET %s through the transport: %d %s", cfg.Username, path, resp.StatusCode, b)
			}
		}
	}
	_, err = transport.NewWithContext(ctx, reg, authn.FromConfig(authn.AuthConfig{Username: "alice", Password: "wrong-password"}), http.DefaultTransport, scopes)
	if err == nil || !strings.Contains(err.Error(), "invalid username or password") {
		t.Fatalf("bad credentials: %v", err)
	}
}
