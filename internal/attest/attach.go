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
// for, with key k. The pieces are independent and written concurrently
// (a registry write waits on storage, not on the CPU): first the
// referrers, then the tag-scheme manifests that list the same layers. An
// error leaves what was stored (each piece is whole and valid alone).
func Write(ctx context.Context, reg Registry, repo string, subject ocispec.Descriptor, k *Key, req WriteRequest) (*Written, error) {
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	created := req.Now.UTC().Format(time.RFC3339)
	// One slot per referrer: its layer and manifest, in a fixed order.
	type slot struct {
		layer, manifest ocispec.Descriptor
	}
	n := len(req.Statements)
	sigSlot, notarySlot := -1, -1
	if req.Signature {
		sigSlot, n = n, n+1
	}
	if req.Notary {
		notarySlot, n = n, n+1
	}
	slots := make([]slot, n)
	put := func(i int, artifactType string, layer []byte, layerType string, layerAnn, ann map[string]string) error {
		l, err := reg.PutBlob(ctx, repo, layer)
		if err != nil {
			return err
		}
		l.MediaType, l.Annotations = layerType, layerAnn
		ann[ocispec.AnnotationCreated] = created
		d, err := putArtifact(ctx, reg, repo, artifactType, []ocispec.Descriptor{l}, &subject, ann)
		slots[i] = slot{layer: l, manifest: d}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	ctx = gctx
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
			ann := map[string]string{AnnotationCosignSignature: b64(sig)}
			if err := put(sigSlot, imgref.ArtifactTypeCosignSignature, payload, imgref.MediaTypeCosignSimpleSigning, ann, map[string]string{}); err != nil {
				return fmt.Errorf("attaching the signature of %s: %w", subject.Digest, err)
			}
			return nil
		})
	}
	if req.Notary {
		g.Go(func() error {
			env, err := notarySign(k, subject, req.NotaryMetadata, req.Now)
			if err != nil {
				return fmt.Errorf("signing %s for the Notary Project: %w", subject.Digest, err)
			}
			ann := map[string]string{AnnotationNotaryThumbprints: thumbprints(k)}
			if err := put(notarySlot, imgref.ArtifactTypeNotarySignature, env, jws.MediaTypeEnvelope, nil, ann); err != nil {
				return fmt.Errorf("attaching the Notary Project signature of %s: %w", subject.Digest, err)
			}
			return nil
		})
	}
	for i, st := range req.Statements {
		g.Go(func() error {
			env, err := SignStatement(k, st)
			if err != nil {
				return err
			}
			layerAnn := map[string]string{AnnotationPredicateType: st.PredicateType, AnnotationCosignSignature: ""}
			if err := put(i, ArtifactTypeCosignAttestation, env, imgref.MediaTypeDSSEEnvelope, layerAnn,
				map[string]string{AnnotationPredicateType: st.PredicateType}); err != nil {
				return fmt.Errorf("attaching the %s attestation of %s: %w", st.PredicateType, subject.Digest, err)
			}
			return nil
		})
	}
	err := g.Wait()
	w := &Written{}
	for _, sl := range slots {
		if sl.manifest.Digest != "" {
			w.Referrers = append(w.Referrers, sl.manifest)
		}
	}
	if err != nil {
		return w, err
	}
	// The tag-scheme forms list the same layers.
	var tags [2]string
	g, ctx = errgroup.WithContext(ctx)
	if req.Signature {
		g.Go(func() (err error) {
			tags[0], err = AppendTagScheme(ctx, reg, repo, subject.Digest, imgref.SuffixSignature, []ocispec.Descriptor{slots[sigSlot].layer})
			return err
		})
	}
	if len(req.Statements) > 0 {
		var atts []ocispec.Descriptor
		for i := range req.Statements {
			atts = append(atts, slots[i].layer)
		}
		g.Go(func() (err error) {
			tags[1], err = AppendTagScheme(ctx, reg, repo, subject.Digest, imgref.SuffixAttestation, atts)
			return err
		})
	}
	err = g.Wait()
	for _, t := range tags {
		if t != "" {
			w.Tags = append(w.Tags, t)
		}
	}
	return w, err
}

// putArtifact stores an OCI 1.1 artifact manifest: an empty config of the
// artifact type (as cosign writes its referrers), the layers, a subject.
func putArtifact(ctx context.Context, reg Registry, repo, artifactType string, layers []ocispec.Descriptor, subject *ocispec.Descriptor, ann map[string]string) (ocispec.Descriptor, error) {
	cfg, err := reg.PutBlob(ctx, repo, []byte("{}"))
	if err != nil {
		return cfg, err
	}
	cfg.MediaType = ocispec.MediaTypeEmptyJSON
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
	tag := imgref.TagSchemeTag(subject, suffix)
	var have []ocispec.Descriptor
	mediaType := ocispec.MediaTypeImageManifest
	switch desc, body, err := reg.Manifest(ctx, repo, tag); {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return "", err
	default:
		m, err := imgref.ParseManifest(desc.MediaType, body)
		if err != nil || !m.TagSchemeContent(imgref.TagScheme{Subject: subject, Suffix: suffix}) {
			return "", fmt.Errorf("%s:%s holds something else than cosign's %s content: not replaced", repo, tag, suffix)
		}
		have, mediaType = m.Layers, m.MediaType
	}
	merged := slices.Clone(have)
	for _, l := range layers {
		if !slices.ContainsFunc(merged, func(h ocispec.Descriptor) bool { return sameLayer(h, l) }) {
			merged = append(merged, l)
		}
	}
	if len(merged) == len(have) && len(have) > 0 {
		return tag, nil
	}
	if len(merged) > maxTagSchemeLayers {
		return "", fmt.Errorf("%s:%s would hold %d layers, over %d", repo, tag, len(merged), maxTagSchemeLayers)
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
		return "", err
	}
	cd, err := reg.PutBlob(ctx, repo, cfgBody)
	if err != nil {
		return "", err
	}
	cd.MediaType = ocispec.MediaTypeImageConfig
	if mediaType == imgref.MediaTypeDockerManifest {
		cd.MediaType = imgref.MediaTypeDockerConfig
	}
	m := ocispec.Manifest{MediaType: mediaType, Config: cd, Layers: merged}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if _, err := reg.PutManifest(ctx, repo, mediaType, body, tag); err != nil {
		return "", fmt.Errorf("writing %s:%s: %w", repo, tag, err)
	}
	return tag, nil
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
