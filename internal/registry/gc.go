package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// What a collection deletes (see Collect).
const (
	// KindManifest is a manifest stored in a repository (its revision):
	// untagged, listed by no kept index, not the referrer of a kept
	// subject, not kept by CollectOptions.Keep.
	KindManifest = "manifest"
	// KindReferrer is a referrers entry whose referrer is not kept (a
	// referrer is kept with its subject, so this includes every referrer
	// of a subject that is gone).
	KindReferrer = "referrer"
	// KindTag is a tag of cosign's tag scheme (sha256-<hex>.sig, .att,
	// .sbom) whose subject no repository keeps: such a tag follows its
	// subject (it keeps its manifest only while the subject is kept), and
	// is deleted with it. Its Item names the tag, the manifest it points at
	// and the subject.
	KindTag = "tag"
	// KindLayer is a blob's link into a repository no kept manifest of the
	// repository lists.
	KindLayer = "layer"
	// KindBlob is content no kept link of any repository references.
	KindBlob = "blob"
	// KindUpload is an upload session idle for longer than the time-out.
	KindUpload = "upload"
	// KindTemp is a staging file of an interrupted atomic write.
	KindTemp = "temp"
)

// DefaultMaxReportItems bounds the items a Report lists.
const DefaultMaxReportItems = 100_000

// CollectOptions configure one collection.
type CollectOptions struct {
	// DryRun computes what would be deleted and deletes nothing.
	DryRun bool
	// Coordinator runs the cycle with the writers of every process (see
	// Barrier). Required unless DryRun.
	Coordinator Coordinator
	// Grace keeps untagged manifests and blob links younger than this
	// (by their storage modification time): a push that uploaded its
	// layers and has not put its manifest yet keeps them. It is a policy
	// against failing slow pushes, not what makes the collection safe:
	// with a grace of 0 nothing reachable is ever deleted either.
	Grace time.Duration
	// UploadTimeout is how long an upload session may stay idle before it
	// is deleted; 0 deletes no upload session.
	UploadTimeout time.Duration
	// Keep, when set, names extra manifests to keep (running workloads,
	// pending verdicts): a reason, or "" for none. It is asked about
	// every manifest that is not kept otherwise.
	Keep func(repo string, d digest.Digest) string
	// IgnoreTags, when set, treats the tags it returns true for as absent
	// (what a retention run would delete, for a dry run of both).
	IgnoreTags func(repo, tag string) bool
	// Progress, when set, is called as the collection goes.
	Progress func(Progress)
	// MaxItems bounds the items listed in the report (counts and bytes
	// are always complete); 0 means DefaultMaxReportItems.
	MaxItems int
	// Pace is the share of the wall time the collection works, between 0
	// and 1: it rests between short slices of work so that the registry's
	// requests have the machine the rest of the time (a collection at 0.25
	// takes about four times as long). 0 or 1: no rests.
	Pace float64
	// Yield is how long at most the sweep waits, before each unit of
	// deletions, for the registry's writes in progress to end (see
	// yielder): deletions go in the gaps between writes, and under writes
	// that never pause still at least one unit per Yield. 0: never waits.
	Yield time.Duration
}

