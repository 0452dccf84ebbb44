package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

type fakeGate struct{}

func (fakeGate) Verdict(_ context.Context, ref string) (*gatekeeper.Status, error) {
	return &gatekeeper.Status{Repository: "quarantine/app", Digest: digestA, Verdict: gate.Verdict{State: gate.StateFail,
		Reasons: []gate.Reason{{Rule: gate.RuleMaxSeverity, Message: "<b>1 finding</b>"}}}}, nil
}
func (fakeGate) Promote(context.Context, gatekeeper.PromoteRequest) (*gatekeeper.Promotion, error) {
	return nil, fmt.Errorf("no")
}
func (fakeGate) RecordImport(context.Context, string, string, string) (*gatekeeper.Status, error) {
	return nil, fmt.Errorf("no")
}
func (fakeGate) Rescan(context.Context, string) (int64, error) { return 0, fmt.Errorf("no") }
func (fakeGate) Images(context.Context) ([]store.Image, error) {
	return []store.Image{{Digest: digestA, Repository: "quarantine/app", Verdict: gate.Verdict{State: gate.StateFail}},
		{Digest: "sha256:" + strings.Repeat("b", 64), Repository: "quarantine/other", Verdict: gate.Verdict{State: gate.StatePass}}}, nil
}

type fakeScans struct{}

func (fakeScans) Scan(_ context.Context, d string) (*store.Scan, error) {
	if d != digestA {
		return nil, store.ErrNotFound
	}
	return &store.Scan{Digest: digestA, Repository: "quarantine/app", Reports: []store.PlatformReport{{Digest: digestA, Report: &scan.Report{
		Status: scan.StatusOK, Packages: 12, Findings: []scan.Finding{
			{VulnerabilityID: "CVE-2024-0001", PkgName: "libc6", SrcName: "glibc", InstalledVersion: "2.36-9", FixedVersion: "2.36-9+deb12u4",
				Severity: vulndb.SeverityHigh, Status: vulndb.StatusFixed, Title: "<script>alert(1)</script>"},
			{VulnerabilityID: "CVE-2024-0002", PkgName: "zlib1g", SrcName: "zlib", InstalledVersion: "1", Severity: vulndb.SeverityLow, Status: vulndb.StatusAffected},
		}}}}}, nil
}

type fakeAudit struct{}

func (fakeAudit) Head(context.Context) (audit.Anchor, error) { return audit.Anchor{Seq: 1}, nil }
func (fakeAudit) Newest(_ context.Context, before int64, action audit.Action, _ int) ([]*audit.Entry, error) {
	if (before > 0 && before <= 1) || (action != "" && action != audit.ActionBypassRefused) {
		return nil, nil
	}
	return []*audit.Entry{{Seq: 1, Actor: "<i>mallory</i>", Action: audit.ActionBypassRefused, Repository: "live/app", Outcome: audit.OutcomeRefused}}, nil
}

