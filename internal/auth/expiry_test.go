package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTokenExpiresAtItsInstant: a token is usable up to the nanosecond
// before its expiry and refused from the expiry instant on, through the
// store (as Basic credentials and DRYDOCK_TOKEN reach it) and for a bearer
// token issued from it earlier; Expired and Status agree.
func TestTokenExpiresAtItsInstant(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newTestStore(t, clock)
	expiry := clock.Now().Add(time.Hour)
	secret, tok, err := s.CreateToken(ctx, TokenSpec{Name: "edge", Grants: mustGrants(t, "pull:live"), ExpiresAt: expiry})
	if err != nil {
		t.Fatal(err)
	}

	clock.Advance(time.Hour - time.Nanosecond)
	if tok.Expired(clock.Now()) || tok.Status(clock.Now()) != "active" {
		t.Errorf("a nanosecond before expiry: Expired %v, Status %q", tok.Expired(clock.Now()), tok.Status(clock.Now()))
	}
	if _, err := s.AuthenticateToken(ctx, secret); err != nil {
		t.Fatalf("a nanosecond before expiry: %v", err)
	}
	if _, err := s.TokenPrincipal(ctx, tok.ID); err != nil {
		t.Fatalf("bearer lookup a nanosecond before expiry: %v", err)
	}

	clock.Advance(time.Nanosecond)
	if !clock.Now().Equal(expiry) {
		t.Fatalf("clock %v, want the expiry %v", clock.Now(), expiry)
	}
	if !tok.Expired(clock.Now()) || tok.Status(clock.Now()) != "expired" {
		t.Errorf("at the expiry instant: Expired %v, Status %q", tok.Expired(clock.Now()), tok.Status(clock.Now()))
	}
	var te *TokenExpiredError
	if _, err := s.AuthenticateToken(ctx, secret); !errors.As(err, &te) || !te.ExpiredAt.Equal(expiry) {
		t.Errorf("at the expiry instant: AuthenticateToken = %v, want a *TokenExpiredError at %v", err, expiry)
	}
	if _, err := s.TokenPrincipal(ctx, tok.ID); !errors.As(err, &te) {
		t.Errorf("at the expiry instant: TokenPrincipal = %v, want a *TokenExpiredError", err)
	}
}

// TestBearerExpiresAtItsInstant: a bearer token verifies up to the second
// before its exp claim and not at it.
func TestBearerExpiresAtItsInstant(t *testing.T) {
	clock := newFakeClock()
	iss := NewIssuer(testKey, time.Minute, clock.Now)
	tok, exp := iss.Issue(Principal{Name: "a", Kind: KindUser})
	clock.Advance(exp.Sub(clock.Now()) - time.Second)
	if _, err := iss.Verify(tok); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := iss.Verify(tok); !errors.Is(err, ErrBearerExpired) {
		t.Fatalf("at exp: %v, want ErrBearerExpired", err)
	}
}
