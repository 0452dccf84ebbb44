package attest

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzOpenEnvelope: a hostile envelope never verifies with a key that did
// not sign it, and never panics.
func FuzzOpenEnvelope(f *testing.F) {
	k, _ := GenerateKey(t0)
	st, _ := NewStatement("x", digest.FromString("x"), "https://example.com/p", map[string]int{"a": 1})
	env, _ := SignStatement(k, st)
	f.Add(env)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}`))
	other, _ := GenerateKey(t0)
	pub, _ := ParsePublicKey("other", other.PublicPEM())
	f.Fuzz(func(t *testing.T, data []byte) {
		_, signer, err := OpenEnvelope(data, []PublicKey{pub})
		if err == nil || signer != nil {
			t.Fatalf("verified with a key that signed nothing: %v", signer)
		}
	})
}

// FuzzParsePrivateKey: hostile key files are refused without a panic.
func FuzzParsePrivateKey(f *testing.F) {
	f.Add([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjoyLCJyIjoxLCJwIjoxfX19\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), []byte(""))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), []byte("x"))
	f.Fuzz(func(t *testing.T, data, password []byte) {
		_, _ = ParsePrivateKey(data, password)
	})
}

// FuzzParseSimpleSigning never panics.
func FuzzParseSimpleSigning(f *testing.F) {
	p, _ := SimpleSigningPayload("r", digest.FromString("x"), nil)
	f.Add(p)
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = ParseSimpleSigning(data) })
}
