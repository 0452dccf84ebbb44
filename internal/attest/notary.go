package attest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/notaryproject/notation-core-go/signature"
)

// notarySigner makes Notary Project (JWS) signatures with any
// crypto.Signer, a key in memory or on a PKCS#11 token: notation-core-go's
// local signer takes only Go's own key types. It hashes with the hash the
// certificate's key spec names (SHA-256 for P-256 and RSA-2048, ...) and
// signs as JWS wants: ECDSA as the fixed-size R||S, RSA as PSS with a salt
// the size of the hash.
type notarySigner struct {
	k    *Key
	spec signature.KeySpec
}

func newNotarySigner(k *Key) (*notarySigner, error) {
	spec, err := signature.ExtractKeySpec(k.chain[0])
	if err != nil {
		return nil, err
	}
	return &notarySigner{k: k, spec: spec}, nil
}

// KeySpec implements signature.Signer.
func (s *notarySigner) KeySpec() (signature.KeySpec, error) { return s.spec, nil }

// Sign implements signature.Signer: the raw JWS signature of payload
// and the certificate chain.
func (s *notarySigner) Sign(payload []byte) ([]byte, []*x509.Certificate, error) {
	h := s.spec.SignatureAlgorithm().Hash()
	if !h.Available() {
		return nil, nil, fmt.Errorf("hash %v is not available", h)
	}
	hh := h.New()
	hh.Write(payload)
	sum := hh.Sum(nil)
	switch pub := s.k.signer.Public().(type) {
	case *ecdsa.PublicKey:
		der, err := s.k.signer.Sign(rand.Reader, sum, h)
		if err != nil {
			return nil, nil, fmt.Errorf("signing with key %s: %w", s.k.id, err)
		}
		raw, err := ecdsaRaw(der, (pub.Curve.Params().BitSize+7)/8)
		if err != nil {
			return nil, nil, fmt.Errorf("signing with key %s: %w", s.k.id, err)
		}
		return raw, s.k.chain, nil
	case *rsa.PublicKey:
		sig, err := s.k.signer.Sign(rand.Reader, sum, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		if err != nil {
			return nil, nil, fmt.Errorf("signing with key %s: %w", s.k.id, err)
		}
		return sig, s.k.chain, nil
	}
	return nil, nil, fmt.Errorf("key type %T cannot make Notary Project signatures", s.k.signer.Public())
}

// ecdsaRaw turns an ASN.1 ECDSA signature into JWS's R||S, each size
// bytes.
func ecdsaRaw(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) > 0 {
		return nil, errors.New("the signer returned a malformed ECDSA signature")
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 8*size || sig.S.BitLen() > 8*size {
		return nil, errors.New("the signer returned an ECDSA signature out of range")
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
