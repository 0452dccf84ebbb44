package imgref

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bounds of Walk: an index nests at most MaxDepth levels below the root
// and reaches at most MaxManifests distinct manifests. Real indexes use
// one or two levels and a few dozen manifests.
const (
	MaxDepth     = 8
	MaxManifests = 1024
)

// Node is one manifest reached by Walk.
type Node struct {
	// Descriptor is the manifest's descriptor as its parent index lists
	// it (platform, annotations), or the root's as given to Walk.
	Descriptor ocispec.Descriptor
	// Parent is the index that lists it ("" for the root).
	Parent digest.Digest
	// Depth is 0 for the root, 1 for its children, ...
	Depth    int
	Body     []byte
	Manifest *Manifest
}

// Digest is the node's manifest digest.
func (n Node) Digest() digest.Digest { return n.Descriptor.Digest }

// Platform is the node's platform as its parent lists it ("os/arch[/variant]"),
// or "" when none is given.
func (n Node) Platform() string {
	p := n.Descriptor.Platform
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Fetch returns the content of the manifest d describes.
type Fetch func(ctx context.Context, d ocispec.Descriptor) ([]byte, error)

// LimitError is an index over Walk's bounds. It is permanent: the content
// is what it is.
type LimitError struct {
	Root digest.Digest
	What string // "nesting depth" or "manifests"
	Max  int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("index %s: more than %d %s reachable from it", e.Root, e.Max, e.What)
}

// Permanent reports that retrying cannot help.
func (e *LimitError) Permanent() bool { return true }

// Walk visits every manifest reachable from root through index content
// (root itself, an index's children, nested indexes' children, ...),
// each distinct digest once, children before the index that lists them
// (so a copy in visiting order never stores an index before its
// children). Each body is checked against its descriptor's digest and
// size before it is parsed. Referrers are not index content and are not
// visited. It stops at the first error from fetch or visit.
func Walk(ctx context.Context, root ocispec.Descriptor, fetch Fetch, visit func(Node) error) error {
	w := walker{root: root.Digest, fetch: fetch, visit: visit, seen: map[digest.Digest]bool{}}
	return w.walk(ctx, Node{Descriptor: root})
}

type walker struct {
	root  digest.Digest
	fetch Fetch
	visit func(Node) error
	seen  map[digest.Digest]bool
}

func (w *walker) walk(ctx context.Context, n Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := n.Descriptor.Digest
	if w.seen[d] {
		return nil
	}
	if n.Depth > MaxDepth {
		return &LimitError{Root: w.root, What: "levels of nested indexes", Max: MaxDepth}
	}
	if len(w.seen) >= MaxManifests {
		return &LimitError{Root: w.root, What: "manifests", Max: MaxManifests}
	}
	w.seen[d] = true
	if err := d.Validate(); err != nil {
		return &ManifestError{Digest: d.String(), Err: fmt.Errorf("descriptor digest: %w", err)}
	}
	body, err := w.fetch(ctx, n.Descriptor)
	if err != nil {
		return err
	}
	if got := d.Algorithm().FromBytes(body); got != d {
		return &ManifestError{Digest: d.String(), Err: fmt.Errorf("content has digest %s", got)}
	}
	if n.Descriptor.Size > 0 && int64(len(body)) != n.Descriptor.Size {
		return &ManifestError{Digest: d.String(), Err: fmt.Errorf("content is %d bytes, its descriptor says %d", len(body), n.Descriptor.Size)}
	}
	m, err := ParseManifest(n.Descriptor.MediaType, body)
	if err != nil {
		if me, ok := err.(*ManifestError); ok {
			me.Digest = d.String()
		}
		return err
	}
	n.Body, n.Manifest = body, m
	if m.Kind() == KindIndex {
		for _, c := range m.Manifests {
			if err := w.walk(ctx, Node{Descriptor: c, Parent: d, Depth: n.Depth + 1}); err != nil {
				return err
			}
		}
	}
	return w.visit(n)
}
