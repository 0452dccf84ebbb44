package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

// In-process access for drydock's own services (the gate's scanner and
// promotion). These calls go straight to storage: they are not subject to
// the HTTP middleware (authentication, the live/ write guard), so their
// callers are responsible for deciding whether a write is allowed.

// maxCopyDepth bounds the nesting followed by Copy (index -> manifest ->
// referrer -> referrer of a referrer ...).
const maxCopyDepth = 8

// Manifest returns the descriptor and content of the manifest ref (a tag
// or digest) in repo. A missing manifest is ErrNotFound.
func (r *Registry) Manifest(ctx context.Context, repo, ref string) (ocispec.Descriptor, []byte, error) {
	if !imgref.ValidRepository(repo) {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s:%s: invalid repository name: %w", repo, ref, ErrNotFound)
	}
	desc, err := r.resolveManifest(ctx, repo, ref)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s:%s: %w", repo, ref, err)
	}
	if desc.Size > r.maxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s@%s: %d bytes, over the %d-byte limit", repo, desc.Digest, desc.Size, r.maxManifestSize)
	}
	body, err := r.driver.GetContent(ctx, blobDataPath(desc.Digest))
	if err != nil {
		if isNotFound(err) {
			return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s@%s: %w", repo, desc.Digest, ErrNotFound)
		}
		return ocispec.Descriptor{}, nil, fmt.Errorf("reading manifest %s@%s: %w", repo, desc.Digest, err)
	}
	if desc.Digest.Algorithm().FromBytes(body) != desc.Digest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s@%s: stored content does not match its digest", repo, desc.Digest)
	}
	return desc, body, nil
}

// PutBlob stores data as a blob linked into repo and returns its
// descriptor (media type left to the caller). It is meant for small
// artifacts drydock writes itself (scan reports).
func (r *Registry) PutBlob(ctx context.Context, repo string, data []byte) (ocispec.Descriptor, error) {
	if !imgref.ValidRepository(repo) {
		return ocispec.Descriptor{}, fmt.Errorf("put blob into %q: invalid repository name", repo)
	}
	d := digest.SHA256.FromBytes(data)
	if size, err := r.blobSize(ctx, d); err != nil || size != int64(len(data)) {
		if err := r.putAtomic(ctx, blobDataPath(d), data); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("storing blob %s: %w", d, err)
		}
	}
	if err := r.writeLink(ctx, layerLinkPath(repo, d), d); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("linking blob %s into %s: %w", d, repo, err)
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(data))}, nil
}

// PutManifest stores a manifest in repo under the given tags, exactly as a
// push through the API would (same validation, referrers, listeners).
func (r *Registry) PutManifest(ctx context.Context, repo, mediaType string, body []byte, tags ...string) (ocispec.Descriptor, error) {
	if !imgref.ValidRepository(repo) {
		return ocispec.Descriptor{}, fmt.Errorf("put manifest into %q: invalid repository name", repo)
	}
	if int64(len(body)) > r.maxManifestSize {
		return ocispec.Descriptor{}, fmt.Errorf("put manifest into %s: %d bytes, over the %d-byte limit", repo, len(body), r.maxManifestSize)
	}
	for _, t := range tags {
		if !imgref.ValidTag(t) {
			return ocispec.Descriptor{}, fmt.Errorf("put manifest into %s: invalid tag %q", repo, t)
		}
	}
	desc, _, err := r.storeManifest(ctx, repo, mediaType, body, "", tags)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("put manifest into %s: %w", repo, err)
	}
	return desc, nil
}

// CopyResult says what Copy did.
type CopyResult struct {
	// Digest is the copied manifest's digest (the same in both repositories).
	Digest digest.Digest `json:"digest"`
	// Manifests counts the manifests stored in the destination: the
	// manifest, an index's children and the referrers.
	Manifests int `json:"manifests"`
	// BlobsLinked counts blobs linked into the destination; no blob data is
	// copied or uploaded again.
	BlobsLinked int `json:"blobsLinked"`
	// Referrers lists the referrers copied along (scan reports, SBOMs,
	// signatures, VEX documents), by digest.
	Referrers []ocispec.Descriptor `json:"referrers,omitempty"`
}

// Copy copies the manifest d from one repository to another by digest,
// with the same bytes and so the same digest, and tags it with tags in the
// destination. Blobs are linked, not copied. An index's child manifests
// are copied first, and every referrer of each copied manifest (recursively,
// to a bounded depth) after its subject, so nothing in the destination
// ever points at something missing.
func (r *Registry) Copy(ctx context.Context, from, to string, d digest.Digest, tags ...string) (CopyResult, error) {
	if !imgref.ValidRepository(from) || !imgref.ValidRepository(to) {
		return CopyResult{}, fmt.Errorf("copy %s -> %s: invalid repository name", from, to)
	}
	for _, t := range tags {
		if !imgref.ValidTag(t) {
			return CopyResult{}, fmt.Errorf("copy into %s: invalid tag %q", to, t)
		}
	}
	res := CopyResult{Digest: d}
	seen := map[digest.Digest]bool{}
	if err := r.copyManifest(ctx, from, to, d, tags, 0, seen, &res, false); err != nil {
		return CopyResult{}, fmt.Errorf("copy %s@%s -> %s: %w", from, d, to, err)
	}
	return res, nil
}

func (r *Registry) copyManifest(ctx context.Context, from, to string, d digest.Digest, tags []string, depth int, seen map[digest.Digest]bool, res *CopyResult, isReferrer bool) error {
	if depth > maxCopyDepth {
		return fmt.Errorf("manifest %s: nested deeper than %d levels", d, maxCopyDepth)
	}
	if seen[d] {
		return nil
	}
	seen[d] = true
	desc, body, err := r.Manifest(ctx, from, d.String())
	if err != nil {
		return err
	}
	info, err := parseManifest(desc.MediaType, body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d, err)
	}
	for _, b := range info.Blobs {
		ok, err := r.mount(ctx, to, b.Digest, from)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("manifest %s: blob %s: %w", d, b.Digest, ErrNotFound)
		}
		res.BlobsLinked++
	}
	for _, m := range info.Manifests {
		if err := r.copyManifest(ctx, from, to, m.Digest, nil, depth+1, seen, res, false); err != nil {
			return err
		}
	}
	stored, _, err := r.storeManifest(ctx, to, desc.MediaType, body, d, tags)
	if err != nil {
		return err
	}
	res.Manifests++
	if isReferrer {
		stored.ArtifactType = info.ArtifactType
		res.Referrers = append(res.Referrers, stored)
	}
	refs, err := r.referrers(ctx, from, d, "")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	for _, ref := range refs {
		if err := r.copyManifest(ctx, from, to, ref.Digest, nil, depth+1, seen, res, true); err != nil {
			return fmt.Errorf("referrer %s of %s: %w", ref.Digest, d, err)
		}
	}
	return nil
}

// OpenBlob opens the blob d linked in repo for reading.
func (r *Registry) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	size, err := r.linkedBlob(ctx, repo, d)
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s@%s: %w", repo, d, err)
	}
	rc, err := r.driver.Reader(ctx, blobDataPath(d), 0)
	if err != nil {
		return nil, 0, fmt.Errorf("opening blob %s@%s: %w", repo, d, err)
	}
	return rc, size, nil
}
