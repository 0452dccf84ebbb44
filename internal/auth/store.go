package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/drydock-project/drydock/internal/database"
)

// Errors of the store. Authentication failures are ErrBadCredentials,
// ErrTokenRevoked, ErrUserDisabled (each possibly wrapped with details) or
// a *TokenExpiredError.
var (
	ErrExists         = errors.New("already exists")
	ErrNotFound       = errors.New("not found")
	ErrBadCredentials = errors.New("invalid username or password")
	ErrTokenRevoked   = errors.New("token revoked")
	ErrUserDisabled   = errors.New("user disabled")
)

// TokenExpiredError is the failure to authenticate with an expired token.
type TokenExpiredError struct {
	Name      string
	ExpiredAt time.Time
}

func (e *TokenExpiredError) Error() string {
	return fmt.Sprintf("token %q expired at %s", e.Name, e.ExpiredAt.UTC().Format(time.RFC3339))
}

// TokenPrefix starts every API token secret, so that a password field
// holding one is recognized as a token.
const TokenPrefix = "ddk_"

const (
	minPasswordLen = 8
	maxPasswordLen = 72 // bcrypt uses no more
	tokenIDBytes   = 6  // 12 hex characters
	tokenKeyBytes  = 32 // 43 base64url characters
	// lastUsedInterval is how stale a token's last_used_at may get: it is
	// written at most this often, not on every request.
	lastUsedInterval = time.Minute
	// maxVerified bounds the cache of verified passwords.
	maxVerified = 1024
)

// nameRE is the form of user and token names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)

func checkName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid %s name %q: want 1 to 64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", kind, name)
	}
	return nil
}

func checkPassword(pw string) error {
	switch {
	case len(pw) < minPasswordLen:
		return fmt.Errorf("password too short: %d bytes, need at least %d", len(pw), minPasswordLen)
	case len(pw) > maxPasswordLen:
		return fmt.Errorf("password too long: %d bytes, at most %d (bcrypt ignores the rest)", len(pw), maxPasswordLen)
	case strings.HasPrefix(pw, TokenPrefix):
		return fmt.Errorf("password must not start with %q: that marks API tokens", TokenPrefix)
	}
	return nil
}

// User is a user of the store (never with its password hash).
type User struct {
	Name      string    `json:"name"`
	Grants    Grants    `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Disabled  bool      `json:"disabled"`
}

// Token is an API or robot token (never with its secret).
type Token struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Owner is the user the token acts for, "" for a robot token.
	Owner     string    `json:"owner,omitempty"`
	Grants    Grants    `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// Status is "revoked", "expired" or "active".
func (t Token) Status(now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked"
	case t.Expired(now):
		return "expired"
	}
	return "active"
}

// TokenSpec describes a token to create.
type TokenSpec struct {
	Name string
	// Owner, when set, is the user the token acts for: its grants must be
	// within the owner's, and it stops working when the owner is disabled
	// or deleted. Empty makes a robot token.
	Owner  string
	Grants Grants
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time
}

// Store keeps users and tokens in a Backend that the server, the CLI and
// every replica share, and decides everything about them: name and
// password rules, bcrypt, grants, token expiry and owners.
type Store struct {
	b    Backend
	now  func() time.Time
	cost int

	dummyOnce sync.Once
	dummy     []byte

	mu sync.Mutex
	// verified holds SHA-256(user, password, stored hash) of recent
	// successful bcrypt checks.
	verified map[[32]byte]struct{}
	// touched is when this process last wrote each token's last_used_at.
	touched map[string]time.Time
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithClock sets where the store's time comes from (default time.Now).
func WithClock(now func() time.Time) StoreOption {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithBcryptCost sets the bcrypt cost of new password hashes (default
// bcrypt.DefaultCost; tests use bcrypt.MinCost).
func WithBcryptCost(cost int) StoreOption { return func(s *Store) { s.cost = cost } }

// NewStore returns the Store on b, storing a fresh signing key in it when
// it has none. Close closes b.
func NewStore(ctx context.Context, b Backend, opts ...StoreOption) (*Store, error) {
	s := &Store{b: b, now: time.Now, cost: bcrypt.DefaultCost,
		verified: map[[32]byte]struct{}{}, touched: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	if s.cost < bcrypt.MinCost || s.cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("open auth store: bcrypt cost %d outside %d..%d", s.cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if _, err := s.SigningKey(ctx); err != nil {
		return nil, fmt.Errorf("open auth store: %w", err)
	}
	return s, nil
}

// Open opens the Store in the "auth" database of o.
func Open(ctx context.Context, o *database.Opener, opts ...StoreOption) (*Store, error) {
	db, err := o.Open(ctx, Component)
	if err != nil {
		return nil, fmt.Errorf("open auth store: %w", err)
	}
	return newSQLStore(ctx, db, opts)
}

// OpenStore opens the Store in the SQLite file at path (DefaultPath of a
// data directory, for the embedded setup), creating it (mode 0600, in a
// 0700 directory) when missing.
func OpenStore(path string, opts ...StoreOption) (*Store, error) {
	ctx := context.Background()
	db, err := database.OpenFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open auth store %s: %w", path, err)
	}
	return newSQLStore(ctx, db, opts)
}

func newSQLStore(ctx context.Context, db *database.DB, opts []StoreOption) (*Store, error) {
	b, err := NewSQL(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s, err := NewStore(ctx, b, opts...)
	if err != nil {
		b.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the backend.
func (s *Store) Close() error { return s.b.Close() }

// SigningKey returns the HMAC key bearer tokens are signed with; every
// process sharing the store gets the same key.
func (s *Store) SigningKey(ctx context.Context) ([]byte, error) {
	candidate, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	key, err := s.b.SigningKey(ctx, candidate, s.now())
	if err != nil {
		return nil, fmt.Errorf("auth store: %w", err)
	}
	return key, nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random bytes: %w", err)
	}
	return b, nil
}

// AddUser adds a user; the error wraps ErrExists when the name is taken.
func (s *Store) AddUser(ctx context.Context, name, password string, g Grants) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if err := g.Validate(); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return fmt.Errorf("user %q: hash password: %w", name, err)
	}
	now := s.now()
	u := UserRecord{User: User{Name: name, Grants: g.normalize(), CreatedAt: now, UpdatedAt: now}, PasswordHash: string(hash)}
	return s.b.Update(ctx, func(tx Tx) error { return tx.InsertUser(ctx, u) })
}

// updateUser applies change to user name and stores it.
func (s *Store) updateUser(ctx context.Context, name string, change func(*UserRecord)) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	now := s.now()
	return s.b.Update(ctx, func(tx Tx) error {
		u, err := tx.User(ctx, name)
		if err != nil {
			return err
		}
		change(u)
		u.UpdatedAt = now
		return tx.UpdateUser(ctx, *u)
	})
}

// SetPassword changes a user's password.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return fmt.Errorf("user %q: hash password: %w", name, err)
	}
	return s.updateUser(ctx, name, func(u *UserRecord) { u.PasswordHash = string(hash) })
}

// SetGrants replaces a user's grants; it takes effect on the next request.
func (s *Store) SetGrants(ctx context.Context, name string, g Grants) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	return s.updateUser(ctx, name, func(u *UserRecord) { u.Grants = g.normalize() })
}

