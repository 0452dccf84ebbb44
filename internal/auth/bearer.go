package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Bearer token errors; Verify wraps them with details.
var (
	ErrInvalidBearer = errors.New("invalid bearer token")
	ErrBearerExpired = errors.New("bearer token expired")
)

const (
	// maxBearerLen bounds the bearer tokens Verify reads.
	maxBearerLen = 4 << 10
	// bearerDomain separates these MACs from any other use of the key.
	bearerDomain = "drydock-bearer-v1\n"
	// DefaultBearerTTL is the lifetime of bearer tokens when NewIssuer is
	// given none.
	DefaultBearerTTL = 5 * time.Minute
)

// Claims are what a bearer token says. They name the principal but not its
// grants: those are read from the store on every request, so that a
// revocation or role change applies at once.
type Claims struct {
	// Subject is the principal's Name.
	Subject string `json:"sub"`
	// Kind is the principal's Kind.
	Kind string `json:"kind"`
	// TokenID is the API token's id for KindToken.
	TokenID string `json:"tid,omitempty"`
	// User is the store user name for KindUser (the htpasswd user name for
	// KindHtpasswd).
	User     string `json:"user,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

// Issuer issues and verifies short-lived bearer tokens: base64url(JSON
// claims) "." base64url(HMAC-SHA256).
type Issuer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewIssuer returns an issuer signing with key (32 random bytes, see
// Store.SigningKey) whose tokens live ttl (DefaultBearerTTL when not
// positive); now is the clock (time.Now when nil).
func NewIssuer(key []byte, ttl time.Duration, now func() time.Time) *Issuer {
	if ttl <= 0 {
		ttl = DefaultBearerTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Issuer{key: bytes.Clone(key), ttl: ttl, now: now}
}

// TTL is the lifetime of the tokens the issuer issues.
func (i *Issuer) TTL() time.Duration { return i.ttl }

func (i *Issuer) mac(payload string) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(bearerDomain))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Issue returns a bearer token for p and when it expires.
func (i *Issuer) Issue(p Principal) (token string, expiresAt time.Time) {
	now := i.now()
	exp := now.Add(i.ttl).Truncate(time.Second)
	c := Claims{Subject: p.Name, Kind: p.Kind, TokenID: p.TokenID, IssuedAt: now.Unix(), Expires: exp.Unix()}
	if p.Kind == KindUser || p.Kind == KindHtpasswd {
		c.User = p.Name
	}
	body, _ := json.Marshal(c) // strings and integers always encode
	payload := base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(i.mac(payload)), exp
}

// Verify checks a bearer token's MAC and expiry and returns its claims.
// Failures wrap ErrInvalidBearer or ErrBearerExpired.
func (i *Issuer) Verify(token string) (Claims, error) {
	if len(i.key) < 16 {
		return Claims{}, fmt.Errorf("%w: the issuer has no signing key", ErrInvalidBearer)
	}
	if len(token) > maxBearerLen {
		return Claims{}, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidBearer, len(token), maxBearerLen)
	}
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, fmt.Errorf("%w: not PAYLOAD.MAC", ErrInvalidBearer)
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, i.mac(payload)) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrInvalidBearer)
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload: %v", ErrInvalidBearer, err)
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrInvalidBearer, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Claims{}, fmt.Errorf("%w: data after the claims", ErrInvalidBearer)
	}
	switch c.Kind {
	case KindUser, KindToken, KindAnonymous, KindHtpasswd:
	default:
		return Claims{}, fmt.Errorf("%w: unknown kind %q", ErrInvalidBearer, c.Kind)
	}
	if exp := time.Unix(c.Expires, 0); !i.now().Before(exp) {
		return Claims{}, fmt.Errorf("%w at %s: request a new one (clients do this by themselves; else docker login again)", ErrBearerExpired, exp.UTC().Format(time.RFC3339))
	}
	return c, nil
}
