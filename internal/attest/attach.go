package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

// Registry is what attest reads and writes: the manifests, blobs and
// referrers of a repository. *registry.Registry implements it in process
// (see InProcess); Remote implements the read half over the distribution
// API. A missing manifest or blob is an error wrapping ErrNotFound.
type Registry interface {
	Reader
	PutBlob(ctx context.Context, repo string, data []byte) (ocispec.Descriptor, error)
	PutManifest(ctx context.Context, repo, mediaType string, body []byte, tags ...string) (ocispec.Descriptor, error)
}

// Reader is the read half of Registry.
type Reader interface {
	// Manifest returns the descriptor and content of ref (tag or digest).
	Manifest(ctx context.Context, repo, ref string) (ocispec.Descriptor, []byte, error)
	// Referrers lists the manifests whose subject is the digest.
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error)
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
}

// ErrNotFound is a manifest or blob the registry does not have (the
// registry's own error, so that *registry.Registry implements Registry
// as it is).
var ErrNotFound = registry.ErrNotFound

// Artifact types drydock writes its referrers with (cosign's, so that
// cosign finds them with --experimental-oci11).
const (
	ArtifactTypeCosignAttestation = "application/vnd.dev.cosign.artifact.att.v1+json"
	// notaryPayloadType is the Notary Project's signed payload.
	notaryPayloadType = "application/vnd.cncf.notary.payload.v1+json"
	// AnnotationNotaryThumbprints lists the signing chain's SHA-256
	// thumbprints on a Notary Project signature manifest.
	AnnotationNotaryThumbprints = "io.cncf.notary.x509chain.thumbprint#S256"
	// maxTagSchemeLayers bounds a tag-scheme manifest's layers, as cosign
	// bounds what it reads.
	maxTagSchemeLayers = 1000
	// maxBlob bounds a signature, envelope or payload blob drydock reads.
	maxBlob = maxEnvelope
)

// WriteRequest says what to attach to a subject.
type WriteRequest struct {
	// Ref names the subject in signed payloads (cosign's
	// docker-reference), e.g. "live/nginx".
	Ref string
	// Signature asks for a cosign signature (simple signing) in both
	// forms: a referrer and the .sig tag.
	Signature bool
	// Notary asks for a Notary Project signature (JWS, a referrer).
	// NotaryMetadata is signed with it (the payload's annotations).
	Notary         bool
	NotaryMetadata map[string]string
	// Statements are signed as DSSE envelopes and attached in both
	// forms: one referrer each and a layer each of the .att tag.
	Statements []*Statement
	// Now dates the manifests and the Notary signature.
	Now time.Time
}

// Written lists what Write stored.
type Written struct {
	Referrers []ocispec.Descriptor `json:"referrers"`
	Tags      []string             `json:"tags,omitempty"`
}

