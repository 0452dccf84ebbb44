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

// attachment is one manifest read as attached to a subject, once, for
// both List and Verify.
type attachment struct {
	form         string
	digest       digest.Digest
	artifactType string // a referrer's
	tag          string // a tag-scheme manifest's
	suffix       string
	ts           imgref.TagScheme
	// m is the parsed manifest; nil for a tag-scheme tag whose content is
	// not of its kind (imgref.Manifest.TagSchemeContent).
	m *imgref.Manifest
}

// attachments reads what is attached to the manifest subject in repo:
// its non-runnable referrers (referrers that are not are images), then
// the manifests of cosign's tags with the given suffixes.
func attachments(ctx context.Context, reg Reader, repo string, subject digest.Digest, suffixes ...string) ([]attachment, error) {
	var out []attachment
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
		out = append(out, attachment{form: FormReferrer, digest: r.Digest, artifactType: r.ArtifactType, m: m})
	}
	for _, suffix := range suffixes {
		tag := imgref.TagSchemeTag(subject, suffix)
		desc, body, err := reg.Manifest(ctx, repo, tag)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		a := attachment{form: FormTag, digest: desc.Digest, tag: tag, suffix: suffix}
		if ts, ok := imgref.ParseTagScheme(tag); ok {
			if m, err := imgref.ParseManifest(desc.MediaType, body); err == nil && m.TagSchemeContent(ts) {
				a.ts, a.m = ts, m
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// allSuffixes are the tag-scheme suffixes List reads; Verify reads those
// that hold signatures (SBOM tags hold none).
var (
	allSuffixes    = []string{imgref.SuffixSignature, imgref.SuffixAttestation, imgref.SuffixSBOM}
	signedSuffixes = []string{imgref.SuffixSignature, imgref.SuffixAttestation}
)

// List returns what is attached to the manifest subject in repo, in both
// forms, sorted by form, class and digest. Referrers that are not
// non-runnable artifacts (images naming a subject) are not listed: they
// are images.
func List(ctx context.Context, reg Reader, repo string, subject digest.Digest) ([]Attached, error) {
	atts, err := attachments(ctx, reg, repo, subject, allSuffixes...)
	if err != nil {
		return nil, err
	}
	return listed(atts), nil
}

// Inspect is Verify and List of one subject, reading what is attached
// once.
func Inspect(ctx context.Context, reg Reader, repo string, subject digest.Digest, o VerifyOptions) (*Report, []Attached, error) {
	atts, err := attachments(ctx, reg, repo, subject, allSuffixes...)
	if err != nil {
		return nil, nil, err
	}
	rep, err := verifyAttachments(ctx, reg, repo, subject, atts, o)
	if err != nil {
		return nil, nil, err
	}
	return rep, listed(atts), nil
}

// listed is List's answer from what attachments read.
func listed(atts []attachment) []Attached {
	var out []Attached
	for _, a := range atts {
		switch {
		case a.m == nil:
			// A cosign tag whose content is not cosign's.
		case a.form == FormReferrer:
			out = append(out, Attached{Digest: a.digest, Class: a.m.Class(), Form: FormReferrer, ArtifactType: a.artifactType})
		default:
			out = append(out, Attached{Digest: a.digest, Class: a.ts.Class(), Form: FormTag, Tag: a.tag, Layers: len(a.m.Layers)})
		}
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
	return out
}
