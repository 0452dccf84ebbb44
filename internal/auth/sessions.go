package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Web UI sessions. A session is a random secret held in the browser's
// cookie; the store keeps only its SHA-256 (a copy of the database opens
// no session), the user it signs in, its CSRF token and when it expires.
// Every request reads the user's current grants and state: disabling or
// deleting a user ends their sessions at once, and a changed grant takes
// effect on the next page.

// ErrNoSession is wrapped by SessionPrincipal when a session secret does
// not open a session: unknown, ended, expired, or its user is gone or
// disabled.
var ErrNoSession = errors.New("no such session")

// ErrTokenSignIn is Authenticator.Login's answer to an API token given as
// a password: tokens do not open web UI sessions.
var ErrTokenSignIn = errors.New("API tokens do not sign in to the web UI: use your user name and password")

// sessionsDDL is the sessions table; times are Unix milliseconds, so that
// "expired before" is a comparison on both engines.
const sessionsDDL = `
CREATE TABLE IF NOT EXISTS sessions (
	id_hash    TEXT PRIMARY KEY,
	user_name  TEXT NOT NULL,
	csrf       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at);`

// SessionRecord is a stored session.
type SessionRecord struct {
	// IDHash is the hex SHA-256 of the session secret.
	IDHash    string
	User      string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionBackend persists sessions; the SQL backend implements it, and
// internal/auth/authtest.RunSessions is its conformance suite.
type SessionBackend interface {
	// InsertSession stores a new session; ErrExists when its IDHash is
	// taken.
	InsertSession(ctx context.Context, s SessionRecord) error
	// Session returns a session by IDHash (ErrNotFound when there is
	// none), expired or not: the Store decides.
	Session(ctx context.Context, idHash string) (*SessionRecord, error)
	// DeleteSession deletes a session; deleting a missing one is no
	// error.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteSessionsExpiredBy deletes every session whose ExpiresAt is at
	// or before t and returns how many it deleted.
	DeleteSessionsExpiredBy(ctx context.Context, t time.Time) (int64, error)
}

// Session is a signed-in browser session.
type Session struct {
	// Secret is the cookie value; only NewSession returns it.
	Secret string
	User   string
	// CSRF is the token every state-changing form of the session carries.
	CSRF      string
	ExpiresAt time.Time
}

// CheckCSRF reports whether token is the session's CSRF token, in
// constant time.
func (s *Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

func sessionHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func (s *Store) sessions() (SessionBackend, error) {
	sb, ok := s.b.(SessionBackend)
	if !ok {
		return nil, errors.New("the auth store's backend keeps no sessions")
	}
	return sb, nil
}

// NewSession opens a session of ttl for a store user that exists and is
// enabled, deleting the sessions that have expired meanwhile.
func (s *Store) NewSession(ctx context.Context, user string, ttl time.Duration) (*Session, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("session of %q: lifetime %s, want more than 0", user, ttl)
	}
	sb, err := s.sessions()
	if err != nil {
		return nil, err
	}
	u, err := s.b.User(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("session of %q: %w", user, err)
	}
	if u.Disabled {
		return nil, fmt.Errorf("session of %q: %w", user, ErrUserDisabled)
	}
	secret, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	csrf, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if _, err := sb.DeleteSessionsExpiredBy(ctx, now); err != nil {
		return nil, fmt.Errorf("session of %q: %w", user, err)
	}
	sess := &Session{Secret: base64.RawURLEncoding.EncodeToString(secret), User: user,
		CSRF: base64.RawURLEncoding.EncodeToString(csrf), ExpiresAt: now.Add(ttl)}
	rec := SessionRecord{IDHash: sessionHash(sess.Secret), User: user, CSRF: sess.CSRF, CreatedAt: now, ExpiresAt: sess.ExpiresAt}
	if err := sb.InsertSession(ctx, rec); err != nil {
		return nil, fmt.Errorf("session of %q: %w", user, err)
	}
	return sess, nil
}

// maxSessionSecret bounds a cookie value worth looking up.
const maxSessionSecret = 128

// SessionPrincipal opens the session of a cookie's secret: the session
// (without its secret) and its user as a principal with current grants.
// The error wraps ErrNoSession when the secret opens none.
func (s *Store) SessionPrincipal(ctx context.Context, secret string) (*Session, Principal, error) {
	if secret == "" || len(secret) > maxSessionSecret || strings.ContainsAny(secret, " ;,") {
		return nil, Principal{}, ErrNoSession
	}
	sb, err := s.sessions()
	if err != nil {
		return nil, Principal{}, err
	}
	rec, err := sb.Session(ctx, sessionHash(secret))
	if errors.Is(err, ErrNotFound) {
		return nil, Principal{}, ErrNoSession
	}
	if err != nil {
		return nil, Principal{}, err
	}
	if !s.now().Before(rec.ExpiresAt) {
		return nil, Principal{}, fmt.Errorf("%w: expired at %s", ErrNoSession, rec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	u, err := s.b.User(ctx, rec.User)
	if errors.Is(err, ErrNotFound) {
		return nil, Principal{}, fmt.Errorf("%w: user %q is gone", ErrNoSession, rec.User)
	}
	if err != nil {
		return nil, Principal{}, err
	}
	if u.Disabled {
		return nil, Principal{}, fmt.Errorf("%w: user %q is disabled", ErrNoSession, rec.User)
	}
	// DeleteUser leaves the user's sessions behind: one older than the
	// user was opened by an earlier user of that name, deleted since, and
	// must not sign in the new one (session times are milliseconds).
	if rec.CreatedAt.Before(u.CreatedAt.Truncate(time.Millisecond)) {
		return nil, Principal{}, fmt.Errorf("%w: user %q was deleted and created again since it signed in", ErrNoSession, rec.User)
	}
	return &Session{User: rec.User, CSRF: rec.CSRF, ExpiresAt: rec.ExpiresAt},
		Principal{Name: u.Name, Kind: KindUser, Grants: u.Grants}, nil
}

// EndSession ends the session of a secret (logout); ending an unknown
// session is no error.
func (s *Store) EndSession(ctx context.Context, secret string) error {
	if secret == "" || len(secret) > maxSessionSecret {
		return nil
	}
	sb, err := s.sessions()
	if err != nil {
		return err
	}
	return sb.DeleteSession(ctx, sessionHash(secret))
}

// Login checks a user name and password from a sign-in form under the
// throttle, as Basic credentials are checked, and tells OnFailure or
// OnThrottled (the audit log) about a refusal. Only users of the store
// sign in this way: an API token or an htpasswd user is refused with a
// message saying so.
func (a *Authenticator) Login(r *http.Request, user, pass string) (Principal, error) {
	if strings.HasPrefix(pass, TokenPrefix) {
		return Principal{}, ErrTokenSignIn
	}
	p, err := a.login(r, user, pass)
	if err == nil && p.Kind != KindUser {
		err = fmt.Errorf("%w: %q is not a user of drydock's store (htpasswd users use the registry and the API only)", ErrBadCredentials, user)
	}
	if err != nil {
		var th *ThrottledError
		switch {
		case errors.As(err, &th):
			if a.OnThrottled != nil {
				a.OnThrottled(r, user, &th.Wait)
			}
		case isAuthFailure(err) && a.OnFailure != nil:
			a.OnFailure(r, user, failureMessage(r, err))
		}
		return Principal{}, err
	}
	return p, nil
}