// Write signs and attaches to the manifest subject in repo what req asks
// for, with key k. A registry write waits on storage (each is a synced
// file on the filesystem driver), so the writes go in two concurrent
// rounds, not one chain per piece: first every blob (the signed layers,
// the referrers' empty config, and the tag-scheme configs, which only
// need the layers' descriptors), then every manifest (one referrer per
// piece, and the .sig and .att tag-scheme manifests listing the same
// layers). An error leaves what was stored: blobs, or manifests each
// whole and valid alone.
func Write(ctx context.Context, reg Registry, repo string, subject ocispec.Descriptor, k *Key, req WriteRequest) (*Written, error) {
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	pieces, err := signPieces(k, subject, req)
	if err != nil {
		return &Written{}, err
	}
	// The tag-scheme forms: .sig lists the signature's layer, .att the
	// statements' layers.
	var sigLayers, attLayers []ocispec.Descriptor
	for _, p := range pieces {
		switch p.tagSuffix {
		case imgref.SuffixSignature:
			sigLayers = append(sigLayers, p.layer)
		case imgref.SuffixAttestation:
			attLayers = append(attLayers, p.layer)
		}
	}
	var tags []*tagSchemeWrite
	for _, t := range []struct {
		suffix string
		layers []ocispec.Descriptor
	}{{imgref.SuffixSignature, sigLayers}, {imgref.SuffixAttestation, attLayers}} {
		if len(t.layers) > 0 {
			tags = append(tags, &tagSchemeWrite{suffix: t.suffix, layers: t.layers})
		}
	}

	// Round 1: the blobs.
	var emptyConfig ocispec.Descriptor
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range pieces {
		g.Go(func() error {
			d, err := reg.PutBlob(gctx, repo, p.content)
			if err == nil && (d.Digest != p.layer.Digest || d.Size != p.layer.Size) {
				err = fmt.Errorf("the registry stored %s (%d bytes), want %s (%d bytes)", d.Digest, d.Size, p.layer.Digest, p.layer.Size)
			}
			if err != nil {
				return fmt.Errorf("attaching the %s of %s: %w", p.what, subject.Digest, err)
			}
			return nil
		})
	}
	g.Go(func() (err error) {
		emptyConfig, err = reg.PutBlob(gctx, repo, []byte("{}"))
		return err
	})
	for _, t := range tags {
		g.Go(func() error { return t.prepare(gctx, reg, repo, subject.Digest) })
	}
	if err := g.Wait(); err != nil {
		return &Written{}, err
	}

	// Round 2: the manifests.
	refs := make([]ocispec.Descriptor, len(pieces))
	g, gctx = errgroup.WithContext(ctx)
	for i, p := range pieces {
		g.Go(func() (err error) {
			if refs[i], err = putArtifact(gctx, reg, repo, p.artifactType, emptyConfig, []ocispec.Descriptor{p.layer}, &subject, p.annotations); err != nil {
				return fmt.Errorf("attaching the %s of %s: %w", p.what, subject.Digest, err)
			}
			return nil
		})
	}
	for _, t := range tags {
		g.Go(func() error { return t.commit(gctx, reg, repo) })
	}
	err = g.Wait()
	w := &Written{}
	for _, r := range refs {
		if r.Digest != "" {
			w.Referrers = append(w.Referrers, r)
		}
	}
	for _, t := range tags {
		if t.done {
			w.Tags = append(w.Tags, t.tag)
		}
	}
	return w, err
}

// piece is one signed thing Write attaches: a layer (its content and
// descriptor), and the referrer manifest's artifact type and annotations.
type piece struct {
	what         string // for messages
	content      []byte
	layer        ocispec.Descriptor
	artifactType string
	annotations  map[string]string
	tagSuffix    string // the tag-scheme manifest listing the layer, if any
}

// signPieces signs what req asks for, in a fixed order (the statements,
// the cosign signature, the Notary Project signature), concurrently: a
// key on a token signs each in its own session.
func signPieces(k *Key, subject ocispec.Descriptor, req WriteRequest) ([]piece, error) {
	created := req.Now.UTC().Format(time.RFC3339)
	n := len(req.Statements)
	sigSlot, notarySlot := -1, -1
	if req.Signature {
		sigSlot, n = n, n+1
	}
	if req.Notary {
		notarySlot, n = n, n+1
	}
	pieces := make([]piece, n)
	set := func(i int, p piece, layerType string, layerAnn map[string]string) {
		p.layer = ocispec.Descriptor{MediaType: layerType, Digest: digest.SHA256.FromBytes(p.content), Size: int64(len(p.content)), Annotations: layerAnn}
		p.annotations[ocispec.AnnotationCreated] = created
		pieces[i] = p
	}
	var g errgroup.Group
	if req.Signature {
		g.Go(func() error {
			payload, err := SimpleSigningPayload(req.Ref, subject.Digest, nil)
			if err != nil {
				return err
			}
			sig, err := k.Sign(payload)
			if err != nil {
				return err
			}
			set(sigSlot, piece{what: "signature", content: payload, artifactType: imgref.ArtifactTypeCosignSignature,
				annotations: map[string]string{}, tagSuffix: imgref.SuffixSignature},
				imgref.MediaTypeCosignSimpleSigning, map[string]string{AnnotationCosignSignature: b64(sig)})
			return nil
		})
	}
	if req.Notary {
		g.Go(func() error {
			env, err := notarySign(k, subject, req.NotaryMetadata, req.Now)
			if err != nil {
				return fmt.Errorf("signing %s for the Notary Project: %w", subject.Digest, err)
			}
			set(notarySlot, piece{what: "Notary Project signature", content: env, artifactType: imgref.ArtifactTypeNotarySignature,
				annotations: map[string]string{AnnotationNotaryThumbprints: thumbprints(k)}}, jws.MediaTypeEnvelope, nil)
			return nil
		})
	}
	for i, st := range req.Statements {
		g.Go(func() error {
			env, err := SignStatement(k, st)
			if err != nil {
				return err
			}
			set(i, piece{what: st.PredicateType + " attestation", content: env, artifactType: ArtifactTypeCosignAttestation,
				annotations: map[string]string{AnnotationPredicateType: st.PredicateType}, tagSuffix: imgref.SuffixAttestation},
				imgref.MediaTypeDSSEEnvelope, map[string]string{AnnotationPredicateType: st.PredicateType, AnnotationCosignSignature: ""})
			return nil
		})
	}
	return pieces, g.Wait()
}

