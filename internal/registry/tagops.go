package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/imgref"
)

// ErrTagMoved is returned by DeleteTag when the tag no longer points at
// the digest the caller decided on.
var ErrTagMoved = errors.New("the tag points at another manifest now")

// DeleteTag removes tag from repo, in process, if it still points at want
// (any digest when want is empty): untagging only, the manifest stays
// (other tags may share it; a collection deletes it once nothing reaches
// it). A missing tag is ErrNotFound; one pointing elsewhere, ErrTagMoved.
func (r *Registry) DeleteTag(ctx context.Context, repo, tag string, want digest.Digest) error {
	if !imgref.ValidRepository(repo) || !imgref.ValidTag(tag) {
		return fmt.Errorf("delete tag %s:%s: invalid name: %w", repo, tag, ErrNotFound)
	}
	got, err := r.readLink(ctx, tagLinkPath(repo, tag))
	if err != nil {
		return fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
	}
	if want != "" && got != want {
		return fmt.Errorf("delete tag %s:%s: %w (%s, not %s)", repo, tag, ErrTagMoved, got, want)
	}
	if err := r.deletePath(ctx, tagDir(repo, tag)); err != nil {
		return fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
	}
	return nil
}

// TagWritten returns when repo's tag was last written, as the storage
// records it (the modification time of its link).
func (r *Registry) TagWritten(ctx context.Context, repo, tag string) (time.Time, error) {
	if !imgref.ValidRepository(repo) || !imgref.ValidTag(tag) {
		return time.Time{}, fmt.Errorf("tag %s:%s: invalid name: %w", repo, tag, ErrNotFound)
	}
	fi, err := r.driver.Stat(ctx, tagLinkPath(repo, tag))
	if err != nil {
		if isNotFound(err) {
			return time.Time{}, fmt.Errorf("tag %s:%s: %w", repo, tag, ErrNotFound)
		}
		return time.Time{}, fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	return fi.ModTime(), nil
}
