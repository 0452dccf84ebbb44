package oci

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Attached is content that belongs to a listed digest rather than being an
// image: a signature, attestation, SBOM, VEX document or scan report, as
// an OCI 1.1 referrer or in cosign's tag scheme.
type Attached struct {
	Digest string `json:"digest"`
	// Class is one of imgref.Classes.
	Class string `json:"class"`
	// Form is "referrer" or "tag" (cosign's tag scheme; Tag names it).
	Form         string `json:"form"`
	ArtifactType string `json:"artifactType,omitempty"`
	Tag          string `json:"tag,omitempty"`
}

// attach moves the tags of cosign's tag scheme under the tags of their
// subject (when the repository lists it; otherwise they stay, as what
// they are) and lists each digest's referrers under its tags.
func attach(ctx context.Context, c *client, repo string, tags []Tag) []Tag {
	subjects := map[string]bool{}
	for _, t := range tags {
		if t.scheme == nil && t.Digest != "" {
			subjects[t.Digest] = true
		}
	}
	var out []Tag
	scheme := map[string][]Attached{}
	for _, t := range tags {
		if t.scheme != nil && subjects[t.scheme.Subject.String()] {
			s := t.scheme.Subject.String()
			scheme[s] = append(scheme[s], Attached{Digest: t.Digest, Class: t.scheme.Class(), Form: "tag", Tag: t.Tag})
			continue
		}
		out = append(out, t)
	}
	refs := map[string][]Attached{}
	for i := range out {
		d := out[i].Digest
		if out[i].scheme != nil || d == "" {
			continue
		}
		if _, ok := refs[d]; !ok {
			refs[d] = referrers(ctx, c, repo, d)
		}
		out[i].Attached = append(slices.Clone(refs[d]), scheme[d]...)
	}
	return out
}

// referrers lists the referrers of d in repo (OCI 1.1 referrers API); a
// registry without the API, or an error, lists none.
func referrers(ctx context.Context, c *client, repo, d string) []Attached {
	resp, err := c.do(ctx, http.MethodGet, c.url(repo, "referrers", d), nil, 0, nil, http.StatusOK)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body, 4<<20, "referrers")
	if err != nil {
		return nil
	}
	var idx struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if json.Unmarshal(b, &idx) != nil {
		return nil
	}
	var out []Attached
	for _, m := range idx.Manifests {
		out = append(out, Attached{Digest: m.Digest, Class: imgref.ClassOfType(m.ArtifactType), Form: "referrer", ArtifactType: m.ArtifactType})
	}
	return out
}

// tagScheme reports what a tag of cosign's scheme holding raw names.
func tagScheme(tag string, mt string, raw []byte) *imgref.TagScheme {
	if !strings.HasSuffix(tag, ".sig") && !strings.HasSuffix(tag, ".att") && !strings.HasSuffix(tag, ".sbom") {
		return nil
	}
	ts, ok := imgref.TagSchemeArtifact(tag, mt, raw)
	if !ok {
		return nil
	}
	return &ts
}
