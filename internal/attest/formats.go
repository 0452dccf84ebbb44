package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// The formats cosign verifies, written and read by drydock's own code:
// a few structs and a byte layout each (a dependency on sigstore's
// libraries would bring far more than these).

// Annotations on cosign's signature and attestation layers.
const (
	AnnotationCosignSignature   = "dev.cosignproject.cosign/signature"
	AnnotationCosignCertificate = "dev.sigstore.cosign/certificate"
	AnnotationCosignChain       = "dev.sigstore.cosign/chain"
	AnnotationPredicateType     = "predicateType"
	// cosign's simple signing payload type.
	simpleSigningType = "cosign container image signature"
	// InTotoPayloadType is the DSSE payload type of in-toto statements.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// InTotoStatementV1 is the in-toto statement type drydock writes.
	InTotoStatementV1 = "https://in-toto.io/Statement/v1"
)

// SimpleSigning is cosign's signature payload: it names the signed
// manifest digest (and, informatively, a reference).
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// SimpleSigningPayload returns cosign's payload for the manifest d,
// referred to as ref, with optional annotations.
func SimpleSigningPayload(ref string, d digest.Digest, optional map[string]any) ([]byte, error) {
	var p SimpleSigning
	p.Critical.Identity.DockerReference = ref
	p.Critical.Image.DockerManifestDigest = d.String()
	p.Critical.Type = simpleSigningType
	p.Optional = optional
	return json.Marshal(p)
}

// ParseSimpleSigning reads a simple signing payload.
func ParseSimpleSigning(b []byte) (*SimpleSigning, error) {
	var p SimpleSigning
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("simple signing payload: %w", err)
	}
	if p.Critical.Type != simpleSigningType {
		return nil, fmt.Errorf("simple signing payload: type %q, want %q", p.Critical.Type, simpleSigningType)
	}
	return &p, nil
}

// Statement is an in-toto statement (v1; v0.1 reads the same).
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is a statement's subject: a name and its digests.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// NewStatement returns a statement about the manifest d named name.
func NewStatement(name string, d digest.Digest, predicateType string, predicate any) (*Statement, error) {
	raw, err := json.Marshal(predicate)
	if err != nil {
		return nil, fmt.Errorf("predicate %s: %w", predicateType, err)
	}
	return &Statement{Type: InTotoStatementV1, PredicateType: predicateType, Predicate: raw,
		Subject: []Subject{{Name: name, Digest: map[string]string{string(d.Algorithm()): d.Encoded()}}}}, nil
}

// About reports whether one of the statement's subjects is the manifest d.
func (s *Statement) About(d digest.Digest) bool {
	for _, sub := range s.Subject {
		if sub.Digest[string(d.Algorithm())] == d.Encoded() {
			return true
		}
	}
	return false
}

// SubjectDigests lists the statement's subject digests, for messages.
func (s *Statement) SubjectDigests() []string {
	var out []string
	for _, sub := range s.Subject {
		for alg, hex := range sub.Digest {
			out = append(out, alg+":"+hex)
		}
	}
	return out
}

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string        `json:"payloadType"`
	Payload     string        `json:"payload"` // base64
	Signatures  []EnvelopeSig `json:"signatures"`
}

// EnvelopeSig is one signature of a DSSE envelope.
type EnvelopeSig struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64
}

// PAE is DSSE's pre-authentication encoding of a payload: what is signed.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// SignStatement signs a statement into a DSSE envelope (JSON). The key ID
// is left empty, as cosign writes it.
func SignStatement(k *Key, st *Statement) ([]byte, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding statement: %w", err)
	}
	sig, err := k.Sign(PAE(InTotoPayloadType, payload))
	if err != nil {
		return nil, err
	}
	return json.Marshal(Envelope{PayloadType: InTotoPayloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []EnvelopeSig{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
}

// maxEnvelope bounds an envelope or payload drydock reads.
const maxEnvelope = 32 << 20

// OpenEnvelope verifies a DSSE envelope with one of keys and returns the
// statement and the key that signed it. errNoKey means no key verified
// any signature (the statement is still returned, unverified, for the
// message).
func OpenEnvelope(data []byte, keys []PublicKey) (*Statement, *PublicKey, error) {
	if len(data) > maxEnvelope {
		return nil, nil, fmt.Errorf("DSSE envelope of %d bytes, over %d", len(data), maxEnvelope)
	}
	var env Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, nil, fmt.Errorf("DSSE envelope: payload type %q, want %q", env.PayloadType, InTotoPayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("DSSE envelope payload: %w", err)
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, nil, fmt.Errorf("in-toto statement: %w", err)
	}
	pae := PAE(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		for i := range keys {
			if VerifySignature(keys[i].Key, pae, sig) == nil {
				return &st, &keys[i], nil
			}
		}
	}
	return &st, nil, errNoKey
}

// errNoKey is a signature that none of the keys verifies.
var errNoKey = errors.New("signed by none of the keys given")

// Sign signs message as cosign does: ECDSA over SHA-256 (ASN.1), RSA
// PKCS#1 v1.5 over SHA-256.
func (k *Key) Sign(message []byte) ([]byte, error) {
	sum := sha256.Sum256(message)
	sig, err := k.signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing with key %s: %w", k.id, err)
	}
	return sig, nil
}

// VerifySignature checks sig over message with pub as cosign does with
// --key: ECDSA (ASN.1) over SHA-256 whatever the curve, RSA PKCS#1 v1.5 or PSS over
// SHA-256, or Ed25519.
func VerifySignature(pub crypto.PublicKey, message, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(message)
		if !ecdsa.VerifyASN1(k, sum[:], sig) {
			return errBadSignature
		}
		return nil
	case *rsa.PublicKey:
		sum := sha256.Sum256(message)
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil || rsa.VerifyPSS(k, crypto.SHA256, sum[:], sig, nil) == nil {
			return nil
		}
		return errBadSignature
	case ed25519.PublicKey:
		if !ed25519.Verify(k, message, sig) {
			return errBadSignature
		}
		return nil
	}
	return fmt.Errorf("public key type %T is not supported", pub)
}

var errBadSignature = errors.New("signature does not verify")

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
