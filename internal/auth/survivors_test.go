package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Tests written for mutants of roles.go, throttle.go and middleware.go
// that survived the fourth pass of `make mutate` (SURVIVORS.md).

// TestGrantsValidate: one bad grant among good ones fails the list.
func TestGrantsValidate(t *testing.T) {
	good := Grant{Role: RolePull, Namespace: AllNamespaces}
	if err := (Grants{good}).Validate(); err != nil {
		t.Errorf("good grants: %v", err)
	}
	if err := (Grants{good, {Role: "steal", Namespace: "live"}}).Validate(); err == nil || !strings.Contains(err.Error(), "unknown role") {
		t.Errorf("a bad grant: %v, want unknown role", err)
	}
}

// TestThrottleLimitBounds: one failure per any positive duration is the
// smallest limit; zero failures or a zero duration are refused.
func TestThrottleLimitBounds(t *testing.T) {
	for _, tc := range []struct {
		l  ThrottleLimit
		ok bool
	}{
		{ThrottleLimit{1, time.Nanosecond}, true},
		{ThrottleLimit{0, time.Hour}, false},
		{ThrottleLimit{1, 0}, false},
		{ThrottleLimit{1, -time.Second}, false},
	} {
		if err := tc.l.validate("limit"); (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok=%v", tc.l, err, tc.ok)
		}
	}
}

// TestThrottleLongestWait: when both the user and the address must wait,
// the answer is the longer wait, whichever key comes first.
func TestThrottleLongestWait(t *testing.T) {
	clock := newFakeClock()
	th, err := NewMemoryThrottle(ThrottleLimit{1, time.Hour}, ThrottleLimit{1, time.Minute}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	user, addr := UserKey("alice"), AddressKey("192.0.2.1")
	if w, err := th.Attempt(ctx, addr, user); w != nil || err != nil {
		t.Fatalf("first attempt: %+v, %v", w, err)
	}
	for _, keys := range [][]string{{addr, user}, {user, addr}} {
		w, err := th.Attempt(ctx, keys...)
		if err != nil || w == nil || w.Key != user || w.RetryAfter != time.Hour {
			t.Errorf("keys %v: %+v, %v; want the user's hour", keys, w, err)
		}
	}
}

// TestThrottleSuccessGivesTheAttemptBack: a good login from an address
// returns the attempt it reserved, so the address's next attempt passes.
func TestThrottleSuccessGivesTheAttemptBack(t *testing.T) {
	clock := newFakeClock()
	th, err := NewMemoryThrottle(ThrottleLimit{1, time.Hour}, ThrottleLimit{1, time.Hour}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	addr := AddressKey("192.0.2.1")
	for i := range 3 {
		if w, err := th.Attempt(ctx, addr); w != nil || err != nil {
			t.Fatalf("attempt %d after good logins: %+v, %v", i+1, w, err)
		}
		if err := th.Succeeded(ctx, addr); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRetryAfterSeconds: whole seconds, rounded up, at least 1.
func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", 1500 * time.Millisecond: "2", time.Minute: "60"} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%s) = %s, want %s", d, got, want)
		}
	}
}

// failingRefund is a throttle whose Succeeded fails (its database is
// gone).
type failingRefund struct{}

func (failingRefund) Attempt(context.Context, ...string) (*Wait, error) { return nil, nil }
func (failingRefund) Succeeded(context.Context, ...string) error {
	return errors.New("database is gone")
}

// TestLoginRefundFailureIsAnError: a good password whose attempt cannot be
// given back is not a login: the throttle's error is returned.
func TestLoginRefundFailureIsAnError(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHtpasswd(strings.NewReader("alice:" + string(hash) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{Htpasswd: h, Throttle: failingRefund{}}
	_, err = a.login(httptest.NewRequest("GET", "/v2/", nil), "alice", "s3cret")
	if err == nil || !strings.Contains(err.Error(), "login throttle") {
		t.Errorf("login with a failing refund: %v, want the throttle's error", err)
	}
}
