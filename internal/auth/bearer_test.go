package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestIssuerRoundTrip(t *testing.T) {
	clock := newFakeClock()
	iss := NewIssuer(testKey, 5*time.Minute, clock.Now)
	tests := []struct {
		p    Principal
		want Claims
	}{
		{Principal{Name: "alice", Kind: KindUser, Grants: mustGrants(t, "admin")},
			Claims{Subject: "alice", Kind: KindUser, User: "alice"}},
		{Principal{Name: "token:ci", Kind: KindToken, TokenID: "0123456789ab"},
			Claims{Subject: "token:ci", Kind: KindToken, TokenID: "0123456789ab"}},
		{Principal{Name: "anonymous", Kind: KindAnonymous}, Claims{Subject: "anonymous", Kind: KindAnonymous}},
		{Principal{Name: "legacy", Kind: KindHtpasswd}, Claims{Subject: "legacy", Kind: KindHtpasswd, User: "legacy"}},
	}
	for _, tt := range tests {
		t.Run(tt.p.Kind, func(t *testing.T) {
			tok, exp := iss.Issue(tt.p)
			if !exp.Equal(clock.Now().Add(5 * time.Minute)) {
				t.Errorf("expires %v", exp)
			}
			if strings.Contains(tok, "admin") {
				t.Errorf("grants in the token")
			}
			c, err := iss.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.IssuedAt, tt.want.Expires = clock.Now().Unix(), exp.Unix()
			if c != tt.want {
				t.Fatalf("claims %+v, want %+v", c, tt.want)
			}
		})
	}
}

func TestIssuerRejects(t *testing.T) {
	clock := newFakeClock()
	iss := NewIssuer(testKey, time.Minute, clock.Now)
	tok, _ := iss.Issue(Principal{Name: "alice", Kind: KindUser})
	payload, mac, _ := strings.Cut(tok, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root","kind":"user","user":"root","iat":0,"exp":99999999999}`))
	badKind := NewIssuer(testKey, time.Minute, clock.Now)
	tests := []struct {
		name, tok string
		iss       *Issuer
		want      error
		msg       string
	}{
		{"empty", "", iss, ErrInvalidBearer, "not PAYLOAD.MAC"},
		{"no dot", payload, iss, ErrInvalidBearer, "not PAYLOAD.MAC"},
		{"forged payload", forged + "." + mac, iss, ErrInvalidBearer, "bad signature"},
		{"flipped mac", payload + "." + flip(mac), iss, ErrInvalidBearer, "bad signature"},
		{"mac not base64", payload + ".!!", iss, ErrInvalidBearer, "bad signature"},
		{"other key", tok, NewIssuer([]byte("another key, another key, other"), time.Minute, clock.Now), ErrInvalidBearer, "bad signature"},
		{"no key", tok, NewIssuer(nil, time.Minute, clock.Now), ErrInvalidBearer, "no signing key"},
		{"too long", strings.Repeat("a", 5000), iss, ErrInvalidBearer, "more than 4096"},
		{"unknown kind", signed(badKind, `{"sub":"x","kind":"root","iat":0,"exp":99999999999}`), iss, ErrInvalidBearer, `unknown kind "root"`},
		{"unknown field", signed(badKind, `{"sub":"x","kind":"user","grants":["admin"],"iat":0,"exp":99999999999}`), iss, ErrInvalidBearer, "unknown field"},
		{"not json", signed(badKind, `nope`), iss, ErrInvalidBearer, "claims"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.iss.Verify(tt.tok)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Verify = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
	clock.Advance(time.Minute)
	if _, err := iss.Verify(tok); !errors.Is(err, ErrBearerExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestNewIssuerDefaults(t *testing.T) {
	iss := NewIssuer(testKey, 0, nil)
	if iss.TTL() != DefaultBearerTTL {
		t.Fatalf("ttl %v", iss.TTL())
	}
	tok, exp := iss.Issue(Principal{Name: "a", Kind: KindUser})
	if time.Until(exp) <= 0 {
		t.Fatal("expires in the past")
	}
	if _, err := iss.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func signed(iss *Issuer, claims string) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(claims))
	return payload + "." + base64.RawURLEncoding.EncodeToString(iss.mac(payload))
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func FuzzVerify(f *testing.F) {
	clock := newFakeClock()
	iss := NewIssuer(testKey, time.Hour, clock.Now)
	tok, _ := iss.Issue(Principal{Name: "alice", Kind: KindUser})
	f.Add(tok)
	f.Add(signed(iss, `{"sub":"x","kind":"token","tid":"abc","iat":1,"exp":99999999999}`))
	f.Add(signed(iss, `{"sub":"x","kind":"user","iat":1,"exp":1}`))
	f.Add("a.b")
	f.Add(signed(iss, `{"sub":"x","kind":"user","iat":1,"exp":99999999999} trailing`))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := iss.Verify(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidBearer) && !errors.Is(err, ErrBearerExpired) {
				t.Fatalf("Verify(%q) error %v wraps neither error", s, err)
			}
			return
		}
		if time.Unix(c.Expires, 0).Before(clock.Now()) {
			t.Fatalf("expired claims accepted: %+v", c)
		}
		// Anything accepted must carry a valid MAC over its payload.
		payload, _, _ := strings.Cut(s, ".")
		if s != signed(iss, mustDecode(t, payload)) {
			t.Fatalf("accepted a token that is not canonical: %q", s)
		}
	})
}

func mustDecode(t *testing.T, s string) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
