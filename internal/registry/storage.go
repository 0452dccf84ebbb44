package registry

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/imgref"
)

// isNotFound reports whether err means the path does not exist on the driver.
func isNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}

// AtomicPutter is an optional upgrade of a storage driver whose PutContent
// replaces a path's content atomically (an S3 object, a database row), so
// that readers never see a partial file without staging and a move.
type AtomicPutter interface {
	AtomicPut(path string) bool
}

// putAtomic writes content so that readers see either the old content or the
// new, never a partial file: it is written under a private temporary path
// and then moved into place (a rename on the filesystem driver), unless the
// driver's PutContent is atomic for p already.
func (r *Registry) putAtomic(ctx context.Context, p string, content []byte) error {
	if ap, ok := r.driver.(AtomicPutter); ok && ap.AtomicPut(p) {
		if err := r.driver.PutContent(ctx, p, content); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		return nil
	}
	tmp := path.Join(tmpRoot(), newUploadID())
	if err := r.driver.PutContent(ctx, tmp, content); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := r.driver.Move(ctx, tmp, p); err != nil {
		_ = r.driver.Delete(ctx, tmp)
		return fmt.Errorf("moving %s into place: %w", p, err)
	}
	return nil
}

// writeLink records d at the link path p.
func (r *Registry) writeLink(ctx context.Context, p string, d digest.Digest) error {
	return r.putAtomic(ctx, p, []byte(d.String()))
}

// readLink reads the digest stored at link path p. A missing link, or one
// whose content is not a valid digest (a torn write by another
// implementation), is reported as ErrNotFound.
func (r *Registry) readLink(ctx context.Context, p string) (digest.Digest, error) {
	b, err := r.driver.GetContent(ctx, p)
	if err != nil {
		if isNotFound(err) {
			return "", ErrNotFound
		}
		return "", fmt.Errorf("reading link %s: %w", p, err)
	}
	d, err := imgref.ParseDigest(strings.TrimSpace(string(b)))
	if err != nil {
		r.log.Warn("ignoring corrupt link", "path", p, "err", err)
		return "", ErrNotFound
	}
	return d, nil
}

// blobSize returns the size of the blob's data, or ErrNotFound.
func (r *Registry) blobSize(ctx context.Context, d digest.Digest) (int64, error) {
	fi, err := r.driver.Stat(ctx, blobDataPath(d))
	if err != nil {
		if isNotFound(err) {
			return 0, ErrNotFound
		}
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	if fi.IsDir() {
		return 0, ErrNotFound
	}
	return fi.Size(), nil
}

// blobSizeDirect is blobSize read through the direct driver: what a write
// checks after protecting the blob (see Barrier), which must see a
// collector's deletion even when a cache in front of the driver remembers
// the blob.
func (r *Registry) blobSizeDirect(ctx context.Context, d digest.Digest) (int64, error) {
	fi, err := r.direct.Stat(ctx, blobDataPath(d))
	if err != nil {
		if isNotFound(err) {
			return 0, ErrNotFound
		}
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	if fi.IsDir() {
		return 0, ErrNotFound
	}
	return fi.Size(), nil
}

// guard enters the barrier for one write.
func (r *Registry) guard(ctx context.Context) (Guard, error) {
	g, err := r.barrier.Enter(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBarrier, err)
	}
	r.writes.begin()
	return &meteredGuard{Guard: g, w: &r.writes}, nil
}

// protect is Guard.Protect with the error marked as the barrier's.
func protect(ctx context.Context, g Guard, keys ...string) error {
	if err := g.Protect(ctx, keys...); err != nil {
		return fmt.Errorf("%w: %w", ErrBarrier, err)
	}
	return nil
}

// exists reports whether p exists on the driver.
func (r *Registry) exists(ctx context.Context, p string) (bool, error) {
	_, err := r.driver.Stat(ctx, p)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", p, err)
}

// list returns the base names below p, sorted by the caller if needed; a
// missing directory is an empty list.
func (r *Registry) list(ctx context.Context, p string) ([]string, error) {
	entries, err := r.driver.List(ctx, p)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing %s: %w", p, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, path.Base(e))
	}
	return names, nil
}

// deletePath removes p, treating an already missing path as success.
func (r *Registry) deletePath(ctx context.Context, p string) error {
	defer r.writes.changed.Store(true)
	if err := r.driver.Delete(ctx, p); err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting %s: %w", p, err)
	}
	return nil
}

// deleteLeaf removes directory dir, which holds file alone (a blob's
// data, a link), treating an already missing path as success. On the
// filesystem driver it deletes the file and then the empty directory,
// where a recursive delete would also open and read the directory: the
// sweep deletes one such directory per blob and per link.
func (r *Registry) deleteLeaf(ctx context.Context, dir, file string) error {
	if file != "" && r.driver.Name() == "filesystem" {
		if err := r.deletePath(ctx, path.Join(dir, file)); err != nil {
			return err
		}
	}
	return r.deletePath(ctx, dir)
}

// linkedBlobDirect is linkedBlob with the blob's existence read through the
// direct driver (links are never cached).
func (r *Registry) linkedBlobDirect(ctx context.Context, name string, d digest.Digest) (int64, error) {
	for _, p := range []string{layerLinkPath(name, d), revisionLinkPath(name, d)} {
		got, err := r.readLink(ctx, p)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if got != d {
			continue
		}
		return r.blobSizeDirect(ctx, d)
	}
	return 0, ErrNotFound
}

// linkedBlob resolves a blob in a repository: the repository must link it
// (as a layer, or as a manifest revision) and its data must exist.
func (r *Registry) linkedBlob(ctx context.Context, name string, d digest.Digest) (int64, error) {
	for _, p := range []string{layerLinkPath(name, d), revisionLinkPath(name, d)} {
		got, err := r.readLink(ctx, p)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if got != d {
			continue
		}
		return r.blobSize(ctx, d)
	}
	return 0, ErrNotFound
}
