package registry

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
)

// Online garbage collection runs while the registry takes pushes, mounts,
// promotions and deletes. The registry's writes and the collector (see
// Collect) agree on one rule, which is what makes the collection correct
// without any time window:
//
//	The collector deletes an object only if it was unreachable when the
//	cycle's listing began and no write has protected it since; a write
//	protects every object it will reference before it checks that the
//	object exists, and the collector claims an object under the same
//	check before it deletes it.
//
// In practice:
//
//   - A write that makes objects reachable or relies on them existing (a
//     completed upload and its layer link, a mount, a manifest with its
//     blobs and child manifests, its referrers entry and its tags) runs
//     inside a Guard from the Barrier. Inside the guard it first calls
//     Protect with the keys of those objects, then checks what exists
//     (reading the storage without caches), then writes. Protect marks the
//     keys in a running collection cycle, or waits while one of them is
//     being deleted, so the check that follows sees the object or its
//     absence: an upload stores its bytes again, a mount falls back to an
//     upload, a manifest whose blob was collected is refused
//     (MANIFEST_BLOB_UNKNOWN). Nothing is ever left pointing at a deleted
//     object.
//   - A collection cycle first arms the barrier (Coordinator.Arm): from
//     then on every guard protects, and Arm returns only once every guard
//     entered before it has finished, so the listing that follows sees
//     every write that did not protect. The sweep then claims what it
//     found unreachable (Coordinator.Claim): a key a write has protected is
//     not claimed, and is kept with everything it references; a claimed key
//     makes writers that protect it wait until it is deleted and released.
//
// Deletes (untagging, deleting a manifest, unlinking a blob) only ever make
// less reachable and need no guard.

// Barrier is the writers' side of the rule above. The zero configuration
// of a Registry uses a barrier that never protects anything: correct only
// when no collector runs while the registry takes writes.
type Barrier interface {
	// Enter starts a write. The guard must be ended with Done once the
	// write is visible (or abandoned).
	Enter(ctx context.Context) (Guard, error)
}

// Guard is one write's membership in the barrier.
type Guard interface {
	// Protect makes the objects named by keys safe from the running
	// collection cycle, if any: they are marked, and a key being deleted
	// is waited for (its object is then gone, which the caller's check
	// finds). Keys come from BlobKey, LayerKey, ManifestKey,
	// ReferrerKey and TagKey.
	Protect(ctx context.Context, keys ...string) error
	// Done ends the write.
	Done()
}

// Coordinator is the collector's side of the rule: one collection cycle
// at a time, across every process that writes to the storage.
type Coordinator interface {
	// Arm starts a cycle: when it returns, every guard entered from now on
	// protects its keys, and every guard entered before has finished.
	Arm(ctx context.Context) error
	// Claim reserves for deletion the keys no write has protected in this
	// cycle and returns them; a write that protects a claimed key waits
	// until Release. Keys protected in the cycle are not returned.
	Claim(ctx context.Context, keys []string) ([]string, error)
	// Release ends claims: their objects are deleted, or kept after all.
	Release(ctx context.Context, keys []string) error
	// Finish ends the cycle; guards stop protecting.
	Finish(ctx context.Context) error
}

// ErrBarrier wraps failures of the barrier (its database unreachable): the
// write is not attempted.
var ErrBarrier = errors.New("garbage-collection barrier unavailable")

// Keys of the objects a collection can delete. A key names one object on
// the storage; the layout (paths.go) never gives two objects one key.

// BlobKey names a blob's content (a layer, a config or a manifest's bytes).
func BlobKey(d digest.Digest) string { return "blob/" + d.String() }

// LayerKey names the link of blob d into repository repo.
func LayerKey(repo string, d digest.Digest) string { return "layer/" + repo + "@" + d.String() }

// ManifestKey names manifest d stored in repository repo (its revision).
func ManifestKey(repo string, d digest.Digest) string { return "manifest/" + repo + "@" + d.String() }

// TagKey names tag in repository repo (its link, not the manifest it
// points at). A write that points a tag protects it, so that a collection
// deleting a tag (one of cosign's tag scheme whose subject is gone) never
// deletes one a concurrent write has just pointed.
func TagKey(repo, tag string) string { return "tag/" + repo + ":" + tag }

// ReferrerKey names the referrers entry of referrer in repo for subject.
func ReferrerKey(repo string, subject, referrer digest.Digest) string {
	return "referrer/" + repo + "@" + subject.String() + "/" + referrer.String()
}

// noBarrier never protects: the registry alone, with no online collector.
type noBarrier struct{}

func (noBarrier) Enter(context.Context) (Guard, error)   { return noGuard{}, nil }
func (noGuard) Protect(context.Context, ...string) error { return nil }
func (noGuard) Done()                                    {}

type noGuard struct{}

// WithBarrier sets the barrier the registry's writes go through; an online
// collector (Collect with a Coordinator) needs the matching one.
func WithBarrier(b Barrier) Option {
	return func(r *Registry) error {
		if b == nil {
			return errors.New("nil barrier")
		}
		r.barrier = b
		return nil
	}
}
