package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// secretLen is the length of a token secret: "ddk_" + 12 hex + "_" + 43.
const secretLen = len(TokenPrefix) + 2*tokenIDBytes + 1 + 43

// tokenIDOf returns the id part of a well-formed token secret.
func tokenIDOf(secret string) (string, bool) {
	if len(secret) != secretLen || !strings.HasPrefix(secret, TokenPrefix) {
		return "", false
	}
	id, key, ok := strings.Cut(secret[len(TokenPrefix):], "_")
	if !ok || len(id) != 2*tokenIDBytes || strings.Trim(id, "0123456789abcdef") != "" {
		return "", false
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(key); err != nil || len(b) != tokenKeyBytes {
		return "", false
	}
	return id, true
}

// secretHash is what the store keeps of a secret.
func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken creates a token and returns its secret, which is shown this
// once: the store keeps only its SHA-256.
func (s *Store) CreateToken(ctx context.Context, spec TokenSpec) (string, Token, error) {
	if err := checkName("token", spec.Name); err != nil {
		return "", Token{}, err
	}
	if spec.Owner != "" {
		if err := checkName("user", spec.Owner); err != nil {
			return "", Token{}, fmt.Errorf("token %q: owner: %w", spec.Name, err)
		}
	}
	grants, err := encodeGrants(spec.Grants)
	if err != nil {
		return "", Token{}, fmt.Errorf("token %q: %w", spec.Name, err)
	}
	now := s.now()
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		return "", Token{}, fmt.Errorf("token %q: expiry %s is not in the future", spec.Name, spec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	idBytes, err := randomBytes(tokenIDBytes)
	if err != nil {
		return "", Token{}, err
	}
	key, err := randomBytes(tokenKeyBytes)
	if err != nil {
		return "", Token{}, err
	}
	tok := Token{ID: hex.EncodeToString(idBytes), Name: spec.Name, Owner: spec.Owner,
		Grants: spec.Grants.normalize(), CreatedAt: now, ExpiresAt: spec.ExpiresAt}
	secret := TokenPrefix + tok.ID + "_" + base64.RawURLEncoding.EncodeToString(key)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var other string
		switch err := tx.QueryRowContext(ctx, `SELECT id FROM tokens WHERE name = ? AND revoked_at IS NULL`, spec.Name).Scan(&other); {
		case err == nil:
			return fmt.Errorf("token %q %w (id %s): revoke it first or choose another name", spec.Name, ErrExists, other)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("create token %q: %w", spec.Name, err)
		}
		if spec.Owner != "" {
			if err := checkOwner(ctx, tx, spec.Owner, tok); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, owner, secret_hash, grants, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, tok.ID, tok.Name, tok.Owner, secretHash(secret), grants, timeText(now), nullTime(tok.ExpiresAt)); err != nil {
			return fmt.Errorf("create token %q: %w", spec.Name, err)
		}
		return nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

// checkOwner checks that the owner of a new token exists, is enabled and
// has every grant the token asks for.
func checkOwner(ctx context.Context, tx *sql.Tx, owner string, tok Token) error {
	var grants string
	var disabled bool
	err := tx.QueryRowContext(ctx, `SELECT grants, disabled FROM users WHERE name = ?`, owner).Scan(&grants, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("token %q: owner: user %q %w", tok.Name, owner, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create token %q: read owner %q: %w", tok.Name, owner, err)
	}
	if disabled {
		return fmt.Errorf("token %q: owner %q is disabled", tok.Name, owner)
	}
	og, err := decodeGrants(grants)
	if err != nil {
		return fmt.Errorf("create token %q: owner %q: %w", tok.Name, owner, err)
	}
	var beyond Grants
	for _, g := range tok.Grants {
		if !og.Covers(g) {
			beyond = append(beyond, g)
		}
	}
	if len(beyond) > 0 {
		return fmt.Errorf("token %q: roles %s go beyond those of its owner %q (%s)", tok.Name, beyond, owner, og)
	}
	return nil
}

const tokenColumns = `id, name, owner, grants, created_at, expires_at, last_used_at, revoked_at`

func scanToken(row scanner, dest ...any) (Token, error) {
	var t Token
	var grants string
	var created, expires, used, revoked sql.NullString
	if err := row.Scan(append([]any{&t.ID, &t.Name, &t.Owner, &grants, &created, &expires, &used, &revoked}, dest...)...); err != nil {
		return Token{}, err
	}
	var err error
	if t.Grants, err = decodeGrants(grants); err != nil {
		return Token{}, fmt.Errorf("token %s: %w", t.ID, err)
	}
	for _, f := range []struct {
		name string
		v    sql.NullString
		to   *time.Time
	}{{"created_at", created, &t.CreatedAt}, {"expires_at", expires, &t.ExpiresAt}, {"last_used_at", used, &t.LastUsedAt}, {"revoked_at", revoked, &t.RevokedAt}} {
		if *f.to, err = parseTime(f.name, f.v); err != nil {
			return Token{}, fmt.Errorf("token %s: %w", t.ID, err)
		}
	}
	return t, nil
}

// Tokens returns every token, revoked and expired ones included, sorted by
// name and creation time.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY name, created_at`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	toks := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		toks = append(toks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return toks, nil
}

// RevokeToken revokes the token with this id, or the active token with
// this name.
func (s *Store) RevokeToken(ctx context.Context, idOrName string) error {
	now := timeText(s.now())
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var id, name string
		var revoked sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT id, name, revoked_at FROM tokens WHERE id = ?`, idOrName).Scan(&id, &name, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, `SELECT id, name, revoked_at FROM tokens WHERE name = ? AND revoked_at IS NULL`, idOrName).Scan(&id, &name, &revoked)
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("token %q %w: no active token has that id or name", idOrName, ErrNotFound)
		case err != nil:
			return fmt.Errorf("revoke token %q: %w", idOrName, err)
		case revoked.Valid:
			return fmt.Errorf("token %s (%q) was already revoked at %s", id, name, revoked.String)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, now, id); err != nil {
			return fmt.Errorf("revoke token %q: %w", idOrName, err)
		}
		return nil
	})
}

// loadToken reads a token and its secret hash; the error wraps ErrNotFound
// when there is none.
func (s *Store) loadToken(ctx context.Context, id string) (Token, string, error) {
	var hash string
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+`, secret_hash FROM tokens WHERE id = ?`, id), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, "", fmt.Errorf("token %s %w", id, ErrNotFound)
	}
	if err != nil {
		return Token{}, "", fmt.Errorf("read token %s: %w", id, err)
	}
	return t, hash, nil
}

// AuthenticateToken checks a token secret and returns the token's
// principal with its effective grants.
func (s *Store) AuthenticateToken(ctx context.Context, secret string) (Principal, error) {
	id, ok := tokenIDOf(secret)
	if !ok {
		return Principal{}, ErrBadCredentials
	}
	t, hash, err := s.loadToken(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	if subtle.ConstantTimeCompare([]byte(secretHash(secret)), []byte(hash)) != 1 {
		return Principal{}, ErrBadCredentials
	}
	return s.tokenPrincipal(ctx, t)
}

// TokenPrincipal returns the principal of a token by id with its current
// effective grants (for a bearer token issued earlier), failing as
// AuthenticateToken does when it is revoked or expired or its owner is
// disabled or gone.
func (s *Store) TokenPrincipal(ctx context.Context, id string) (Principal, error) {
	t, _, err := s.loadToken(ctx, id)
	if err != nil {
		return Principal{}, err
	}
	return s.tokenPrincipal(ctx, t)
}

// tokenPrincipal checks that t may be used now and returns its principal.
// The effective grants of a token with an owner are those it shares with
// the owner's current grants.
func (s *Store) tokenPrincipal(ctx context.Context, t Token) (Principal, error) {
	now := s.now()
	if !t.RevokedAt.IsZero() {
		return Principal{}, fmt.Errorf("%w: %q was revoked at %s", ErrTokenRevoked, t.Name, t.RevokedAt.UTC().Format(time.RFC3339))
	}
	if t.Expired(now) {
		return Principal{}, &TokenExpiredError{Name: t.Name, ExpiredAt: t.ExpiresAt}
	}
	grants := t.Grants
	if t.Owner != "" {
		var og string
		var disabled bool
		err := s.db.QueryRowContext(ctx, `SELECT grants, disabled FROM users WHERE name = ?`, t.Owner).Scan(&og, &disabled)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return Principal{}, fmt.Errorf("%w: the owner %q of token %q no longer exists", ErrTokenRevoked, t.Owner, t.Name)
		case err != nil:
			return Principal{}, fmt.Errorf("read owner %q of token %q: %w", t.Owner, t.Name, err)
		case disabled:
			return Principal{}, fmt.Errorf("%w: %q, the owner of token %q", ErrUserDisabled, t.Owner, t.Name)
		}
		owner, err := decodeGrants(og)
		if err != nil {
			return Principal{}, fmt.Errorf("owner %q of token %q: %w", t.Owner, t.Name, err)
		}
		if !owner.IsAdmin() {
			grants = grants.Intersect(owner)
		}
	}
	s.touch(ctx, t, now)
	return Principal{Name: tokenPrincipalName(t.Name), Kind: KindToken, TokenID: t.ID, Grants: grants}, nil
}

// touch records that t was used at now, at most once a lastUsedInterval
// per token. It is best effort: a failed write does not fail the request.
func (s *Store) touch(ctx context.Context, t Token, now time.Time) {
	if !t.LastUsedAt.IsZero() && now.Sub(t.LastUsedAt) < lastUsedInterval {
		return
	}
	s.mu.Lock()
	if last, ok := s.touched[t.ID]; ok && now.Sub(last) < lastUsedInterval {
		s.mu.Unlock()
		return
	}
	if len(s.touched) >= maxVerified {
		clear(s.touched)
	}
	s.touched[t.ID] = now
	s.mu.Unlock()
	_, _ = s.db.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, timeText(now), t.ID)
}