type harness struct {
	srv   *httptest.Server
	store *auth.Store
	clock *clock
	authn *auth.Authenticator
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newHarness builds the UI on the API with fakes; opts add services.
func newHarness(t *testing.T, opts ...func(*api.Options)) *harness {
	t.Helper()
	ck := &clock{t: time.Now()}
	st, err := auth.OpenStore(auth.DefaultPath(t.TempDir()), auth.WithClock(ck.Now), auth.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.AddUser(ctx, "root", "root-password", auth.Grants{{Role: auth.RoleAdmin, Namespace: "*"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(ctx, "reader", "reader-password", auth.Grants{{Role: auth.RolePull, Namespace: "quarantine"}}); err != nil {
		t.Fatal(err)
	}
	authz := func(r *http.Request, role, repo string) error {
		p, _ := auth.PrincipalFrom(r.Context())
		ns, _, _ := strings.Cut(repo, "/")
		if !p.Allows(auth.Role(role), ns) {
			return fmt.Errorf("%s may not %s %s", p.Name, role, repo)
		}
		return nil
	}
	ao := api.Options{Gate: fakeGate{}, Scans: fakeScans{}, Audit: fakeAudit{}, Authorize: authz,
		Actor: func(r *http.Request) string { return auth.UserFrom(r.Context()) }}
	for _, o := range opts {
		o(&ao)
	}
	apiH := api.Handler(ao)
	th, err := auth.NewMemoryThrottle(auth.ThrottleLimit{Failures: 3, Per: time.Hour}, auth.ThrottleLimit{Failures: 100, Per: time.Second}, ck.Now)
	if err != nil {
		t.Fatal(err)
	}
	authn := &auth.Authenticator{Store: st, Throttle: th}
	ui, err := New(Options{Auth: authn, API: apiH})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	return &harness{srv: srv, store: st, clock: ck, authn: authn}
}

// client is a browser without JavaScript: it keeps cookies by hand (the
// test checks their attributes) and follows no redirect.
type client struct {
	t       *testing.T
	h       *harness
	cookies map[string]*http.Cookie
}

func (h *harness) client(t *testing.T) *client {
	return &client{t: t, h: h, cookies: map[string]*http.Cookie{}}
}

func (c *client) do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.h.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

func (c *client) login(user, pass string) *http.Response {
	c.t.Helper()
	_, body := c.do("GET", "/ui/login", nil)
	resp, _ := c.do("POST", "/ui/login", url.Values{"csrf": {csrfOf(c.t, body)}, "user": {user}, "password": {pass}, "next": {"/ui/images"}})
	return resp
}

func TestLoginSessionAndCSRF(t *testing.T) {
	h := newHarness(t)
	c := h.client(t)
	// Without a session, a page sends the browser to sign in and back.
	resp, _ := c.do("GET", "/ui/images?verdict=fail", nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/login?next="+url.QueryEscape("/ui/images?verdict=fail") {
		t.Fatalf("no session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := c.login("root", "wrong-password"); resp.StatusCode != 401 {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	// The sign-in form's own token: a forged form from elsewhere fails.
	forged := h.client(t)
	if resp, _ := forged.do("POST", "/ui/login", url.Values{"csrf": {"x"}, "user": {"root"}, "password": {"root-password"}}); resp.StatusCode != 403 {
		t.Errorf("sign-in without the form's token: %d", resp.StatusCode)
	}
	resp = c.login("root", "root-password")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/images" {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := c.cookies[sessionCookie]
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/ui/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure over plain HTTP", sc)
	}
	// Over HTTPS (a proxy says so), the cookie is Secure.
	req := httptest.NewRequest("POST", "/ui/login", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	rec := httptest.NewRecorder()
	setCookie(rec, req, sessionCookie, "v", time.Time{})
	if !strings.Contains(rec.Header().Get("Set-Cookie"), "Secure") {
		t.Errorf("cookie over HTTPS: %s", rec.Header().Get("Set-Cookie"))
	}

	resp, body := c.do("GET", "/ui/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="images-total">2<`) || !strings.Contains(body, `id="count-fail">1<`) {
		t.Fatalf("dashboard %d:\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `id="fixable-HIGH">1<`) || !strings.Contains(body, `id="fixable-LOW">0<`) {
		t.Errorf("fixable counts wrong:\n%s", body)
	}
	if !strings.Contains(body, "Over the 1 scanned images of 2.") {
		t.Errorf("the fixable totals do not say which images they cover:\n%s", body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	token := csrfOf(t, body)

	// Every state-changing form needs the session's CSRF token.
	form := url.Values{"scope": {"digest"}, "digest": {digestA}, "cve": {"CVE-2024-0001"}, "reason": {"r"}, "back": {"/ui/"}}
	for _, tok := range []string{"", "wrong", csrfOf(t, mustLoginPage(t, h))} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("csrf", tok)
		if resp, _ := c.do("POST", "/ui/exceptions", f); resp.StatusCode != 403 {
			t.Errorf("exception form with CSRF token %q: %d, want 403", tok, resp.StatusCode)
		}
		if resp, _ := c.do("POST", "/ui/logout", url.Values{"csrf": {tok}}); resp.StatusCode != 403 {
			t.Errorf("logout with CSRF token %q: %d, want 403", tok, resp.StatusCode)
		}
	}
	// Logout ends the session on the server: the old cookie opens nothing.
	old := *c.cookies[sessionCookie]
	if resp, _ := c.do("POST", "/ui/logout", url.Values{"csrf": {token}}); resp.StatusCode != 303 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if _, ok := c.cookies[sessionCookie]; ok {
		t.Error("logout left the cookie")
	}
	c.cookies[sessionCookie] = &old
	if resp, _ := c.do("GET", "/ui/", nil); resp.StatusCode != 303 {
		t.Errorf("the ended session still opens pages: %d", resp.StatusCode)
	}

	// Sessions expire.
	c2 := h.client(t)
	c2.login("reader", "reader-password")
	if resp, _ := c2.do("GET", "/ui/images", nil); resp.StatusCode != 200 {
		t.Fatalf("reader: %d", resp.StatusCode)
	}
	h.clock.Add(DefaultSessionTTL)
	if resp, _ := c2.do("GET", "/ui/images", nil); resp.StatusCode != 303 {
		t.Errorf("after the session's lifetime: %d, want a redirect to sign in", resp.StatusCode)
	}
}

func mustLoginPage(t *testing.T, h *harness) string {
	_, body := h.client(t).do("GET", "/ui/login", nil)
	return body
}

func TestPagesEscapeAndAuthorize(t *testing.T) {
	h := newHarness(t)
	root := h.client(t)
	root.login("root", "root-password")
	resp, body := root.do("GET", "/ui/image?digest="+digestA+"&repository=quarantine/app", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("image page %d:\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the finding's title is not escaped:\n%s", body)
	}
	if strings.Contains(body, "<b>1 finding</b>") {
		t.Error("a verdict reason is not escaped")
	}
	if !strings.Contains(body, `value="global"`) {
		t.Error("an admin is not offered a global exception")
	}
	// Filters live in the query string.
	_, body = root.do("GET", "/ui/image?digest="+digestA+"&fixable=false", nil)
	if !strings.Contains(body, "CVE-2024-0002") || strings.Contains(body, "CVE-2024-0001</td>") || !strings.Contains(body, `<span id="shown">1</span> of 2`) {
		t.Errorf("fixable=false filter:\n%s", body)
	}
	if resp, body := root.do("GET", "/ui/image?digest="+digestA+"&severity=HUGE", nil); resp.StatusCode != 400 || !strings.Contains(body, "severity:") {
		t.Errorf("bad filter: %d", resp.StatusCode)
	}
	resp, body = root.do("GET", "/ui/audit", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "&lt;i&gt;mallory&lt;/i&gt;") {
		t.Errorf("audit log as admin: %d\n%s", resp.StatusCode, body)
	}
	// The filter offers every action the log records, the chosen one selected.
	resp, body = root.do("GET", "/ui/audit?action=user_change", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<option selected>user_change</option>") || !strings.Contains(body, "<option>token_change</option>") || !strings.Contains(body, "<option>delete</option>") {
		t.Errorf("audit filter by user_change: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := root.do("GET", "/ui/images?verdict=pass", nil); resp.StatusCode != 200 ||
		!strings.Contains(body, `id="images-count">1 images`) || !strings.Contains(body, "<td>quarantine/other</td>") || strings.Contains(body, "<td>quarantine/app</td>") {
		t.Errorf("images filter verdict=pass, want quarantine/other alone: %d\n%s", resp.StatusCode, body)
	}

	// A reader: no audit log (admin), no global exception form, and the
	// API refuses what the UI would send.
	reader := h.client(t)
	reader.login("reader", "reader-password")
	resp, body = reader.do("GET", "/ui/audit", nil)
	if resp.StatusCode != 403 || strings.Contains(body, `href="/ui/audit"`) {
		t.Errorf("audit log as a reader: %d", resp.StatusCode)
	}
	resp, body = reader.do("GET", "/ui/image?digest="+digestA, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `value="repository"`) {
		t.Fatalf("image page as a reader, want its exception form: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, `value="global"`) {
		t.Error("a reader is offered a global exception")
	}
	if resp, _ := reader.do("GET", "/ui/image?digest=sha256:"+strings.Repeat("c", 64), nil); resp.StatusCode != 404 {
		t.Errorf("unknown digest: %d", resp.StatusCode)
	}
	// A hostile "next" never leaves the UI.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/ui/\r\nX: y"} {
		if got := safeNext(next); got != Prefix {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
}

// TestLoginThrottledAndAudited: the sign-in form is throttled and
// reported as every login is, and takes no API token.
func TestLoginThrottledAndAudited(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var refused []string
	h.authn.OnFailure = func(_ *http.Request, name, reason string) {
		mu.Lock()
		refused = append(refused, name)
		mu.Unlock()
	}
	c := h.client(t)
	if resp := c.login("reader", auth.TokenPrefix+"abc"); resp.StatusCode != 401 {
		t.Errorf("an API token as password: %d", resp.StatusCode)
	}
	for i := 0; i < 3; i++ {
		if resp := c.login("reader", "wrong-password"); resp.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d", i+1, resp.StatusCode)
		}
	}
	resp := c.login("reader", "reader-password")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the right password past the limit: %d, Retry-After %q; want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if _, ok := c.cookies[sessionCookie]; ok {
		t.Error("a throttled sign-in opened a session")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 3 {
		t.Errorf("refused sign-ins reported: %v, want the 3 wrong passwords", refused)
	}
}