// DisableUser disables (or enables again) a user and the tokens it owns.
func (s *Store) DisableUser(ctx context.Context, name string, disabled bool) error {
	return s.updateUser(ctx, name, func(u *UserRecord) { u.Disabled = disabled })
}

// DeleteUser deletes a user and revokes the tokens it owns.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	now := s.now()
	return s.b.Update(ctx, func(tx Tx) error {
		if err := tx.DeleteUser(ctx, name); err != nil {
			return err
		}
		toks, err := tx.TokensOwnedBy(ctx, name)
		if err != nil {
			return fmt.Errorf("delete user %q: %w", name, err)
		}
		for _, t := range toks {
			if !t.RevokedAt.IsZero() {
				continue
			}
			t.RevokedAt = now
			if err := tx.UpdateToken(ctx, t); err != nil {
				return fmt.Errorf("delete user %q: revoke its tokens: %w", name, err)
			}
		}
		return nil
	})
}

// User returns one user; the error wraps ErrNotFound when there is none.
func (s *Store) User(ctx context.Context, name string) (*User, error) {
	u, err := s.b.User(ctx, name)
	if err != nil {
		return nil, err
	}
	return &u.User, nil
}

// Users returns every user, sorted by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	recs, err := s.b.Users(ctx)
	if err != nil {
		return nil, err
	}
	users := make([]User, len(recs))
	for i, r := range recs {
		users[i] = r.User
	}
	return users, nil
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) { return s.b.CountUsers(ctx) }

// Authenticate checks a user name and password, or, when the password is an
// API token (it starts with "ddk_"), the token whatever the user name.
func (s *Store) Authenticate(ctx context.Context, user, password string) (Principal, error) {
	if strings.HasPrefix(password, TokenPrefix) {
		return s.AuthenticateToken(ctx, password)
	}
	u, err := s.b.User(ctx, user)
	if errors.Is(err, ErrNotFound) {
		// Spend the time a known user costs, so that timing does not tell
		// which user names exist.
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate user %q: %w", user, err)
	}
	if !s.verifyPassword(user, password, u.PasswordHash) {
		return Principal{}, ErrBadCredentials
	}
	if u.Disabled {
		return Principal{}, fmt.Errorf("%w: %q", ErrUserDisabled, user)
	}
	return Principal{Name: user, Kind: KindUser, Grants: u.Grants}, nil
}

// dummyHash is a bcrypt hash at the store's cost, for unknown users.
func (s *Store) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy = dummyHash
		if s.cost != bcrypt.DefaultCost {
			if h, err := bcrypt.GenerateFromPassword([]byte("drydock-dummy-password"), s.cost); err == nil {
				s.dummy = h
			}
		}
	})
	return s.dummy
}

// verifyPassword checks password against a stored bcrypt hash, remembering
// successes: the cache key includes the hash, so a new password takes
// effect at once.
func (s *Store) verifyPassword(user, password, hash string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + password + "\x00" + hash))
	s.mu.Lock()
	_, ok := s.verified[key]
	s.mu.Unlock()
	if ok {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	s.mu.Lock()
	if len(s.verified) >= maxVerified {
		clear(s.verified)
	}
	s.verified[key] = struct{}{}
	s.mu.Unlock()
	return true
}

// UserPrincipal returns the principal of a user with its current grants
// (for a bearer token issued earlier): the error wraps ErrNotFound when the
// user is gone and ErrUserDisabled when it is disabled.
func (s *Store) UserPrincipal(ctx context.Context, name string) (Principal, error) {
	u, err := s.User(ctx, name)
	if err != nil {
		return Principal{}, err
	}
	if u.Disabled {
		return Principal{}, fmt.Errorf("%w: %q", ErrUserDisabled, name)
	}
	return Principal{Name: u.Name, Kind: KindUser, Grants: u.Grants}, nil
}
