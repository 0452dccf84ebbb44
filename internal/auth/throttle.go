package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Throttle limits failed logins by key: a user name (UserKey) and a client
// address (AddressKey). Before a password is checked, Attempt reserves one
// attempt of each key, or says how long the caller must wait; a login that
// succeeds gives its attempts back (Succeeded). So a guesser meets 429s
// after a handful of wrong passwords, and a burst of parallel guesses
// cannot all pass before the first one fails.
//
// MemoryThrottle keeps the counts in the process, for one server; SQLThrottle
// keeps them in the database, so that replicas behind one load balancer
// share them (the server chooses it when database.driver is postgres).
type Throttle interface {
	// Attempt reserves one attempt of every key, or, when one of them
	// has failed too often, reserves nothing and returns the wait.
	Attempt(ctx context.Context, keys ...string) (*Wait, error)
	// Succeeded gives back the attempts of keys: a user key starts
	// afresh, an address key gets its one attempt back.
	Succeeded(ctx context.Context, keys ...string) error
}

// Wait says a login attempt must wait: Key failed too often.
type Wait struct {
	Key        string
	RetryAfter time.Duration
}

// UserKey is the throttle key of a user name.
func UserKey(name string) string { return "user:" + name }

// AddressKey is the throttle key of a client address.
func AddressKey(addr string) string { return "addr:" + addr }

// ClientAddress is the address a request comes from, as a throttle counts
// it: the IP of RemoteAddr, and for IPv6 its /64 (one host usually holds
// a whole /64). Behind a reverse proxy, RemoteAddr is the proxy's.
func ClientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// ThrottleLimit allows Failures failed attempts at once, after which one
// more attempt is allowed every Per/Failures (a token bucket).
type ThrottleLimit struct {
	Failures int
	Per      time.Duration
}

func (l ThrottleLimit) validate(what string) error {
	if l.Failures < 1 || l.Per <= 0 {
		return fmt.Errorf("%s: %d failures per %s: want at least 1 failure per a positive duration", what, l.Failures, l.Per)
	}
	return nil
}

// Default throttle limits: ten wrong passwords of one user name, thirty
// from one address, then one attempt every six (two) seconds.
var (
	DefaultUserLimit    = ThrottleLimit{Failures: 10, Per: time.Minute}
	DefaultAddressLimit = ThrottleLimit{Failures: 30, Per: time.Minute}
)

// maxThrottleKeys bounds the keys a MemoryThrottle tracks: user names are
// the client's choice.
const maxThrottleKeys = 100_000

// MemoryThrottle is a Throttle in this process's memory (see Throttle).
type MemoryThrottle struct {
	user, addr ThrottleLimit
	now        func() time.Time
	max        int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64 // attempts left
	at     time.Time
}

// NewMemoryThrottle returns a throttle with the limits of user keys and
// address keys (any other key counts as an address); now is the clock
// (time.Now when nil).
func NewMemoryThrottle(user, addr ThrottleLimit, now func() time.Time) (*MemoryThrottle, error) {
	if err := errors.Join(user.validate("user limit"), addr.validate("address limit")); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryThrottle{user: user, addr: addr, now: now, max: maxThrottleKeys, buckets: map[string]*bucket{}}, nil
}

func (t *MemoryThrottle) limit(key string) ThrottleLimit { return throttleLimit(t.user, t.addr, key) }

// refill brings b up to now; full reports whether it holds every attempt.
func (t *MemoryThrottle) refill(key string, b *bucket, now time.Time) (full bool) {
	b.tokens, full = t.limit(key).refill(b.tokens, b.at, now)
	b.at = now
	return full
}

// refill is the bucket of tokens attempts left at time at, brought up to
// now; full reports whether it holds every attempt again.
func (l ThrottleLimit) refill(tokens float64, at, now time.Time) (_ float64, full bool) {
	if d := now.Sub(at); d > 0 {
		tokens += d.Seconds() * float64(l.Failures) / l.Per.Seconds()
	}
	if tokens >= float64(l.Failures) {
		return float64(l.Failures), true
	}
	return tokens, false
}

// wait is how long a bucket of tokens attempts left must wait for one.
func (l ThrottleLimit) wait(tokens float64) time.Duration {
	return time.Duration(math.Ceil((1 - tokens) * l.Per.Seconds() / float64(l.Failures) * float64(time.Second)))
}

// throttleLimit is the limit of key: user keys have theirs, any other key
// counts as an address.
func throttleLimit(user, addr ThrottleLimit, key string) ThrottleLimit {
	if strings.HasPrefix(key, "user:") {
		return user
	}
	return addr
}

// Attempt implements Throttle.
func (t *MemoryThrottle) Attempt(_ context.Context, keys ...string) (*Wait, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait *Wait
	for _, k := range keys {
		b := t.buckets[k]
		if b == nil {
			continue // never failed: full
		}
		t.refill(k, b, now)
		if b.tokens < 1 {
			d := t.limit(k).wait(b.tokens)
			if wait == nil || d > wait.RetryAfter {
				wait = &Wait{Key: k, RetryAfter: d}
			}
		}
	}
	if wait != nil {
		return wait, nil
	}
	for _, k := range keys {
		b := t.buckets[k]
		if b == nil {
			t.makeRoom(now)
			b = &bucket{tokens: float64(t.limit(k).Failures), at: now}
			t.buckets[k] = b
		}
		b.tokens--
	}
	return nil, nil
}

// Succeeded implements Throttle.
func (t *MemoryThrottle) Succeeded(_ context.Context, keys ...string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		b := t.buckets[k]
		if b == nil {
			continue
		}
		if strings.HasPrefix(k, "user:") {
			delete(t.buckets, k)
			continue
		}
		b.tokens++
		if t.refill(k, b, now) {
			delete(t.buckets, k)
		}
	}
	return nil
}

// makeRoom keeps the map under its bound: keys whose buckets have filled
// up again carry nothing and go first; then arbitrary ones.
func (t *MemoryThrottle) makeRoom(now time.Time) {
	if len(t.buckets) < t.max {
		return
	}
	for k, b := range t.buckets {
		if t.refill(k, b, now) {
			delete(t.buckets, k)
		}
	}
	for k := range t.buckets {
		if len(t.buckets) < t.max*9/10 {
			break
		}
		delete(t.buckets, k)
	}
}

// ThrottledError is the refusal of a login attempt whose user name or
// client address failed too often: HTTP 429 with Retry-After.
type ThrottledError struct {
	Wait
}

func (e *ThrottledError) Error() string {
	who := "from this address"
	if name, ok := strings.CutPrefix(e.Key, "user:"); ok {
		who = fmt.Sprintf("for user %q", name)
	}
	return fmt.Sprintf("too many failed logins %s: retry in %s", who, retryAfterSeconds(e.RetryAfter)+"s")
}

// retryAfterSeconds is a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}
