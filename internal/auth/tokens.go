package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	if err := spec.Grants.Validate(); err != nil {
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
	err = s.b.Update(ctx, func(tx Tx) error {
		switch other, err := tx.ActiveToken(ctx, spec.Name); {
		case err == nil:
			return fmt.Errorf("token %q %w (id %s): revoke it first or choose another name", spec.Name, ErrExists, other.ID)
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("create token %q: %w", spec.Name, err)
		}
		if spec.Owner != "" {
			if err := checkOwner(ctx, tx, spec.Owner, tok); err != nil {
				return err
			}
		}
		return tx.InsertToken(ctx, TokenRecord{Token: tok, SecretHash: secretHash(secret)})
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

// checkOwner checks that the owner of a new token exists, is enabled and
// has every grant the token asks for.
func checkOwner(ctx context.Context, tx Tx, owner string, tok Token) error {
	u, err := tx.User(ctx, owner)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("token %q: owner: user %q %w", tok.Name, owner, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create token %q: read owner %q: %w", tok.Name, owner, err)
	}
	if u.Disabled {
		return fmt.Errorf("token %q: owner %q is disabled", tok.Name, owner)
	}
	var beyond Grants
	for _, g := range tok.Grants {
		if !u.Grants.Covers(g) {
			beyond = append(beyond, g)
		}
	}
	if len(beyond) > 0 {
		return fmt.Errorf("token %q: roles %s go beyond those of its owner %q (%s)", tok.Name, beyond, owner, u.Grants)
	}
	return nil
}

// Tokens returns every token, revoked and expired ones included, sorted by
// name and creation time.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	recs, err := s.b.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	toks := make([]Token, len(recs))
	for i, r := range recs {
		toks[i] = r.Token
	}
	return toks, nil
}

// RevokeToken revokes the token with this id, or the active token with
// this name.
func (s *Store) RevokeToken(ctx context.Context, idOrName string) error {
	now := s.now()
	return s.b.Update(ctx, func(tx Tx) error {
		t, err := tx.Token(ctx, idOrName)
		if errors.Is(err, ErrNotFound) {
			t, err = tx.ActiveToken(ctx, idOrName)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			return fmt.Errorf("token %q %w: no active token has that id or name", idOrName, ErrNotFound)
		case err != nil:
			return fmt.Errorf("revoke token %q: %w", idOrName, err)
		case !t.RevokedAt.IsZero():
			return fmt.Errorf("token %s (%q) was already revoked at %s", t.ID, t.Name, t.RevokedAt.UTC().Format(time.RFC3339Nano))
		}
		t.RevokedAt = now
		return tx.UpdateToken(ctx, *t)
	})
}

// loadToken reads a token and its secret hash; the error wraps ErrNotFound
// when there is none.
func (s *Store) loadToken(ctx context.Context, id string) (Token, string, error) {
	t, err := s.b.Token(ctx, id)
	if err != nil {
		return Token{}, "", err
	}
	return t.Token, t.SecretHash, nil
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
		owner, err := s.b.User(ctx, t.Owner)
		switch {
		case errors.Is(err, ErrNotFound):
			return Principal{}, fmt.Errorf("%w: the owner %q of token %q no longer exists", ErrTokenRevoked, t.Owner, t.Name)
		case err != nil:
			return Principal{}, fmt.Errorf("read owner %q of token %q: %w", t.Owner, t.Name, err)
		case owner.Disabled:
			return Principal{}, fmt.Errorf("%w: %q, the owner of token %q", ErrUserDisabled, t.Owner, t.Name)
		}
		if !owner.Grants.IsAdmin() {
			grants = grants.Intersect(owner.Grants)
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
	_ = s.b.TouchToken(ctx, t.ID, now)
}
