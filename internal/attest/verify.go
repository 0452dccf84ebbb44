package attest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Forms of attached content.
const (
	FormReferrer = "referrer" // an OCI 1.1 referrer (subject)
	FormTag      = "tag"      // cosign's tag scheme
)

// Formats of signatures.
const (
	FormatCosign = "cosign" // simple signing payload, signature in an annotation
	FormatDSSE   = "dsse"   // an in-toto statement in a DSSE envelope (cosign attest)
	FormatNotary = "notary" // Notary Project JWS or COSE envelope
	FormatBundle = "sigstore-bundle"
)

// Signature is one signature or attestation found on a subject, and what
// checking it gave.
type Signature struct {
	// Form is FormReferrer or FormTag; Manifest the manifest holding it
	// (and Tag its tag in the tag scheme).
	Form     string        `json:"form"`
	Manifest digest.Digest `json:"manifest"`
	Tag      string        `json:"tag,omitempty"`
	// Format is FormatCosign, FormatDSSE, FormatNotary or FormatBundle.
	Format string `json:"format"`
	// PredicateType is an attestation's predicate type.
	PredicateType string `json:"predicateType,omitempty"`
	// Verified is set when a key or trusted certificate verified it and
	// it is about the subject.
	Verified bool `json:"verified"`
	// Signer names who signed: the key's name and ID, or the
	// certificate's subject.
	Signer string `json:"signer,omitempty"`
	KeyID  string `json:"keyID,omitempty"`
	// Error says why it is not verified.
	Error string `json:"error,omitempty"`
	// Statement is a verified attestation's statement.
	Statement *Statement `json:"-"`
	// Metadata is a verified Notary Project signature's signed metadata.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Report is what Verify found on one subject.
type Report struct {
	Repository string        `json:"repository"`
	Subject    digest.Digest `json:"subject"`
	Signatures []Signature   `json:"signatures"`
}

// VerifyOptions say which signers to trust.
type VerifyOptions struct {
	// Keys are the public keys to verify with (drydock's among them, as
	// the caller names it).
	Keys []PublicKey
	// Roots are trusted certificates for Notary Project signatures: a
	// signature whose chain ends in one of them (or whose leaf is one)
	// is verified. Identity, when set, must equal the leaf's subject (its
	// distinguished name or common name).
	Roots    []*x509.Certificate
	Identity string
	// Now is the time certificates are checked at (default time.Now);
	// a Notary Project signature's own signing time is used when the
	// chain was valid then.
	Now func() time.Time
}

// Verify finds every signature and attestation of the manifest subject in
// repo, in both forms (referrers, cosign's tag scheme), and checks each
// against o. A signature that does not verify is listed with the reason;
// it is not an error.
func Verify(ctx context.Context, reg Reader, repo string, subject digest.Digest, o VerifyOptions) (*Report, error) {
	atts, err := attachments(ctx, reg, repo, subject, signedSuffixes...)
	if err != nil {
		return nil, err
	}
	return verifyAttachments(ctx, reg, repo, subject, atts, o)
}

// verifyAttachments is Verify of what attachments read (SBOM tags, which
// hold no signature, are passed over).
func verifyAttachments(ctx context.Context, reg Reader, repo string, subject digest.Digest, atts []attachment, o VerifyOptions) (*Report, error) {
	rep := &Report{Repository: repo, Subject: subject, Signatures: []Signature{}}
	for _, a := range atts {
		var sigs []Signature
		var err error
		switch {
		case a.form == FormReferrer:
			sigs, err = verifyManifest(ctx, reg, repo, subject, FormReferrer, a.digest, "", a.m, o)
		case !slices.Contains(signedSuffixes, a.suffix):
			continue
		case a.m == nil:
			sigs = []Signature{{Form: FormTag, Manifest: a.digest, Tag: a.tag,
				Error: "the tag is cosign's, its content is not (left unread)"}}
		default:
			sigs, err = verifyManifest(ctx, reg, repo, a.ts.Subject, FormTag, a.digest, a.tag, a.m, o)
		}
		if err != nil {
			return nil, err
		}
		rep.Signatures = append(rep.Signatures, sigs...)
	}
	slices.SortStableFunc(rep.Signatures, func(a, b Signature) int {
		return cmp.Or(strings.Compare(a.Form, b.Form), strings.Compare(a.Format, b.Format),
			strings.Compare(a.PredicateType, b.PredicateType), strings.Compare(a.Signer, b.Signer))
	})
	return rep, nil
}

// verifyManifest checks each signature layer of one manifest.
func verifyManifest(ctx context.Context, reg Reader, repo string, subject digest.Digest, form string, md digest.Digest, tag string, m *imgref.Manifest, o VerifyOptions) ([]Signature, error) {
	var out []Signature
	for _, l := range m.Layers {
		s := Signature{Form: form, Manifest: md, Tag: tag}
		var check func([]byte)
		switch base := strings.ToLower(strings.TrimSpace(strings.Split(l.MediaType, ";")[0])); base {
		case imgref.MediaTypeCosignSimpleSigning:
			s.Format = FormatCosign
			check = func(b []byte) { checkCosign(&s, b, l.Annotations, subject, o) }
		case imgref.MediaTypeDSSEEnvelope:
			s.Format, s.PredicateType = FormatDSSE, l.Annotations[AnnotationPredicateType]
			check = func(b []byte) { checkDSSE(&s, b, subject, o) }
		case jws.MediaTypeEnvelope, "application/cose":
			s.Format = FormatNotary
			check = func(b []byte) { checkNotary(&s, base, b, subject, o) }
		case imgref.ArtifactTypeSigstoreBundle:
			s.Format, s.Error = FormatBundle, "sigstore bundles are not verified by drydock (use cosign verify --new-bundle-format)"
		default:
			continue
		}
		if check != nil {
			b, err := readBlob(ctx, reg, repo, l)
			if err != nil {
				if !isNotFound(err) {
					return nil, err
				}
				s.Error = "its content is missing from " + repo
			} else {
				check(b)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func checkCosign(s *Signature, payload []byte, ann map[string]string, subject digest.Digest, o VerifyOptions) {
	sig, err := decodeB64(ann[AnnotationCosignSignature])
	if err != nil || len(sig) == 0 {
		s.Error = "no signature in the layer's annotations"
		return
	}
	var signer *PublicKey
	for i := range o.Keys {
		if VerifySignature(o.Keys[i].Key, payload, sig) == nil {
			signer = &o.Keys[i]
			break
		}
	}
	if signer == nil {
		s.Error = errNoKey.Error()
		if ann[AnnotationCosignCertificate] != "" {
			s.Error += " (a certificate-based cosign signature: verify it with cosign and the transparency log)"
		}
		return
	}
	s.Signer, s.KeyID = signer.Name, signer.ID
	p, err := ParseSimpleSigning(payload)
	if err != nil {
		s.Error = err.Error()
		return
	}
	if got := p.Critical.Image.DockerManifestDigest; got != subject.String() {
		s.Error = fmt.Sprintf("signed by %s, but for another digest: %s", signer.Name, got)
		return
	}
	s.Verified = true
}

func checkDSSE(s *Signature, env []byte, subject digest.Digest, o VerifyOptions) {
	st, signer, err := OpenEnvelope(env, o.Keys)
	if st != nil && s.PredicateType == "" {
		s.PredicateType = st.PredicateType
	}
	if err != nil {
		s.Error = err.Error()
		return
	}
	s.Signer, s.KeyID = signer.Name, signer.ID
	if st.PredicateType != "" {
		s.PredicateType = st.PredicateType
	}
	if !st.About(subject) {
		s.Error = fmt.Sprintf("signed by %s, but its subject is another digest: %s", signer.Name, strings.Join(st.SubjectDigests(), ", "))
		return
	}
	s.Verified, s.Statement = true, st
}

func checkNotary(s *Signature, mediaType string, data []byte, subject digest.Digest, o VerifyOptions) {
	env, err := signature.ParseEnvelope(mediaType, data)
	if err != nil {
		s.Error = "Notary Project envelope: " + err.Error()
		return
	}
	content, err := env.Verify()
	if err != nil {
		s.Error = "Notary Project envelope: " + err.Error()
		return
	}
	chain := content.SignerInfo.CertificateChain
	if len(chain) == 0 {
		s.Error = "Notary Project envelope without a certificate"
		return
	}
	leaf := chain[0]
	s.Signer = leaf.Subject.String()
	leafID, _ := KeyID(leaf.PublicKey)
	trusted := false
	for _, k := range o.Keys {
		if k.ID == leafID {
			trusted, s.Signer, s.KeyID = true, k.Name, k.ID
		}
	}
	if !trusted && len(o.Roots) > 0 {
		if err := chainTrusted(chain, o.Roots, content.SignerInfo.SignedAttributes.SigningTime); err != nil {
			s.Error = "certificate chain of " + leaf.Subject.String() + ": " + err.Error()
			return
		}
		if o.Identity != "" && o.Identity != leaf.Subject.String() && o.Identity != leaf.Subject.CommonName {
			s.Error = fmt.Sprintf("signed by %s, not by identity %q", leaf.Subject, o.Identity)
			return
		}
		trusted = true
	}
	if !trusted {
		s.Error = "signed by certificate " + leaf.Subject.String() + ", trusted by none of the keys or roots given"
		return
	}
	var payload struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}
	if err := json.Unmarshal(content.Payload.Content, &payload); err != nil {
		s.Error = "Notary Project payload: " + err.Error()
		return
	}
	if payload.TargetArtifact.Digest != subject {
		s.Error = fmt.Sprintf("signed by %s, but for another digest: %s", s.Signer, payload.TargetArtifact.Digest)
		return
	}
	s.Verified, s.Metadata = true, payload.TargetArtifact.Annotations
}

// chainTrusted checks that chain ends in (or its leaf is) one of roots,
// at the signing time.
func chainTrusted(chain, roots []*x509.Certificate, at time.Time) error {
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		if bytes.Equal(r.Raw, chain[0].Raw) {
			return nil
		}
		pool.AddCert(r)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	return err
}

// readBlob reads a layer's blob, bounded, and checks its digest.
func readBlob(ctx context.Context, reg Reader, repo string, l ocispec.Descriptor) ([]byte, error) {
	if l.Size > maxBlob {
		return nil, fmt.Errorf("blob %s: %d bytes, over %d", l.Digest, l.Size, maxBlob)
	}
	rc, _, err := reg.OpenBlob(ctx, repo, l.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxBlob+1))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", l.Digest, err)
	}
	if l.Digest.Validate() != nil || l.Digest.Algorithm().FromBytes(b) != l.Digest {
		return nil, fmt.Errorf("blob %s: content does not match its digest", l.Digest)
	}
	return b, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func decodeB64(s string) ([]byte, error) { return base64Decode(strings.TrimSpace(s)) }

// Signers sums up a report: who signed what, verified only, sorted.
func (r *Report) Signers() []string {
	var out []string
	for _, s := range r.Signatures {
		if s.Verified {
			what := "signature"
			if s.PredicateType != "" {
				what = s.PredicateType
			}
			out = append(out, s.Signer+": "+what)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SignedBy reports whether a verified signature of the subject (cosign or
// Notary Project; attestations do not count) is by the key ID.
func (r *Report) SignedBy(keyID string) bool {
	return slices.ContainsFunc(r.Signatures, func(s Signature) bool {
		return s.Verified && s.KeyID == keyID && s.Format != FormatDSSE
	})
}

// Attestation returns the first verified attestation of predicateType by
// the key ID ("" for any key).
func (r *Report) Attestation(predicateType, keyID string) *Signature {
	for i, s := range r.Signatures {
		if s.Verified && s.Format == FormatDSSE && s.PredicateType == predicateType && (keyID == "" || s.KeyID == keyID) {
			return &r.Signatures[i]
		}
	}
	return nil
}
