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

// maxCopyDepth bounds the referrer chains followed by Copy (manifest ->
// referrer -> referrer of a referrer ...); imgref.Walk bounds the nesting
// of indexes.
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
	g, err := r.guard(ctx)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("put blob into %s: %w", repo, err)
	}
	defer g.Done()
	if err := protect(ctx, g, BlobKey(d), LayerKey(repo, d)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("put blob into %s: %w", repo, err)
	}
	if size, err := r.blobSizeDirect(ctx, d); err != nil || size != int64(len(data)) {
		if err := r.putAtomic(ctx, blobDataPath(d), data); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("storing blob %s: %w", d, err)
		}
	}
	isNew := r.linkIsNew(ctx, layerLinkPath(repo, d))
	if err := r.writeLink(ctx, layerLinkPath(repo, d), d); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("linking blob %s into %s: %w", d, repo, err)
	}
	if isNew {
		r.addUsage(ctx, repo, int64(len(data)))
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
	// LeftBehind lists the referrers CopyOptions.Referrer did not follow.
	LeftBehind []LeftBehind `json:"leftBehind,omitempty"`
}

// LeftBehind is a referrer Copy did not copy, and why.
type LeftBehind struct {
	Referrer ocispec.Descriptor `json:"referrer"`
	Subject  digest.Digest      `json:"subject"`
	Reason   string             `json:"reason"`
}

// Follow is CopyOptions.Referrer's decision on one referrer.
type Follow struct {
	// Copy says whether the referrer is copied along (with its content and
	// its own referrers).
	Copy bool
	// Reason says why not, when Copy is false.
	Reason string
}

// CopyOptions are the settings of Copy. The zero value copies the
// manifest with every referrer and no tag.
type CopyOptions struct {
	// Tags are the destination tags of the copied manifest.
	Tags []string
	// Check, when set, is called with every manifest the copy would store
	// as part of a root's content: the root (the copied manifest, or a
	// referrer being copied along), an index's children and nested
	// indexes' children (see imgref.Walk). Its error stops the copy.
	Check func(ctx context.Context, root digest.Digest, n imgref.Node) error
	// Referrer, when set, decides whether a referrer of a manifest being
	// copied is copied along; nil copies every referrer.
	Referrer func(ctx context.Context, subject digest.Digest, n imgref.Node) (Follow, error)
	// BeforeWrite, when set, is called with the roots about to be
	// written (the copied manifest first, then the referrers copied
	// along), once every Check and Referrer decision is made and before
	// the first write; its error stops the copy.
	BeforeWrite func(ctx context.Context, roots []ocispec.Descriptor) error
}

// maxCopyManifests bounds the manifests one Copy stores: content and
// referrers together.
const maxCopyManifests = 4 * imgref.MaxManifests

// Copy copies the manifest d from one repository to another by digest,
// with the same bytes and so the same digest, and tags it with o.Tags in
// the destination. Blobs are linked, not copied. Every manifest reachable
// from d through index content is copied, children before the index that
// lists them, and every referrer of each copied manifest (recursively, to
// a bounded depth) after its subject, so nothing in the destination ever
// points at something missing. Nothing is written until the whole copy
// is planned: every Check passed and every Referrer decided.
func (r *Registry) Copy(ctx context.Context, from, to string, d digest.Digest, o CopyOptions) (CopyResult, error) {
	if !imgref.ValidRepository(from) || !imgref.ValidRepository(to) {
		return CopyResult{}, fmt.Errorf("copy %s -> %s: invalid repository name", from, to)
	}
	for _, t := range o.Tags {
		if !imgref.ValidTag(t) {
			return CopyResult{}, fmt.Errorf("copy into %s: invalid tag %q", to, t)
		}
	}
	c := &copier{r: r, from: from, to: to, o: o, seen: map[digest.Digest]bool{}, res: CopyResult{Digest: d},
		mediaTypes: map[digest.Digest]string{}}
	if err := c.copy(ctx, d); err != nil {
		return CopyResult{}, fmt.Errorf("copy %s@%s -> %s: %w", from, d, to, err)
	}
	return c.res, nil
}

// copier is one Copy: it plans every manifest to store, then stores them.
type copier struct {
	r        *Registry
	from, to string
	o        CopyOptions
	seen     map[digest.Digest]bool
	trees    []copyTree
	count    int
	res      CopyResult
	// mediaTypes are the media types the manifests are stored with in
	// the source, which the copies keep.
	mediaTypes map[digest.Digest]string
}

// copyTree is one root's content, in walking order (children first).
type copyTree struct {
	root     ocispec.Descriptor
	nodes    []imgref.Node
	referrer bool
}

