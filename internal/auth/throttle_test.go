package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The limits testThrottle's steps assume.
var (
	stepsUserLimit = ThrottleLimit{Failures: 3, Per: 30 * time.Second}
	stepsAddrLimit = ThrottleLimit{Failures: 5, Per: 10 * time.Second}
)

func TestMemoryThrottle(t *testing.T) {
	clock := newFakeClock()
	th, err := NewMemoryThrottle(stepsUserLimit, stepsAddrLimit, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	testThrottle(t, th, clock)
	if _, err := NewMemoryThrottle(ThrottleLimit{}, DefaultAddressLimit, nil); err == nil {
		t.Error("a zero limit accepted")
	}
}

// testThrottle runs a Throttle with stepsUserLimit and stepsAddrLimit,
// whose clock is clock, through failures, waits and successes.
func testThrottle(t *testing.T, th Throttle, clock *fakeClock) {
	t.Helper()
	ctx := context.Background()
	alice, addr := UserKey("alice"), AddressKey("192.0.2.1")
	type step struct {
		advance time.Duration
		op      string // attempt, ok
		keys    []string
		wait    time.Duration // 0: allowed
		key     string        // the key that waits
	}
	steps := []step{
		{op: "attempt", keys: []string{addr, alice}},
		{op: "attempt", keys: []string{addr, alice}},
		{op: "attempt", keys: []string{addr, alice}},
		// The user's three are spent: 10 s for the next (30 s / 3).
		{op: "attempt", keys: []string{addr, alice}, wait: 10 * time.Second, key: alice},
		// Waiting reserved nothing: the address still has two.
		{op: "attempt", keys: []string{addr}},
		{op: "attempt", keys: []string{addr}},
		{op: "attempt", keys: []string{addr}, wait: 2 * time.Second, key: addr},
		// Part of the wait: the rest is what is left.
		{advance: 4 * time.Second, op: "attempt", keys: []string{addr, alice}, wait: 6 * time.Second, key: alice},
		{advance: 6 * time.Second, op: "attempt", keys: []string{addr, alice}},
		{op: "attempt", keys: []string{UserKey("bob")}},
		// A success: alice starts afresh, the address gets one back.
		{op: "ok", keys: []string{addr, alice}},
		{op: "attempt", keys: []string{addr, alice}},
		{op: "attempt", keys: []string{alice}},
		{op: "attempt", keys: []string{alice}},
		{op: "attempt", keys: []string{alice}, wait: 10 * time.Second, key: alice},
		// Long after, everything is full again (and forgotten).
		{advance: time.Hour, op: "attempt", keys: []string{addr, alice}},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		switch s.op {
		case "ok":
			if err := th.Succeeded(ctx, s.keys...); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := th.Attempt(ctx, s.keys...)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case s.wait == 0 && w != nil:
			t.Errorf("step %d: Attempt(%v) waits %+v; want allowed", i, s.keys, *w)
		case s.wait != 0 && (w == nil || w.RetryAfter != s.wait || w.Key != s.key):
			t.Errorf("step %d: Attempt(%v) = %+v; want a wait of %s on %s", i, s.keys, w, s.wait, s.key)
		}
	}
}

func TestMemoryThrottleBounded(t *testing.T) {
	clock := newFakeClock()
	th, _ := NewMemoryThrottle(DefaultUserLimit, DefaultAddressLimit, clock.Now)
	th.max = 100
	for i := range 1000 {
		if w, _ := th.Attempt(context.Background(), UserKey(strconv.Itoa(i))); w != nil {
			t.Fatalf("user %d waits", i)
		}
	}
	if n := len(th.buckets); n > 100 {
		t.Errorf("%d keys held; bound 100", n)
	}
}

func TestThrottledErrorText(t *testing.T) {
	for _, tt := range []struct {
		w    Wait
		want string
	}{
		{Wait{Key: UserKey("alice"), RetryAfter: 5500 * time.Millisecond}, `too many failed logins for user "alice": retry in 6s`},
		{Wait{Key: AddressKey("192.0.2.1"), RetryAfter: time.Millisecond}, `too many failed logins from this address: retry in 1s`},
	} {
		if got := (&ThrottledError{Wait: tt.w}).Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestClientAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":                 "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":     "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":          "192.0.2.7",
		"not an address":                 "not an address",
		"[fe80::1%eth0]:22":              "fe80::/64",
		"203.0.113.9":                    "203.0.113.9",
		"[2001:db8:ffff:ffff::1]:1":      "2001:db8:ffff:ffff::/64",
		"[2001:db8:ffff:fffe::1234]:999": "2001:db8:ffff:fffe::/64",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = in
		if got := ClientAddress(r); got != want {
			t.Errorf("ClientAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// throttled is a fixture whose logins are throttled at 10 wrong passwords
// a minute per user and 30 per address, the defaults.
func throttled(t *testing.T) (*fixture, *[]string) {
	f := newFixture(t)
	th, err := NewMemoryThrottle(DefaultUserLimit, DefaultAddressLimit, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	var throttledNames []string
	f.a.Throttle = th
	f.a.OnThrottled = func(_ *http.Request, name string, w *Wait) {
		f.mu.Lock()
		throttledNames = append(throttledNames, name+" "+w.Key)
		f.mu.Unlock()
	}
	return f, &throttledNames
}

// TestLoginThrottle: 60 wrong passwords in a row meet 429s with
// Retry-After after the tenth; the password is not even checked then;
// the right password is refused too until the wait is over, then works.
func TestLoginThrottle(t *testing.T) {
	f, throttledNames := throttled(t)
	var codes []int
	for range 60 {
		r := f.doFull(t, http.MethodGet, "/v2/quarantine/x/tags/list", basic("alice", "guess"))
		codes = append(codes, r.status)
		if r.status == http.StatusTooManyRequests {
			if r.retryAfter != "6" || r.message != `too many failed logins for user "alice": retry in 6s` || r.challenge != "" {
				t.Fatalf("429: %+v", r)
			}
		}
	}
	for i, c := range codes {
		if want := map[bool]int{true: 401, false: 429}[i < 10]; c != want {
			t.Fatalf("attempt %d: %d; want %d (codes %v)", i+1, c, want, codes)
		}
	}
	if n := len(f.takeFailures()); n != 10 {
		t.Errorf("%d failures told to OnFailure; want 10 (the throttled ones go to OnThrottled)", n)
	}
	if n := len(*throttledNames); n != 50 || (*throttledNames)[0] != "alice user:alice" {
		t.Errorf("OnThrottled heard %d: %v", n, *throttledNames)
	}
	// The right password waits too: a guesser cannot tell.
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/tags/list", basic("alice", "alice-password")); r.status != 429 {
		t.Fatalf("right password while throttled: %+v", r)
	}
	// Other users and alice's API tokens are not locked out.
	if r := f.do(t, http.MethodGet, "/v2/live/x/tags/list", basic("bob", "bob-password")); r.status != 200 {
		t.Fatalf("bob: %+v", r)
	}
	tok := f.token(t, TokenSpec{Name: "ci", Owner: "alice", Grants: mustGrants(t, "pull:quarantine")})
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/tags/list", basic("alice", tok)); r.status != 200 {
		t.Fatalf("alice's token as the password: %+v", r)
	}
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/tags/list", bearer(tok)); r.status != 200 {
		t.Fatalf("alice's token: %+v", r)
	}
	// After the wait, the right password works, and starts alice afresh.
	f.clock.Advance(6 * time.Second)
	if r := f.do(t, http.MethodGet, "/v2/quarantine/x/tags/list", basic("alice", "alice-password")); r.status != 200 {
		t.Fatalf("right password after the wait: %+v", r)
	}
	for i := range 10 {
		if r := f.do(t, http.MethodGet, "/v2/quarantine/x/tags/list", basic("alice", "typo")); r.status != 401 {
			t.Fatalf("typo %d after a good login: %+v", i, r)
		}
	}
}

// TestLoginThrottleTokenEndpoint: /auth/token, GET and POST, is throttled
// by the same counts, and per client address across user names.
func TestLoginThrottleTokenEndpoint(t *testing.T) {
	f, _ := throttled(t)
	post := func(user, pass string) fullResponse {
		form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/auth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return sendFull(t, req)
	}
	for i := range 5 {
		if r := f.doFull(t, http.MethodGet, "/auth/token", basic("alice", "guess")); r.status != 401 {
			t.Fatalf("GET %d: %+v", i, r)
		}
		if r := post("alice", "guess"); r.status != 401 {
			t.Fatalf("POST %d: %+v", i, r)
		}
	}
	if r := post("alice", "alice-password"); r.status != 429 || r.retryAfter == "" {
		t.Fatalf("POST after 10 failures: %+v", r)
	}
	if r := f.doFull(t, http.MethodGet, "/auth/token", basic("alice", "guess")); r.status != 429 {
		t.Fatalf("GET after 10 failures: %+v", r)
	}
	// Spraying user names from one address: 30 wrong passwords in all
	// (10 spent on alice), then the address waits.
	for i := range 20 {
		if r := post(fmt.Sprintf("user%d", i), "guess"); r.status != 401 {
			t.Fatalf("spray %d: %+v", i, r)
		}
	}
	if r := post("user99", "guess"); r.status != 429 || r.message != "too many failed logins from this address: retry in 2s" {
		t.Fatalf("spray past the address limit: %+v", r)
	}
}

// TestLoginThrottleParallel: a burst of parallel guesses cannot all pass
// the throttle before the first one fails: at most the limit reach the
// password check.
func TestLoginThrottleParallel(t *testing.T) {
	f, _ := throttled(t)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			f.do(t, http.MethodGet, "/v2/quarantine/x/tags/list", basic("alice", "guess"))
		})
	}
	wg.Wait()
	if n := len(f.takeFailures()); n != 10 {
		t.Errorf("%d parallel guesses checked; want 10", n)
	}
}

// fullResponse adds Retry-After to response.
type fullResponse struct {
	response
	retryAfter string
}

func (f *fixture) doFull(t *testing.T, method, path string, header map[string]string) fullResponse {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return sendFull(t, req)
}

func sendFull(t *testing.T, req *http.Request) fullResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := fullResponse{response: response{status: resp.StatusCode, body: string(b), challenge: resp.Header.Get("WWW-Authenticate")},
		retryAfter: resp.Header.Get("Retry-After")}
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil && len(e.Errors) == 1 {
		r.message = e.Errors[0].Message
		if resp.StatusCode == http.StatusTooManyRequests && e.Errors[0].Code != "TOOMANYREQUESTS" {
			t.Errorf("429 with code %q", e.Errors[0].Code)
		}
	}
	return r
}

func FuzzClientAddress(f *testing.F) {
	for _, s := range []string{"192.0.2.1:5000", "[2001:db8::1]:1", "[::ffff:1.2.3.4]:0", "x", "", "[::1%lo]:9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, remote string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		a := ClientAddress(r)
		if AddressKey(a) == UserKey(a) {
			t.Fatal("address and user keys collide")
		}
	})
}
