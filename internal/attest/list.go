package attest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Attached is one piece of content that belongs to a subject: a
// non-runnable referrer, or cosign tag-scheme content.
type Attached struct {
	Digest       digest.Digest `json:"digest"`
	Class        string        `json:"class"` // see imgref.Classes
	Form         string        `json:"form"`  // FormReferrer or FormTag
	ArtifactType string        `json:"artifactType,omitempty"`
	Tag          string        `json:"tag,omitempty"`
	// Layers counts the entries (signatures, attestations) of a
	// tag-scheme manifest.
	Layers int `json:"layers,omitempty"`
}

// List returns what is attached to the manifest subject in repo, in both
// forms, sorted by form, class and digest. Referrers that are not
// non-runnable artifacts (images naming a subject) are not listed: they
// are images.
func List(ctx context.Context, reg Reader, repo string, subject digest.Digest) ([]Attached, error) {
	var out []Attached
	refs, err := reg.Referrers(ctx, repo, subject, "")
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, subject, err)
	}
	for _, r := range refs {
		desc, body, err := reg.Manifest(ctx, repo, r.Digest.String())
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, err
		}
		m, err := imgref.ParseManifest(desc.MediaType, body)
		if err != nil || !m.NonRunnable() {
			continue
		}
		out = append(out, Attached{Digest: r.Digest, Class: m.Class(), Form: FormReferrer, ArtifactType: r.ArtifactType})
	}
	for _, suffix := range []string{imgref.SuffixSignature, imgref.SuffixAttestation, imgref.SuffixSBOM} {
		tag := imgref.TagSchemeTag(subject, suffix)
		desc, body, err := reg.Manifest(ctx, repo, tag)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ts, ok := imgref.TagSchemeArtifact(tag, desc.MediaType, body)
		if !ok {
			continue
		}
		m, _ := imgref.ParseManifest(desc.MediaType, body)
		out = append(out, Attached{Digest: desc.Digest, Class: ts.Class(), Form: FormTag, Tag: tag, Layers: len(m.Layers)})
	}
	slices.SortFunc(out, func(a, b Attached) int {
		if c := strings.Compare(a.Form, b.Form); c != 0 {
			return c
		}
		if c := strings.Compare(a.Class, b.Class); c != 0 {
			return c
		}
		return strings.Compare(a.Digest.String(), b.Digest.String())
	})
	return out, nil
}