func (c *copier) copy(ctx context.Context, d digest.Digest) error {
	desc, _, err := c.r.Manifest(ctx, c.from, d.String())
	if err != nil {
		return err
	}
	if err := c.plan(ctx, desc, 0, false); err != nil {
		return err
	}
	if c.o.BeforeWrite != nil {
		roots := make([]ocispec.Descriptor, len(c.trees))
		for i, t := range c.trees {
			roots[i] = t.root
		}
		if err := c.o.BeforeWrite(ctx, roots); err != nil {
			return err
		}
	}
	for i, t := range c.trees {
		var tags []string
		if i == 0 {
			tags = c.o.Tags
		}
		if err := c.write(ctx, t, tags); err != nil {
			return err
		}
	}
	return nil
}

// plan adds root's content, then the referrers of each of its manifests
// that are followed, recursively.
func (c *copier) plan(ctx context.Context, root ocispec.Descriptor, depth int, referrer bool) error {
	if depth > maxCopyDepth {
		return fmt.Errorf("manifest %s: referrers nested deeper than %d levels", root.Digest, maxCopyDepth)
	}
	t := copyTree{root: root, referrer: referrer}
	fetch := func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		stored, body, err := c.r.Manifest(ctx, c.from, d.Digest.String())
		c.mediaTypes[stored.Digest] = stored.MediaType
		return body, err
	}
	err := imgref.Walk(ctx, root, fetch, func(n imgref.Node) error {
		if c.o.Check != nil {
			if err := c.o.Check(ctx, root.Digest, n); err != nil {
				return err
			}
		}
		if !c.seen[n.Digest()] {
			c.seen[n.Digest()] = true
			if c.count++; c.count > maxCopyManifests {
				return fmt.Errorf("more than %d manifests to copy", maxCopyManifests)
			}
			t.nodes = append(t.nodes, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.trees = append(c.trees, t)
	for _, n := range t.nodes {
		refs, err := c.r.referrers(ctx, c.from, n.Digest(), "")
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		for _, ref := range refs {
			if c.seen[ref.Digest] {
				continue
			}
			follow := Follow{Copy: true}
			if c.o.Referrer != nil {
				rn, err := c.node(ctx, ref)
				if err != nil {
					return fmt.Errorf("referrer %s of %s: %w", ref.Digest, n.Digest(), err)
				}
				if follow, err = c.o.Referrer(ctx, n.Digest(), rn); err != nil {
					return fmt.Errorf("referrer %s of %s: %w", ref.Digest, n.Digest(), err)
				}
			}
			if !follow.Copy {
				c.seen[ref.Digest] = true
				c.res.LeftBehind = append(c.res.LeftBehind, LeftBehind{Referrer: ref, Subject: n.Digest(), Reason: follow.Reason})
				continue
			}
			if err := c.plan(ctx, ref, depth+1, true); err != nil {
				return fmt.Errorf("referrer %s of %s: %w", ref.Digest, n.Digest(), err)
			}
		}
	}
	return nil
}

// node reads the manifest desc describes, in the source repository.
func (c *copier) node(ctx context.Context, desc ocispec.Descriptor) (imgref.Node, error) {
	stored, body, err := c.r.Manifest(ctx, c.from, desc.Digest.String())
	if err != nil {
		return imgref.Node{}, err
	}
	m, err := imgref.ParseManifest(stored.MediaType, body)
	if err != nil {
		return imgref.Node{}, err
	}
	return imgref.Node{Descriptor: desc, Body: body, Manifest: m}, nil
}

// write links the blobs of each manifest of t into the destination and
// stores the manifests, children first; the root gets tags.
func (c *copier) write(ctx context.Context, t copyTree, tags []string) error {
	for _, n := range t.nodes {
		info, err := parseManifest(c.mediaTypes[n.Digest()], n.Body)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", n.Digest(), err)
		}
		blobs := make([]digest.Digest, len(info.Blobs))
		for i, b := range info.Blobs {
			blobs[i] = b.Digest
		}
		missing, err := c.r.linkBlobs(ctx, c.to, c.from, blobs)
		if err != nil {
			return err
		}
		if missing != "" {
			return fmt.Errorf("manifest %s: blob %s: %w", n.Digest(), missing, ErrNotFound)
		}
		c.res.BlobsLinked += len(blobs)
		var nt []string
		if n.Digest() == t.root.Digest {
			nt = tags
		}
		stored, _, err := c.r.storeManifest(ctx, c.to, info.MediaType, n.Body, n.Digest(), nt)
		if err != nil {
			return err
		}
		c.res.Manifests++
		if t.referrer && n.Digest() == t.root.Digest {
			stored.ArtifactType = info.ArtifactType
			c.res.Referrers = append(c.res.Referrers, stored)
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
