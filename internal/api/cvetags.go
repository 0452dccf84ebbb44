package api

import (
	"context"
	"errors"
	"fmt"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

// TagLister lists a repository's tags and resolves them; the registry
// implements it.
type TagLister interface {
	Tags(ctx context.Context, repo string) ([]string, error)
	Resolve(ctx context.Context, repo, ref string) (ocispec.Descriptor, error)
}

// maxTagsPerRepository bounds the tags one answer resolves in one
// repository; past it the answer says so (TagsTruncated).
const maxTagsPerRepository = 2000

// pageTags fills the tags of each image of a page as the registry knows
// them: the tags of its repository, and of its live/ counterpart once
// promoted, that point at its digest. Each repository is listed once per
// page. Without a TagLister the images keep no tags.
func (h *handler) pageTags(ctx context.Context, images []AffectedImage) (truncated bool, err error) {
	if h.Tags == nil {
		return false, nil
	}
	byRepo := map[string]map[string][]string{} // repository -> digest -> tags
	tagsOf := func(repo string) (map[string][]string, error) {
		if m, ok := byRepo[repo]; ok {
			return m, nil
		}
		m, cut, err := h.tagsByDigest(ctx, repo)
		if err != nil {
			return nil, err
		}
		truncated = truncated || cut
		for d, ts := range m {
			for i, t := range ts {
				ts[i] = repo + ":" + t
			}
			m[d] = ts
		}
		byRepo[repo] = m
		return m, nil
	}
	for i := range images {
		im := &images[i]
		repos := []string{im.Repository}
		if im.Promoted && !imgref.IsLive(im.Repository) {
			repos = append(repos, imgref.Rebase(im.Repository, imgref.Live))
		}
		im.Tags = []string{}
		for _, repo := range repos {
			m, err := tagsOf(repo)
			if err != nil {
				return false, err
			}
			im.Tags = append(im.Tags, m[im.Digest]...)
		}
		slices.Sort(im.Tags)
	}
	return truncated, nil
}

// tagsByDigest lists repo's tags (at most maxTagsPerRepository; truncated
// says there were more) by the digest each points at. A repository that
// does not exist has none. h.Tags must be set.
func (h *handler) tagsByDigest(ctx context.Context, repo string) (map[string][]string, bool, error) {
	m := map[string][]string{}
	tags, err := h.Tags.Tags(ctx, repo)
	if errors.Is(err, registry.ErrNotFound) {
		return m, false, nil // no repository (yet, or any more)
	}
	if err != nil {
		return nil, false, fmt.Errorf("tags of %s: %w", repo, err)
	}
	truncated := len(tags) > maxTagsPerRepository
	if truncated {
		tags = tags[:maxTagsPerRepository]
	}
	for _, t := range tags {
		desc, err := h.Tags.Resolve(ctx, repo, t)
		if errors.Is(err, registry.ErrNotFound) {
			continue // untagged meanwhile
		}
		if err != nil {
			return nil, false, fmt.Errorf("tag %s:%s: %w", repo, t, err)
		}
		d := desc.Digest.String()
		m[d] = append(m[d], t)
	}
	return m, truncated, nil
}
