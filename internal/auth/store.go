package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DefaultPath is where the user and token store lives under a data
// directory.
func DefaultPath(dataDir string) string { return filepath.Join(dataDir, "auth", "auth.db") }

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

const schema = `
CREATE TABLE IF NOT EXISTS users (
	name          TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	grants        TEXT NOT NULL, -- JSON array of "ROLE:NAMESPACE"
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	owner        TEXT NOT NULL DEFAULT '',
	secret_hash  TEXT NOT NULL, -- hex SHA-256 of the whole secret
	grants       TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	expires_at   TEXT,
	last_used_at TEXT,
	revoked_at   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS tokens_owner ON tokens (owner);
CREATE TABLE IF NOT EXISTS signing_keys (
	id         INTEGER PRIMARY KEY,
	key        BLOB NOT NULL,
	created_at TEXT NOT NULL
);
`

// Store keeps users and tokens in a SQLite file that the server and the
// CLI (and several server replicas) share.
type Store struct {
	db   *sql.DB
	path string
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

// OpenStore opens the store at path, creating it (mode 0600, in a 0700
// directory) with a fresh signing key when missing. Writes take the
// database lock at their start, so that processes sharing the file wait
// for each other instead of failing.
func OpenStore(path string, opts ...StoreOption) (*Store, error) {
	s := &Store{path: path, now: time.Now, cost: bcrypt.DefaultCost,
		verified: map[[32]byte]struct{}{}, touched: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	if s.cost < bcrypt.MinCost || s.cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("open auth store %s: bcrypt cost %d outside %d..%d", path, s.cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open auth store %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open auth store %s: %w", path, err)
	}
	f.Close()
	q := url.Values{"_pragma": []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"}, "_txlock": []string{"immediate"}}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("open auth store %s: %w", path, err)
	}
	s.db = db
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open auth store %s: create schema: %w", path, err)
	}
	key, err := randomBytes(32)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open auth store %s: %w", path, err)
	}
	if _, err := db.Exec(`INSERT OR IGNORE INTO signing_keys (id, key, created_at) VALUES (1, ?, ?)`, key, timeText(s.now())); err != nil {
		db.Close()
		return nil, fmt.Errorf("open auth store %s: create signing key: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// SigningKey returns the HMAC key bearer tokens are signed with; every
// process sharing the store gets the same key.
func (s *Store) SigningKey(ctx context.Context) ([]byte, error) {
	var key []byte
	if err := s.db.QueryRowContext(ctx, `SELECT key FROM signing_keys ORDER BY id DESC LIMIT 1`).Scan(&key); err != nil {
		return nil, fmt.Errorf("auth store %s: read signing key: %w", s.path, err)
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

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(column string, v sql.NullString) (time.Time, error) {
	if !v.Valid || v.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored %s %q: %w", column, v.String, err)
	}
	return t, nil
}

func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: timeText(t), Valid: true}
}

func encodeGrants(g Grants) (string, error) {
	if err := g.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(g.normalize())
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeGrants(text string) (Grants, error) {
	var g Grants
	if err := json.Unmarshal([]byte(text), &g); err != nil {
		return nil, fmt.Errorf("stored grants %q: %w", text, err)
	}
	return g.normalize(), nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE).
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// AddUser adds a user; the error wraps ErrExists when the name is taken.
func (s *Store) AddUser(ctx context.Context, name, password string, g Grants) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	grants, err := encodeGrants(g)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return fmt.Errorf("user %q: hash password: %w", name, err)
	}
	now := timeText(s.now())
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = ?`, name).Scan(&one); {
		case err == nil:
			return fmt.Errorf("user %q %w", name, ErrExists)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("add user %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (name, password_hash, grants, created_at, updated_at, disabled)
			VALUES (?, ?, ?, ?, ?, 0)`, name, string(hash), grants, now, now); err != nil {
			return fmt.Errorf("add user %q: %w", name, err)
		}
		return nil
	})
}

// updateUser sets columns of user name (set is "col = ?, ..." for args).
func (s *Store) updateUser(ctx context.Context, op, name, set string, args ...any) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	args = append(args, timeText(s.now()), name)
	res, err := s.db.ExecContext(ctx, `UPDATE users SET `+set+`, updated_at = ? WHERE name = ?`, args...)
	if err != nil {
		return fmt.Errorf("%s of user %q: %w", op, name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s of user %q: %w", op, name, err)
	} else if n == 0 {
		return fmt.Errorf("user %q %w", name, ErrNotFound)
	}
	return nil
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
	return s.updateUser(ctx, "set password", name, `password_hash = ?`, string(hash))
}

// SetGrants replaces a user's grants; it takes effect on the next request.
func (s *Store) SetGrants(ctx context.Context, name string, g Grants) error {
	grants, err := encodeGrants(g)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	return s.updateUser(ctx, "set roles", name, `grants = ?`, grants)
}

// DisableUser disables (or enables again) a user and the tokens it owns.
func (s *Store) DisableUser(ctx context.Context, name string, disabled bool) error {
	return s.updateUser(ctx, "disable", name, `disabled = ?`, disabled)
}

// DeleteUser deletes a user and revokes the tokens it owns.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	now := timeText(s.now())
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete user %q: %w", name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete user %q: %w", name, err)
		} else if n == 0 {
			return fmt.Errorf("user %q %w", name, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE owner = ? AND revoked_at IS NULL`, now, name); err != nil {
			return fmt.Errorf("delete user %q: revoke its tokens: %w", name, err)
		}
		return nil
	})
}

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (User, error) {
	var u User
	var grants string
	var created, updated sql.NullString
	if err := row.Scan(&u.Name, &grants, &created, &updated, &u.Disabled); err != nil {
		return User{}, err
	}
	var err error
	if u.Grants, err = decodeGrants(grants); err != nil {
		return User{}, fmt.Errorf("user %q: %w", u.Name, err)
	}
	if u.CreatedAt, err = parseTime("created_at", created); err != nil {
		return User{}, fmt.Errorf("user %q: %w", u.Name, err)
	}
	if u.UpdatedAt, err = parseTime("updated_at", updated); err != nil {
		return User{}, fmt.Errorf("user %q: %w", u.Name, err)
	}
	return u, nil
}

const userColumns = `name, grants, created_at, updated_at, disabled`

// User returns one user; the error wraps ErrNotFound when there is none.
func (s *Store) User(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read user %q: %w", name, err)
	}
	return &u, nil
}

// Users returns every user, sorted by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	users := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// Authenticate checks a user name and password, or, when the password is an
// API token (it starts with "ddk_"), the token whatever the user name.
func (s *Store) Authenticate(ctx context.Context, user, password string) (Principal, error) {
	if strings.HasPrefix(password, TokenPrefix) {
		return s.AuthenticateToken(ctx, password)
	}
	var hash, grants string
	var disabled bool
	err := s.db.QueryRowContext(ctx, `SELECT password_hash, grants, disabled FROM users WHERE name = ?`, user).Scan(&hash, &grants, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the time a known user costs, so that timing does not tell
		// which user names exist.
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate user %q: %w", user, err)
	}
	if !s.verifyPassword(user, password, hash) {
		return Principal{}, ErrBadCredentials
	}
	if disabled {
		return Principal{}, fmt.Errorf("%w: %q", ErrUserDisabled, user)
	}
	g, err := decodeGrants(grants)
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate user %q: %w", user, err)
	}
	return Principal{Name: user, Kind: KindUser, Grants: g}, nil
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