// putArtifact stores an OCI 1.1 artifact manifest: an empty config (the
// blob emptyConfig, stored in repo) of the artifact type (as cosign
// writes its referrers), the layers, a subject.
func putArtifact(ctx context.Context, reg Registry, repo, artifactType string, emptyConfig ocispec.Descriptor, layers []ocispec.Descriptor, subject *ocispec.Descriptor, ann map[string]string) (ocispec.Descriptor, error) {
	cfg := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: emptyConfig.Digest, Size: emptyConfig.Size}
	if artifactType == imgref.ArtifactTypeCosignSignature || artifactType == ArtifactTypeCosignAttestation {
		cfg.MediaType = artifactType
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType, Config: cfg,
		Layers: layers, Subject: subject, Annotations: ann}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := reg.PutManifest(ctx, repo, ocispec.MediaTypeImageManifest, body)
	if err != nil {
		return d, err
	}
	d.ArtifactType = artifactType
	return d, nil
}

// tagSchemeConfig is the image config cosign writes for a tag-scheme
// manifest: no platform, a zero time, one diff ID and history entry per
// layer (the layers are not compressed, so a diff ID is the digest).
type tagSchemeConfig struct {
	Architecture string           `json:"architecture"`
	Created      string           `json:"created"`
	History      []map[string]any `json:"history"`
	OS           string           `json:"os"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	Config struct{} `json:"config"`
}

// AppendTagScheme adds layers (blobs already in repo) to the tag-scheme
// manifest of subject and suffix in repo (sha256-<hex>.sig, .att, .sbom),
// creating it when there is none: layers already there (same digest and
// annotations) are not added twice, and existing ones are kept, so a
// signature once attached is never dropped. It returns the tag.
func AppendTagScheme(ctx context.Context, reg Registry, repo string, subject digest.Digest, suffix string, layers []ocispec.Descriptor) (string, error) {
	t := &tagSchemeWrite{suffix: suffix, layers: layers}
	if err := t.prepare(ctx, reg, repo, subject); err != nil {
		return "", err
	}
	if err := t.commit(ctx, reg, repo); err != nil {
		return "", err
	}
	return t.tag, nil
}

// tagSchemeWrite adds layers to a tag-scheme manifest in two steps:
// prepare reads the manifest there and stores the merged config (the
// layers need not be stored yet), commit stores the manifest (they must
// be by then).
type tagSchemeWrite struct {
	suffix string
	layers []ocispec.Descriptor

	tag       string
	mediaType string
	body      []byte // nil: nothing to write
	done      bool   // the tag holds the layers
}

func (t *tagSchemeWrite) prepare(ctx context.Context, reg Registry, repo string, subject digest.Digest) error {
	t.tag = imgref.TagSchemeTag(subject, t.suffix)
	var have []ocispec.Descriptor
	t.mediaType = ocispec.MediaTypeImageManifest
	switch desc, body, err := reg.Manifest(ctx, repo, t.tag); {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		m, err := imgref.ParseManifest(desc.MediaType, body)
		if err != nil || !m.TagSchemeContent(imgref.TagScheme{Subject: subject, Suffix: t.suffix}) {
			return fmt.Errorf("%s:%s holds something else than cosign's %s content: not replaced", repo, t.tag, t.suffix)
		}
		have, t.mediaType = m.Layers, m.MediaType
	}
	merged := slices.Clone(have)
	for _, l := range t.layers {
		if !slices.ContainsFunc(merged, func(h ocispec.Descriptor) bool { return sameLayer(h, l) }) {
			merged = append(merged, l)
		}
	}
	if len(merged) == len(have) && len(have) > 0 {
		t.done = true
		return nil
	}
	if len(merged) > maxTagSchemeLayers {
		return fmt.Errorf("%s:%s would hold %d layers, over %d", repo, t.tag, len(merged), maxTagSchemeLayers)
	}
	cfg := tagSchemeConfig{Created: "0001-01-01T00:00:00Z", History: []map[string]any{}}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{}
	for _, l := range merged {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest.String())
		cfg.History = append(cfg.History, map[string]any{"created": "0001-01-01T00:00:00Z"})
	}
	cfgBody, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cd, err := reg.PutBlob(ctx, repo, cfgBody)
	if err != nil {
		return err
	}
	cd.MediaType = ocispec.MediaTypeImageConfig
	if t.mediaType == imgref.MediaTypeDockerManifest {
		cd.MediaType = imgref.MediaTypeDockerConfig
	}
	m := ocispec.Manifest{MediaType: t.mediaType, Config: cd, Layers: merged}
	m.SchemaVersion = 2
	t.body, err = json.Marshal(m)
	return err
}

func (t *tagSchemeWrite) commit(ctx context.Context, reg Registry, repo string) error {
	if t.body == nil {
		return nil
	}
	if _, err := reg.PutManifest(ctx, repo, t.mediaType, t.body, t.tag); err != nil {
		return fmt.Errorf("writing %s:%s: %w", repo, t.tag, err)
	}
	t.done = true
	return nil
}

// sameLayer reports whether two layer descriptors are the same entry:
// same blob and same annotations (the signature lives in them).
func sameLayer(a, b ocispec.Descriptor) bool {
	if a.Digest != b.Digest || len(a.Annotations) != len(b.Annotations) {
		return false
	}
	for k, v := range a.Annotations {
		if b.Annotations[k] != v {
			return false
		}
	}
	return true
}

// notarySign makes a Notary Project JWS envelope over the subject's
// descriptor, with metadata as its annotations.
func notarySign(k *Key, subject ocispec.Descriptor, metadata map[string]string, now time.Time) ([]byte, error) {
	target := subject
	if len(metadata) > 0 {
		target.Annotations = metadata
	}
	payload, err := json.Marshal(struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}{target})
	if err != nil {
		return nil, err
	}
	signer, err := newNotarySigner(k)
	if err != nil {
		return nil, err
	}
	env, err := signature.NewEnvelope(jws.MediaTypeEnvelope)
	if err != nil {
		return nil, err
	}
	return env.Sign(&signature.SignRequest{
		Payload:       signature.Payload{ContentType: notaryPayloadType, Content: payload},
		Signer:        signer,
		SigningTime:   now.Truncate(time.Second),
		SigningScheme: signature.SigningSchemeX509,
		SigningAgent:  buildinfo.Get().UserAgent(),
	})
}

// thumbprints is the JSON list of the chain's SHA-256 thumbprints.
func thumbprints(k *Key) string {
	var tps []string
	for _, c := range k.chain {
		sum := sha256.Sum256(c.Raw)
		tps = append(tps, hex.EncodeToString(sum[:]))
	}
	b, _ := json.Marshal(tps)
	return string(b)
}
