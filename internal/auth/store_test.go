package auth

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fakeClock is a settable clock for the store and the issuer.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestStore(t testing.TB, clock *fakeClock) *Store {
	t.Helper()
	s, err := OpenStore(DefaultPath(t.TempDir()), WithClock(clock.Now), WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenStore(t *testing.T) {
	data := t.TempDir()
	path := DefaultPath(data)
	if path != filepath.Join(data, "auth", "auth.db") {
		t.Fatalf("DefaultPath = %s", path)
	}
	s, err := OpenStore(path, WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.SigningKey(context.Background())
	if err != nil || len(key) != 32 {
		t.Fatalf("signing key %x, %v", key, err)
	}
	s.Close()
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
	s2, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if key2, err := s2.SigningKey(context.Background()); err != nil || string(key2) != string(key) {
		t.Fatalf("signing key changed on reopen: %x %v", key2, err)
	}
	if _, err := OpenStore(path, WithBcryptCost(99)); err == nil || !strings.Contains(err.Error(), "bcrypt cost 99") {
		t.Fatalf("cost 99: %v", err)
	}
	if _, err := OpenStore(filepath.Join(path, "sub", "x.db")); err == nil || !strings.Contains(err.Error(), "open auth store") {
		t.Fatalf("path under a file: %v", err)
	}
}

func TestAddUserValidation(t *testing.T) {
	s := newTestStore(t, newFakeClock())
	ctx := context.Background()
	if err := s.AddUser(ctx, "alice", "correct horse", mustGrants(t, "push:quarantine")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 73)
	tests := []struct {
		name, user, pw string
		grants         Grants
		want           string
	}{
		{"duplicate", "alice", "correct horse", nil, `user "alice" already exists`},
		{"upper case", "Alice", "correct horse", nil, `invalid user name "Alice"`},
		{"leading dot", ".x", "correct horse", nil, "invalid user name"},
		{"too long", strings.Repeat("a", 65), "correct horse", nil, "invalid user name"},
		{"empty", "", "correct horse", nil, "invalid user name"},
		{"short password", "bob", "short", nil, "password too short: 5 bytes, need at least 8"},
		{"long password", "bob", long, nil, "password too long: 73 bytes, at most 72"},
		{"token-like password", "bob", "ddk_abcdefgh", nil, `must not start with "ddk_"`},
		{"bad grant", "bob", "correct horse", Grants{{Role: RoleAdmin, Namespace: "live"}}, "admin is global"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.AddUser(ctx, tt.user, tt.pw, tt.grants)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := s.AddUser(ctx, "alice", "correct horse", nil); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v is not ErrExists", err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Fatalf("CountUsers = %d, %v", n, err)
	}
}

func TestUserLifecycle(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, clock)
	ctx := context.Background()
	for _, name := range []string{"carol", "alice", "bob"} {
		if err := s.AddUser(ctx, name, "password-"+name, mustGrants(t, "pull:live")); err != nil {
			t.Fatal(err)
		}
	}
	users, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || users[0].Name != "alice" || users[2].Name != "carol" || !users[0].CreatedAt.Equal(clock.Now()) {
		t.Fatalf("users %+v", users)
	}
	b, _ := json.Marshal(users)
	if strings.Contains(string(b), "$2a$") || strings.Contains(string(b), "password") {
		t.Fatalf("user JSON shows a hash: %s", b)
	}

	clock.Advance(time.Hour)
	if err := s.SetGrants(ctx, "bob", mustGrants(t, "push:quarantine,pull:quarantine")); err != nil {
		t.Fatal(err)
	}
	u, err := s.User(ctx, "bob")
	if err != nil || u.Grants.String() != "pull:quarantine,push:quarantine" || !u.UpdatedAt.Equal(clock.Now()) {
		t.Fatalf("bob after SetGrants: %+v %v", u, err)
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"SetPassword", s.SetPassword(ctx, "nobody", "long enough")},
		{"SetGrants", s.SetGrants(ctx, "nobody", nil)},
		{"DisableUser", s.DisableUser(ctx, "nobody", true)},
		{"DeleteUser", s.DeleteUser(ctx, "nobody")},
	} {
		if !errors.Is(tt.err, ErrNotFound) || !strings.Contains(tt.err.Error(), `user "nobody" not found`) {
			t.Errorf("%s of an unknown user: %v", tt.name, tt.err)
		}
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("User(nobody): %v", err)
	}

	if err := s.DisableUser(ctx, "carol", true); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.User(ctx, "carol"); !u.Disabled {
		t.Fatal("carol not disabled")
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountUsers(ctx); n != 2 {
		t.Fatalf("%d users after delete", n)
	}
}

func TestAuthenticate(t *testing.T) {
	s := newTestStore(t, newFakeClock())
	ctx := context.Background()
	if err := s.AddUser(ctx, "alice", "alice-password", mustGrants(t, "push:quarantine")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "dave", "dave-password", mustGrants(t, "pull")); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableUser(ctx, "dave", true); err != nil {
		t.Fatal(err)
	}
	secret, _, err := s.CreateToken(ctx, TokenSpec{Name: "ci", Grants: mustGrants(t, "pull:live")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, pw string
		wantName       string
		wantErr        error
	}{
		{"ok", "alice", "alice-password", "alice", nil},
		{"wrong password", "alice", "alice-passwort", "", ErrBadCredentials},
		{"unknown user", "mallory", "alice-password", "", ErrBadCredentials},
		{"disabled", "dave", "dave-password", "", ErrUserDisabled},
		{"disabled, wrong password", "dave", "nope-nope", "", ErrBadCredentials},
		{"token as password", "whoever", secret, "token:ci", nil},
		{"bad token", "alice", wrongSecret(secret), "", ErrBadCredentials},
		{"malformed token", "alice", "ddk_short", "", ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second time from the cache
				p, err := s.Authenticate(ctx, tt.user, tt.pw)
				if !errors.Is(err, tt.wantErr) || p.Name != tt.wantName {
					t.Fatalf("Authenticate = %+v, %v; want %q, %v", p, err, tt.wantName, tt.wantErr)
				}
			}
		})
	}
	if err := s.SetPassword(ctx, "alice", "new-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice", "alice-password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password still works after a change (cache): %v", err)
	}
	if err := s.SetGrants(ctx, "alice", mustGrants(t, "pull:live")); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(ctx, "alice", "new-password"); err != nil || p.Grants.String() != "pull:live" || p.Kind != KindUser {
		t.Fatalf("after SetGrants: %+v %v", p, err)
	}
}

// wrongSecret changes a character inside the random part of a secret.
func wrongSecret(secret string) string {
	i := len(secret) - 5
	c := byte('A')
	if secret[i] == c {
		c = 'B'
	}
	return secret[:i] + string(c) + secret[i+1:]
}

var secretRE = regexp.MustCompile(`^ddk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$`)

func TestCreateToken(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, clock)
	ctx := context.Background()
	if err := s.AddUser(ctx, "bob", "bob-password", mustGrants(t, "push:quarantine,pull:quarantine")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "root", "root-password", mustGrants(t, "admin")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "off", "off-password", mustGrants(t, "pull")); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableUser(ctx, "off", true); err != nil {
		t.Fatal(err)
	}
	secret, tok, err := s.CreateToken(ctx, TokenSpec{Name: "ci", Owner: "bob", Grants: mustGrants(t, "push:quarantine"), ExpiresAt: clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !secretRE.MatchString(secret) || !strings.HasPrefix(secret, "ddk_"+tok.ID+"_") {
		t.Fatalf("secret %q (id %s)", secret, tok.ID)
	}
	if id, ok := tokenIDOf(secret); !ok || id != tok.ID {
		t.Fatalf("tokenIDOf = %q %v", id, ok)
	}
	tests := []struct {
		name string
		spec TokenSpec
		want string
	}{
		{"same name", TokenSpec{Name: "ci", Grants: mustGrants(t, "pull")}, `token "ci" already exists (id ` + tok.ID},
		{"bad name", TokenSpec{Name: "CI"}, `invalid token name "CI"`},
		{"beyond owner", TokenSpec{Name: "x", Owner: "bob", Grants: mustGrants(t, "push:quarantine,push:live,pull")}, `roles pull:*,push:live go beyond those of its owner "bob" (pull:quarantine,push:quarantine)`},
		{"admin beyond owner", TokenSpec{Name: "x", Owner: "bob", Grants: mustGrants(t, "admin")}, "go beyond"},
		{"unknown owner", TokenSpec{Name: "x", Owner: "nobody", Grants: mustGrants(t, "pull")}, `owner: user "nobody" not found`},
		{"disabled owner", TokenSpec{Name: "x", Owner: "off", Grants: mustGrants(t, "pull")}, `owner "off" is disabled`},
		{"past expiry", TokenSpec{Name: "x", ExpiresAt: clock.Now().Add(-time.Second)}, "is not in the future"},
		{"bad grant", TokenSpec{Name: "x", Grants: Grants{{Role: "root", Namespace: "*"}}}, `unknown role "root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.CreateToken(ctx, tt.spec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, _, err := s.CreateToken(ctx, TokenSpec{Name: "ops", Owner: "root", Grants: mustGrants(t, "admin")}); err != nil {
		t.Fatalf("admin owner granting admin: %v", err)
	}
	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 2 || toks[0].Name != "ci" || toks[0].Owner != "bob" || !toks[0].ExpiresAt.Equal(clock.Now().Add(time.Hour)) ||
		!toks[1].ExpiresAt.IsZero() {
		t.Fatalf("tokens %+v %v", toks, err)
	}
	b, _ := json.Marshal(toks)
	if strings.Contains(string(b), secret) || strings.Contains(string(b), "ddk_") || strings.Contains(string(b), "revoked_at") {
		t.Fatalf("token JSON: %s", b)
	}
}

func TestTokenAuthentication(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, clock)
	ctx := context.Background()
	if err := s.AddUser(ctx, "bob", "bob-password", mustGrants(t, "push:quarantine,pull:quarantine")); err != nil {
		t.Fatal(err)
	}
	owned, tok, err := s.CreateToken(ctx, TokenSpec{Name: "ci", Owner: "bob", Grants: mustGrants(t, "push:quarantine,pull:quarantine"), ExpiresAt: clock.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.AuthenticateToken(ctx, owned)
	if err != nil || p.Name != "token:ci" || p.Kind != KindToken || p.TokenID != tok.ID || p.Grants.String() != "pull:quarantine,push:quarantine" {
		t.Fatalf("AuthenticateToken = %+v, %v", p, err)
	}

	// The owner loses push: so does the token, at once.
	if err := s.SetGrants(ctx, "bob", mustGrants(t, "pull")); err != nil {
		t.Fatal(err)
	}
	if p, err := s.AuthenticateToken(ctx, owned); err != nil || p.Grants.String() != "pull:quarantine" {
		t.Fatalf("after the owner's grants shrank: %+v, %v", p, err)
	}
	if err := s.DisableUser(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, owned); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("owner disabled: %v", err)
	}
	if err := s.DisableUser(ctx, "bob", false); err != nil {
		t.Fatal(err)
	}

	// last_used_at is written at most once a minute.
	lastUsed := func() time.Time {
		toks, err := s.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return toks[0].LastUsedAt
	}
	first := lastUsed()
	if first.IsZero() {
		t.Fatal("last_used_at not set")
	}
	clock.Advance(30 * time.Second)
	if _, err := s.AuthenticateToken(ctx, owned); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("last_used_at written again after 30s: %v", got)
	}
	clock.Advance(31 * time.Second)
	if _, err := s.AuthenticateToken(ctx, owned); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(clock.Now()) {
		t.Fatalf("last_used_at = %v after a minute, want %v", got, clock.Now())
	}

	// Expiry.
	clock.Advance(48 * time.Hour)
	var expired *TokenExpiredError
	if _, err := s.AuthenticateToken(ctx, owned); !errors.As(err, &expired) || expired.Name != "ci" ||
		err.Error() != `token "ci" expired at 2026-10-03T12:00:00Z` {
		t.Fatalf("expired: %v", err)
	}

	// Deleting the owner revokes its tokens.
	robot, _, err := s.CreateToken(ctx, TokenSpec{Name: "robot", Grants: mustGrants(t, "pull:live")})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.CreateToken(ctx, TokenSpec{Name: "bobs", Owner: "bob", Grants: mustGrants(t, "pull:quarantine")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, other); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("token of a deleted owner: %v", err)
	}
	if p, err := s.AuthenticateToken(ctx, robot); err != nil || p.Grants.String() != "pull:live" {
		t.Fatalf("robot: %+v %v", p, err)
	}
}

func TestRevokeToken(t *testing.T) {
	s := newTestStore(t, newFakeClock())
	ctx := context.Background()
	a, ta, err := s.CreateToken(ctx, TokenSpec{Name: "a", Grants: mustGrants(t, "pull")})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.CreateToken(ctx, TokenSpec{Name: "b", Grants: mustGrants(t, "pull")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, ta.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{a, b} {
		if _, err := s.AuthenticateToken(ctx, secret); !errors.Is(err, ErrTokenRevoked) || !strings.Contains(err.Error(), "token revoked") {
			t.Errorf("revoked token: %v", err)
		}
	}
	if err := s.RevokeToken(ctx, ta.ID); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("revoking twice: %v", err)
	}
	if err := s.RevokeToken(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking a name with no active token: %v", err)
	}
	// The name is free again.
	if _, _, err := s.CreateToken(ctx, TokenSpec{Name: "a", Grants: mustGrants(t, "pull")}); err != nil {
		t.Fatal(err)
	}
	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 3 || toks[0].Status(time.Now()) != "revoked" {
		t.Fatalf("tokens %+v %v", toks, err)
	}
}

func TestSecretNotStoredInClear(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(DefaultPath(dir), WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const password = "a very secret password"
	if err := s.AddUser(ctx, "alice", password, mustGrants(t, "pull")); err != nil {
		t.Fatal(err)
	}
	secret, _, err := s.CreateToken(ctx, TokenSpec{Name: "ci", Grants: mustGrants(t, "pull")})
	if err != nil {
		t.Fatal(err)
	}
	key := secret[len("ddk_")+13:]
	check := func() {
		files, _ := filepath.Glob(filepath.Join(dir, "auth", "*"))
		if len(files) == 0 {
			t.Fatal("no database files")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, clear := range []string{secret, key, password} {
				if strings.Contains(string(b), clear) {
					t.Errorf("%s holds %q in clear", f, clear)
				}
			}
		}
	}
	check() // the WAL is still there
	s.Close()
	check()
}

func FuzzTokenIDOf(f *testing.F) {
	f.Add("ddk_0123456789ab_" + strings.Repeat("A", 43))
	f.Add("ddk_0123456789ab_" + strings.Repeat("_", 42) + "w")
	f.Add("ddk_")
	f.Add("ddk_0123456789AB_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := tokenIDOf(s)
		if !ok {
			if id != "" {
				t.Fatalf("id %q without ok", id)
			}
			return
		}
		if !secretRE.MatchString(s) || s[4:16] != id {
			t.Fatalf("tokenIDOf(%q) = %q, ok", s, id)
		}
	})
}
