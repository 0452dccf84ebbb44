package oci

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/imgref"
)

// Namespaces of the drydock server; anything else is NamespaceOther.
const (
	NamespaceQuarantine = imgref.Quarantine
	NamespaceLive       = imgref.Live
	NamespaceOther      = "other"
)

// Repository is one repository on the server with its tags. This is the
// schema of "drydock images --json" (an array of Repository, sorted by
// name; tags sorted by name; platforms in index order).
type Repository struct {
	// Namespace is "quarantine", "live" or "other" (the first path
	// component when it is one of the first two).
	Namespace string `json:"namespace"`
	// Name is the full repository path, e.g. quarantine/nginx.
	Name string `json:"name"`
	Tags []Tag  `json:"tags"`
}

// Tag is one tag of a repository.
type Tag struct {
	Tag       string `json:"tag"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Kind is "image" or "index" (or, for a tag of cosign's tag scheme
	// listed on its own, "signature", "attestation" or "sbom").
	Kind string `json:"kind"`
	// Size is config plus layers in bytes (compressed, as stored); for an
	// index, the sum over its images.
	Size int64 `json:"size"`
	// Platforms lists an index's images.
	Platforms []PlatformImage `json:"platforms,omitempty"`
	// Error is set when the tag could not be read; the other fields may
	// then be empty.
	Error string `json:"error,omitempty"`
	// Verdict is the gate's verdict on the digest (pending, pass, fail,
	// exempt), set by callers that asked the server's gate; empty when
	// the gate has none.
	Verdict string `json:"verdict,omitempty"`
	// Promoted is set when the digest has been promoted to live/.
	Promoted bool `json:"promoted,omitempty"`
	// Attached lists what belongs to the digest (signatures,
	// attestations, SBOMs...), as referrers and as cosign tag-scheme tags
	// (those tags are listed here, not as tags of their own).
	Attached []Attached `json:"attached,omitempty"`
	// A tag of cosign's scheme whose subject the repository does not
	// list stays a tag, of Kind "signature", "attestation" or "sbom".

	scheme *imgref.TagScheme // a tag of cosign's tag scheme
}

// PlatformImage is one image of an index.
type PlatformImage struct {
	// Platform is os/arch[/variant], or "unknown" when the index does not say.
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// NamespaceOf returns the namespace of a repository path.
func NamespaceOf(repo string) string {
	switch ns := imgref.Namespace(repo); ns {
	case NamespaceQuarantine, NamespaceLive:
		return ns
	}
	return NamespaceOther
}

// ListImages lists every repository, tag, digest and size on the server,
// from its /v2/_catalog and tags APIs. Results are sorted.
func ListImages(ctx context.Context, srv Server, opts ...Option) ([]Repository, error) {
	opts = append(srv.Options(), opts...)
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	reg := srv.Registry
	cat, err := newClient(ctx, reg, o, "registry:catalog:*")
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", srv, err)
	}
	names, err := cat.list(ctx, "/v2/_catalog?n=1000", "repositories")
	if err != nil {
		return nil, fmt.Errorf("listing repositories of %s: %w", srv, err)
	}
	sort.Strings(names)
	repos := make([]Repository, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs)
	for i, n := range names {
		g.Go(func() error {
			r, err := listRepository(gctx, reg, o, n)
			if err != nil {
				return fmt.Errorf("listing %s: %w", n, err)
			}
			repos[i] = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Repositories without tags (e.g. after deletions) are left out.
	out := repos[:0]
	for _, r := range repos {
		if len(r.Tags) > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

func listRepository(ctx context.Context, reg name.Registry, o *options, repo string) (Repository, error) {
	c, err := newClient(ctx, reg, o, repoScope(repo, "pull"))
	if err != nil {
		return Repository{}, err
	}
	tags, err := c.list(ctx, "/v2/"+repo+"/tags/list?n=1000", "tags")
	if err != nil {
		return Repository{}, err
	}
	sort.Strings(tags)
	r := Repository{Namespace: NamespaceOf(repo), Name: repo, Tags: make([]Tag, 0, len(tags))}
	sizes := map[string]int64{} // image manifest digest -> size
	for _, t := range tags {
		r.Tags = append(r.Tags, describeTag(ctx, c, repo, t, sizes))
	}
	r.Tags = attach(ctx, c, repo, r.Tags)
	return r, nil
}

func describeTag(ctx context.Context, c *client, repo, tag string, sizes map[string]int64) Tag {
	out := Tag{Tag: tag}
	raw, mt, err := c.getManifest(ctx, repo, tag)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Digest = digestOf(raw).String()
	out.MediaType = string(mt)
	if mt.IsIndex() {
		out.Kind = "index"
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			out.Error = fmt.Sprintf("parsing index: %v", err)
			return out
		}
		out.Platforms = []PlatformImage{}
		for _, d := range im.Manifests {
			p := PlatformImage{Platform: "unknown", Digest: d.Digest.String(), MediaType: string(d.MediaType)}
			if d.Platform != nil {
				p.Platform = d.Platform.String()
			}
			if d.MediaType.IsImage() || d.MediaType == "" {
				size, err := imageSize(ctx, c, repo, d.Digest.String(), sizes)
				if err != nil {
					out.Error = fmt.Sprintf("reading %s: %v", d.Digest, err)
				}
				p.Size = size
			}
			out.Size += p.Size
			out.Platforms = append(out.Platforms, p)
		}
		return out
	}
	out.Kind = "image"
	if out.scheme = tagScheme(tag, string(mt), raw); out.scheme != nil {
		out.Kind = out.scheme.Class()
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		out.Error = fmt.Sprintf("parsing manifest: %v", err)
		return out
	}
	out.Size = manifestSize(m)
	return out
}

func imageSize(ctx context.Context, c *client, repo, dgst string, cache map[string]int64) (int64, error) {
	if s, ok := cache[dgst]; ok {
		return s, nil
	}
	raw, _, err := c.getManifest(ctx, repo, dgst)
	if err != nil {
		return 0, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	s := manifestSize(m)
	cache[dgst] = s
	return s, nil
}

func manifestSize(m *v1.Manifest) int64 {
	s := m.Config.Size
	for _, l := range m.Layers {
		s += l.Size
	}
	return s
}
