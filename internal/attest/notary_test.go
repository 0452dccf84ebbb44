package attest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/attest/attesttest"
)

// TestNotarySignatureKeyTypes: drydock's Notary Project signer (JWS:
// ECDSA as R||S of the curve's size, RSA as PSS, each with the hash the
// key spec names) makes signatures notation-go's verifier accepts for
// every key type drydock signs with, not only the default P-256, and
// refuses with another key's certificate.
func TestNotarySignatureKeyTypes(t *testing.T) {
	reg, host := attesttest.Registry(t)
	stranger, err := attest.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		gen  func() (crypto.Signer, error)
	}{
		{"RSA-2048", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
		{"RSA-3072", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) }},
		{"P-384", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }},
		{"P-521", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P521(), rand.Reader) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.gen()
			if err != nil {
				t.Fatal(err)
			}
			k, err := attest.NewKey(s, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			subj := attesttest.PutImage(t, reg, "live/app", tc.name, `{"key":"`+tc.name+`"}`)
			w, err := attest.Write(t.Context(), reg, "live/app", subj, k, attest.WriteRequest{Ref: "live/app", Notary: true})
			if err != nil || len(w.Referrers) != 1 {
				t.Fatalf("write: %+v %v", w, err)
			}
			if err := attesttest.NotaryVerify(t, host, "live/app", subj.Digest.String(), k.Chain()...); err != nil {
				t.Errorf("notation-go's verifier refused the %s signature: %v", tc.name, err)
			}
			if err := attesttest.NotaryVerify(t, host, "live/app", subj.Digest.String(), stranger.Chain()...); err == nil {
				t.Errorf("notation-go's verifier accepted the %s signature with another certificate", tc.name)
			}
		})
	}
}