// Progress is a step of a collection.
type Progress struct {
	Phase string `json:"phase"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
}

// Phases of a collection, in order.
const (
	PhaseArm   = "arm"
	PhaseList  = "list"
	PhaseMark  = "mark"
	PhaseSweep = "sweep"
	PhaseBlobs = "blobs"
	PhaseDone  = "done"
)

// Item is one object a collection deleted (or, in a dry run, would delete).
type Item struct {
	Kind       string `json:"kind"`
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	// Subject is a referrers entry's subject.
	Subject string `json:"subject,omitempty"`
	// Name is an upload's id, a staging file's name or a tag.
	Name string `json:"name,omitempty"`
	// Size is the bytes the item held (blob content, an upload's bytes).
	Size int64 `json:"size"`
}

// Usage is what a repository or namespace holds after a collection,
// dedupe-aware: each blob counts once per repository (and once per
// namespace), plus the bytes of its open uploads.
type Usage struct {
	Scope string `json:"scope"` // "repository" or "namespace"
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// Report is the result of a collection.
type Report struct {
	DryRun   bool          `json:"dryRun"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	// Scanned counts what the listing found.
	Repositories int `json:"repositories"`
	Manifests    int `json:"manifests"`
	Blobs        int `json:"blobs"`
	// BlobBytes is the content bytes stored before the collection.
	BlobBytes int64 `json:"blobBytes"`
	// Deleted counts deleted objects by kind; FreedBytes is their bytes.
	Deleted    map[string]int `json:"deleted"`
	FreedBytes int64          `json:"freedBytes"`
	// Protected counts objects found unreachable but protected by a write
	// during the cycle (kept, with what they reference).
	Protected int `json:"protected"`
	// Items lists the deleted objects, sorted, up to MaxItems.
	Items     []Item `json:"items,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Yielded is the part of Duration the sweep spent waiting for the
	// registry's writes (CollectOptions.Yield).
	Yielded time.Duration `json:"yielded,omitempty"`
	// Usage is every repository's and namespace's usage afterwards.
	Usage []Usage `json:"usage,omitempty"`
}

func (rep *Report) add(it Item, max int) {
	rep.Deleted[it.Kind]++
	rep.FreedBytes += it.Size
	if len(rep.Items) < max {
		rep.Items = append(rep.Items, it)
	} else {
		rep.Truncated = true
	}
}

func (rep *Report) sort() {
	slices.SortFunc(rep.Items, func(a, b Item) int {
		return strings.Compare(a.Kind+"\x00"+a.Repository+"\x00"+a.Subject+"\x00"+a.Digest+"\x00"+a.Name,
			b.Kind+"\x00"+b.Repository+"\x00"+b.Subject+"\x00"+b.Digest+"\x00"+b.Name)
	})
	slices.SortFunc(rep.Usage, func(a, b Usage) int {
		return strings.Compare(a.Scope+"\x00"+a.Name, b.Scope+"\x00"+b.Name)
	})
}

// Collect runs one mark-and-sweep garbage collection over the storage
// while the registry keeps serving (see Barrier for the rule that makes it
// safe). It keeps every manifest reachable from a tag (a tag of cosign's
// tag scheme only while its subject is kept), through index children,
// referrers whose subject is kept and the original a kept patch derives
// from, the manifests Keep names, and recent ones (Grace), with their
// blobs; it deletes the rest: untagged manifests, referrers entries and
// tag-scheme tags whose subject is gone, blob links and content nothing
// kept references, idle upload sessions and stale staging files. A
// collection interrupted at any point (an error, a killed process) leaves
// nothing reachable deleted; the next one finishes the work.
func (r *Registry) Collect(ctx context.Context, o CollectOptions) (*Report, error) {
	if !o.DryRun && o.Coordinator == nil {
		return nil, errors.New("collecting garbage: a coordinator is required unless dry-running")
	}
	if o.Grace < 0 || o.UploadTimeout < 0 {
		return nil, errors.New("collecting garbage: negative grace or upload time-out")
	}
	if o.Pace < 0 || o.Pace > 1 {
		return nil, fmt.Errorf("collecting garbage: pace %g is not between 0 and 1", o.Pace)
	}
	if o.Yield < 0 {
		return nil, errors.New("collecting garbage: negative yield")
	}
	if o.MaxItems <= 0 {
		o.MaxItems = DefaultMaxReportItems
	}
	c := &collection{r: r, o: o, now: r.clock.Now(), pace: newPacer(o.Pace), yield: &yielder{w: &r.writes, max: o.Yield},
		rep: &Report{DryRun: o.DryRun, Started: r.clock.Now().UTC(), Deleted: map[string]int{}}}
	err := c.run(ctx)
	c.rep.Duration = r.clock.Now().Sub(c.now)
	c.rep.Yielded = c.yield.waited
	c.rep.sort()
	if err != nil {
		return c.rep, fmt.Errorf("collecting garbage: %w", err)
	}
	return c.rep, nil
}

func (c *collection) progress(phase string, done, total int) {
	if c.o.Progress != nil {
		c.o.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

func (c *collection) run(ctx context.Context) (err error) {
	if !c.o.DryRun {
		c.progress(PhaseArm, 0, 0)
		defer func() {
			// The cycle ends even when the context is done or arming
			// failed half-way: writers must stop protecting.
			if ferr := c.o.Coordinator.Finish(context.WithoutCancel(ctx)); ferr != nil {
				err = errors.Join(err, fmt.Errorf("ending the cycle: %w", ferr))
			}
		}()
		if err := c.o.Coordinator.Arm(ctx); err != nil {
			return fmt.Errorf("arming the barrier: %w", err)
		}
	}
	if err := c.list(ctx); err != nil {
		return err
	}
	if err := c.mark(ctx); err != nil {
		return err
	}
	if err := c.sweepRepositories(ctx); err != nil {
		return err
	}
	if err := c.sweepBlobs(ctx); err != nil {
		return err
	}
	if err := c.sweepUploads(ctx); err != nil {
		return err
	}
	c.usage()
	c.progress(PhaseDone, 0, 0)
	return nil
}
