package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Tests written for mutants that survived `make mutate` (see
// test/mutation/SURVIVORS.md).

// TestIssuerKeyLengthBoundary: a 16-byte key is the shortest that signs
// and verifies; 15 bytes is no key.
func TestIssuerKeyLengthBoundary(t *testing.T) {
	clock := newFakeClock()
	ok := NewIssuer([]byte(strings.Repeat("k", 16)), time.Minute, clock.Now)
	tok, _ := ok.Issue(Principal{Name: "a", Kind: KindUser})
	if _, err := ok.Verify(tok); err != nil {
		t.Errorf("16-byte key: %v", err)
	}
	short := NewIssuer([]byte(strings.Repeat("k", 15)), time.Minute, clock.Now)
	if _, err := short.Verify(tok); !errors.Is(err, ErrInvalidBearer) || !strings.Contains(err.Error(), "no signing key") {
		t.Errorf("15-byte key: %v, want 'no signing key'", err)
	}
}

// TestBearerLengthBoundary: a token of exactly maxBearerLen bytes is read
// (and refused for what it holds); one byte more is refused for its length.
func TestBearerLengthBoundary(t *testing.T) {
	iss := NewIssuer(testKey, time.Minute, newFakeClock().Now)
	_, err := iss.Verify(strings.Repeat("a", maxBearerLen))
	if !errors.Is(err, ErrInvalidBearer) || strings.Contains(err.Error(), "more than") {
		t.Errorf("%d bytes: %v, want a refusal that is not about the length", maxBearerLen, err)
	}
	_, err = iss.Verify(strings.Repeat("a", maxBearerLen+1))
	if !errors.Is(err, ErrInvalidBearer) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("%d bytes: %v, want 'more than'", maxBearerLen+1, err)
	}
}

// TestLastUsedWrittenAtTheInterval: last_used_at is written again exactly
// lastUsedInterval after the previous write, not only after more.
func TestLastUsedWrittenAtTheInterval(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	s := newTestStore(t, clock)
	secret, _, err := s.CreateToken(ctx, TokenSpec{Name: "ci", Grants: mustGrants(t, "pull:live")})
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		toks, err := s.Tokens(ctx)
		if err != nil || len(toks) != 1 {
			t.Fatalf("tokens %v, %v", toks, err)
		}
		return toks[0].LastUsedAt
	}
	if _, err := s.AuthenticateToken(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(clock.Now()) {
		t.Fatalf("first use: last_used_at %v, want %v", got, clock.Now())
	}
	clock.Advance(lastUsedInterval)
	if _, err := s.AuthenticateToken(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(clock.Now()) {
		t.Errorf("use exactly %s later: last_used_at %v, want %v", lastUsedInterval, got, clock.Now())
	}
}
