package workflow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/registry"
)

// group is one images job: the images of a run whose originals share one
// digest, scanned each, patched once.
type group struct {
	e        *Engine
	env      *env
	runID    string
	images   []string
	security bool
	conv     TagConvention
	lease    *heldLease
	cache    *runCache
}

// errCanceled stops a job whose run was canceled.
var errCanceled = errors.New("run canceled")

// errInterrupted stops a job where it stands, recording nothing, as a
// crash would (the test hook afterWrite): the job's retry resumes it.
var errInterrupted = errors.New("interrupted")

// update applies fn to a task unless the run was canceled meanwhile.
func (g *group) update(ctx context.Context, taskID string, fn func(r *Run, t *Task)) (*Run, error) {
	r, err := g.e.o.Store.UpdateRun(context.WithoutCancel(ctx), g.runID, func(r *Run) error {
		if r.State == StateCanceled {
			return errCanceled
		}
		t := r.Task(taskID)
		if t == nil {
			return fmt.Errorf("run %s has no task %s", g.runID, taskID)
		}
		fn(r, t)
		return nil
	})
	return r, err
}

func (g *group) logf(ctx context.Context, taskID, format string, args ...any) {
	g.e.logf(ctx, g.runID, taskID, format, args...)
}

// failAll fails every unfinished task of the group's images.
func (g *group) failAll(ctx context.Context, cause error) error {
	now := g.e.clock.Now()
	var ids []string
	r, err := g.e.o.Store.UpdateRun(context.WithoutCancel(ctx), g.runID, func(r *Run) error {
		ids = nil
		for i := range r.Tasks {
			t := &r.Tasks[i]
			if slices.Contains(g.images, t.Image) && !t.State.Finished() {
				t.State, t.EndedAt, t.Error = StateFailed, now, cause.Error()
				ids = append(ids, t.ID)
			}
		}
		finishIfDone(r, now)
		return nil
	})
	for _, id := range ids {
		g.logf(ctx, id, "error: %v", cause)
	}
	if err == nil && r.State.Finished() {
		g.e.dropRun(g.runID)
	}
	return err
}

// finish records what the job fetched and ends the run if this job
// finished its last task (in one update: a finished run has its counts).
func (g *group) finish(ctx context.Context) error {
	f := g.cache.drain()
	r, err := g.e.o.Store.UpdateRun(context.WithoutCancel(ctx), g.runID, func(r *Run) error {
		addFetches(r, f)
		finishIfDone(r, g.e.clock.Now())
		return nil
	})
	if err != nil {
		return err
	}
	if r.State.Finished() {
		g.e.dropRun(g.runID)
		g.e.log.Info("workflow run finished", "run", r.ID, "workflow", r.Workflow, "state", r.State)
	}
	return nil
}

// reselect resolves an image's tags again, under its lock: another run
// may have written a patch since the trigger task listed them.
func (g *group) reselect(ctx context.Context, m Match) (Match, bool, error) {
	entry := cmp.Or(m.Entry, m.Name)
	cfg := &Config{TagConvention: g.conv, Repositories: []Repository{{Repository: entry, Tags: []string{m.Tag}, Enabled: true}}}
	sel, err := Select(ctx, cfg, g.e.tagLister)
	if err != nil {
		return m, false, err
	}
	if len(sel.Matches) == 0 {
		return m, false, nil
	}
	return sel.Matches[0], true, nil
}

// scanAll runs the scan task of each image of the group.
func (g *group) scanAll(ctx context.Context) error {
	for _, im := range g.images {
		r, err := g.e.o.Store.Run(ctx, g.runID)
		if err != nil {
			return err
		}
		st := r.ImageTask(TaskScan, im)
		if r.State == StateCanceled || st == nil || st.State.Finished() {
			continue
		}
		now := g.e.clock.Now()
		if _, err := g.update(ctx, st.ID, func(_ *Run, t *Task) { t.State, t.StartedAt = StateRunning, now }); err != nil {
			return ignoreCanceled(err)
		}
		res, err := g.scanOne(ctx, st.ID, st.Scan.Match)
		now = g.e.clock.Now()
		if err != nil {
			g.logf(ctx, st.ID, "error: %v", err)
			if _, err := g.update(ctx, st.ID, func(_ *Run, t *Task) { t.State, t.EndedAt, t.Error = StateFailed, now, err.Error() }); err != nil {
				return ignoreCanceled(err)
			}
			continue
		}
		if res.Patch {
			g.logf(ctx, st.ID, "decision: patch (%s) into %s", strings.Join(res.Signals, ", "), cmp.Or(res.Tag, "no tag: "+res.Match.NextErr))
		} else {
			g.logf(ctx, st.ID, "decision: skip: %s", res.SkipReason)
		}
		if _, err := g.update(ctx, st.ID, func(r *Run, t *Task) {
			t.State, t.EndedAt, t.Scan = StateSucceeded, now, res
			if res.Patch && r.ImageTask(TaskPatch, im) == nil {
				r.Tasks = append(r.Tasks, Task{ID: strings.Replace(t.ID, "-s", "-p", 1), Kind: TaskPatch, Image: im, Group: t.Group,
					State: StateQueued, CreatedAt: now})
			}
		}); err != nil {
			return ignoreCanceled(err)
		}
	}
	return nil
}

func ignoreCanceled(err error) error {
	if errors.Is(err, errCanceled) {
		return nil
	}
	return err
}

func (g *group) scanOne(ctx context.Context, taskID string, m Match) (*ScanResult, error) {
	m, ok, err := g.reselect(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", m.Name, err)
	}
	if !ok {
		return &ScanResult{Match: m, Target: m.Source + ":" + m.Tag, Fixable: Counts{}, SkipReason: "tag not found: " + m.Image() + " is gone"}, nil
	}
	if m.Latest != "" {
		g.logf(ctx, taskID, "latest patch of %s is %s: deciding on it", m.Image(), m.Latest)
	}
	g.env.log = g.e.taskLog(ctx, g.runID, taskID)
	res, _, err := g.env.evaluate(ctx, m, g.security)
	return res, err
}

// pendingPatch is an image of the group waiting for its patch task.
type pendingPatch struct {
	task *Task
	scan *ScanResult
}

// patchAll builds the patch of the group's original once and writes it
// to the tag of every image whose scan asked for one.
func (g *group) patchAll(ctx context.Context) error {
	r, err := g.e.o.Store.Run(ctx, g.runID)
	if err != nil {
		return err
	}
	if r.State == StateCanceled {
		return nil
	}
	var pending []pendingPatch
	for _, im := range g.images {
		pt := r.ImageTask(TaskPatch, im)
		if pt == nil || pt.State.Finished() {
			continue
		}
		st := r.ImageTask(TaskScan, im)
		if done, err := g.resumeWritten(ctx, pt); err != nil || done {
			if err != nil {
				return err
			}
			continue
		}
		pending = append(pending, pendingPatch{task: pt, scan: st.Scan})
	}
	if len(pending) == 0 {
		return nil
	}
	now := g.e.clock.Now()
	for _, p := range pending {
		if _, err := g.update(ctx, p.task.ID, func(_ *Run, t *Task) {
			t.State = StateRunning
			if t.StartedAt.IsZero() {
				t.StartedAt = now
			}
		}); err != nil {
			return ignoreCanceled(err)
		}
	}
	first := pending[0]
	out, built, err := g.build(ctx, first)
	if err != nil {
		reason, skip := skipReasonOf(err)
		for _, p := range pending {
			if skip {
				g.endPatch(ctx, p.task.ID, StateSkipped, reason, nil)
			} else {
				g.logf(ctx, p.task.ID, "error: %v", err)
				g.endPatch(ctx, p.task.ID, StateFailed, err.Error(), nil)
			}
		}
		return nil
	}
	defer out.Cleanup()
	for i, p := range pending {
		pr := *built
		if i > 0 {
			pr.SharedWith = first.task.ID
		}
		if err := g.writeOne(ctx, p, &pr, out); err != nil {
			if errors.Is(err, errCanceled) {
				return nil
			}
			if errors.Is(err, errInterrupted) {
				return err
			}
			g.logf(ctx, p.task.ID, "error: %v", err)
			g.endPatch(ctx, p.task.ID, StateFailed, err.Error(), &pr)
		}
	}
	return nil
}

// resumeWritten finishes a patch task a crash interrupted after its tag
// was written: the tag holds the digest recorded before the write.
func (g *group) resumeWritten(ctx context.Context, t *Task) (bool, error) {
	if t.Patch == nil || t.Patch.Tag == "" || t.Patch.Digest == "" || t.Patch.TagWritten {
		return false, nil
	}
	desc, err := g.e.o.Registry.Resolve(ctx, t.Patch.Repository, t.Patch.Tag)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if desc.Digest.String() != t.Patch.Digest {
		return false, nil
	}
	g.logf(ctx, t.ID, "resumed: %s:%s already holds %s, written before an interruption", t.Patch.Repository, t.Patch.Tag, t.Patch.Digest)
	pr := *t.Patch
	pr.TagWritten = true
	if pr.Signing != nil {
		// The interruption may have come before the signature: sign now
		// (signing is idempotent: a signed patch is left as it is).
		start := time.Now()
		g.signPatch(ctx, t.ID, t.StartedAt, &pr)
		if g.e.o.SignPatch != nil {
			pr.Seconds = maps.Clone(pr.Seconds)
			if pr.Seconds == nil {
				pr.Seconds = map[string]float64{}
			}
			timed(pr.Seconds, "sign", start)
		}
	}
	g.endPatch(ctx, t.ID, StateSucceeded, "", &pr)
	return true, nil
}

// endPatch records a patch task's end.
func (g *group) endPatch(ctx context.Context, taskID string, st State, msg string, pr *PatchResult) {
	now := g.e.clock.Now()
	_, err := g.update(ctx, taskID, func(_ *Run, t *Task) {
		t.State, t.EndedAt = st, now
		if pr != nil {
			t.Patch = pr
		}
		if st == StateFailed {
			t.Error = msg
		} else if msg != "" {
			if t.Patch == nil {
				t.Patch = &PatchResult{}
			}
			t.Patch.SkipReason = msg
		}
	})
	if err != nil && !errors.Is(err, errCanceled) {
		g.e.log.Warn("workflow: recording a patch task failed", "run", g.runID, "task", taskID, "err", err)
	}
	if st == StateSkipped {
		g.logf(ctx, taskID, "skipped: %s", msg)
	}
}

// build patches the group's original with the packages its scan asks for
// (fixable findings, and the security suite's updates when on).
func (g *group) build(ctx context.Context, first pendingPatch) (*PatchOutcome, *PatchResult, error) {
	m := first.scan.Match
	tid := first.task.ID
	orig, err := g.e.read(ctx, m.Source, m.Tag)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the original %s:%s: %w", m.Source, m.Tag, err)
	}
	g.logf(ctx, tid, "patching the original %s:%s (%s)", m.Source, m.Tag, orig.Digest)
	log := g.e.taskLog(ctx, g.runID, tid)
	g.env.log = log
	f, err := g.env.scanArtifact(ctx, orig)
	if err != nil {
		return nil, nil, err
	}
	wanted := maps.Clone(f.wanted)
	if g.security {
		p, err := g.env.plan(ctx, orig) // remembered when the original was a scan's target
		if err != nil {
			return nil, nil, err
		}
		secs, _ := securityUpdates(p)
		for _, c := range secs {
			if c.From == "" {
				continue // a new dependency, not an installed package
			}
			if cur, ok := wanted[c.Package]; !ok || newer(c.To, cur) {
				wanted[c.Package] = c.To
			}
		}
	}
	g.logf(ctx, tid, "updating %d packages: %s", len(wanted), strings.Join(slices.Sorted(maps.Keys(wanted)), " "))
	start := time.Now()
	out, err := g.e.o.Patcher.Patch(ctx, PatchRequest{Image: orig.Image, Index: orig.Index, Wanted: wanted, BaseName: m.Name,
		Releases: g.env.releases, HTTPClient: g.env.http, Log: log})
	if err != nil {
		return nil, nil, err
	}
	pr := &PatchResult{Source: m.Source + ":" + m.Tag, SourceDigest: orig.Digest, Repository: quarantineNS + m.Name, FixableBefore: f.counts,
		Seconds: map[string]float64{}}
	timed(pr.Seconds, "patch", start)
	var reasons []string
	for _, pl := range out.Platforms {
		for k, v := range pl.Seconds {
			pr.Seconds["patch/"+k] += v
		}
		pr.Platforms = append(pr.Platforms, pl.Platform)
		for _, s := range pl.Sandboxed {
			pr.Sandboxed = append(pr.Sandboxed, pl.Platform+": "+s)
			log(pl.Platform + ": ran in the sandbox: " + s)
		}
		pr.Packages = append(pr.Packages, pl.Changes...)
		if pl.Reason != "" {
			reasons = append(reasons, pl.Platform+": "+pl.Reason)
		}
		for _, u := range pl.Unavailable {
			reasons = append(reasons, pl.Platform+": not yet available: "+u)
			log(pl.Platform + ": not yet available: " + u)
		}
	}
	slices.SortFunc(pr.Packages, func(a, b PackageChange) int { return strings.Compare(a.Package+" "+a.To, b.Package+" "+b.To) })
	pr.Packages = slices.CompactFunc(pr.Packages, func(a, b PackageChange) bool { return a == b })
	if out.Image == nil && out.Index == nil {
		out.Cleanup()
		return nil, nil, &nothingError{reason: strings.Join(reasons, "; ")}
	}
	if pr.Digest, err = outDigest(out); err != nil {
		out.Cleanup()
		return nil, nil, err
	}
	start = time.Now()
	after, err := g.env.scanArtifact(ctx, &artifact{Repo: pr.Repository, Ref: "patched", Digest: pr.Digest, Image: out.Image, Index: out.Index})
	if err != nil {
		out.Cleanup()
		return nil, nil, fmt.Errorf("scanning the patched image: %w", err)
	}
	timed(pr.Seconds, "rescan", start)
	pr.FixableAfter = after.counts
	g.logf(ctx, tid, "patched: %s, %d packages updated; fixable vulnerabilities %d -> %d %s",
		pr.Digest, len(pr.Packages), f.counts.Total(), after.counts.Total(), countsText(after.counts))
	return out, pr, nil
}

// nothingError: the patch had nothing to install (fixes not published).
type nothingError struct{ reason string }

func (e *nothingError) Error() string {
	return "nothing to install: " + cmp.Or(e.reason, "the archive offers no update for the packages asked for")
}

func outDigest(out *PatchOutcome) (string, error) {
	var d v1.Hash
	var err error
	if out.Index != nil {
		d, err = out.Index.Digest()
	} else {
		d, err = out.Image.Digest()
	}
	if err != nil {
		return "", fmt.Errorf("digest of the patched image: %w", err)
	}
	return d.String(), nil
}

// writeOne writes the built patch to one image's next tag, unless it
// equals the latest patch.
func (g *group) writeOne(ctx context.Context, p pendingPatch, pr *PatchResult, out *PatchOutcome) error {
	m, ok, err := g.reselect(ctx, p.scan.Match)
	if err != nil {
		return err
	}
	if !ok {
		g.endPatch(ctx, p.task.ID, StateSkipped, "tag not found: "+m.Image()+" is gone", pr)
		return nil
	}
	if m.NextErr != "" {
		return errors.New(m.NextErr)
	}
	if m.Latest != "" {
		desc, err := g.e.o.Registry.Resolve(ctx, m.LatestSource, m.Latest)
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return err
		}
		if err == nil && desc.Digest.String() == pr.Digest {
			pr.Unchanged, pr.SameAs = true, m.Name+":"+m.Latest
			g.endPatch(ctx, p.task.ID, StateSkipped, fmt.Sprintf("the patch equals the latest patch %s:%s (same digest %s): no new tag", m.Name, m.Latest, pr.Digest), pr)
			return nil
		}
	}
	pr.Tag = m.Next
	if g.conv == Incremental {
		if _, err := g.e.o.Registry.Resolve(ctx, pr.Repository, pr.Tag); err == nil {
			return fmt.Errorf("%s:%s exists already; incremental patch tags are never overwritten", pr.Repository, pr.Tag)
		}
	}
	// The tag and digest are recorded before the write: a job resumed after
	// a crash finds them and never writes a second tag for this task; and
	// so is what signing needs, so that it signs what it finds written.
	if g.e.o.SignPatch != nil {
		pr.Signing = &Signing{OriginalRepository: p.scan.Match.Source, Plans: out.Plans}
	}
	if _, err := g.update(ctx, p.task.ID, func(_ *Run, t *Task) { t.Patch = pr }); err != nil {
		return err
	}
	if g.lease.Lost() {
		return errors.New("another job took over this image (this job's lease ran out): nothing written")
	}
	if err := g.e.stillHolds(ctx, g.runID, p.task.Image); err != nil {
		return err
	}
	if g.e.canceled(ctx, g.runID) {
		return errCanceled
	}
	g.logf(ctx, p.task.ID, "writing %s:%s (%s)", pr.Repository, pr.Tag, pr.Digest)
	start := time.Now()
	if err := g.e.write(ctx, pr.Repository, pr.Tag, out); err != nil {
		return fmt.Errorf("writing %s:%s: %w", pr.Repository, pr.Tag, err)
	}
	pr.TagWritten = true
	pr.Seconds = maps.Clone(pr.Seconds) // the tags of one build share its phases until here
	if pr.Seconds == nil {
		pr.Seconds = map[string]float64{}
	}
	timed(pr.Seconds, "write", start)
	if g.e.afterWrite != nil {
		if err := g.e.afterWrite(p.task.ID); err != nil {
			return fmt.Errorf("%w after writing %s:%s: %w", errInterrupted, pr.Repository, pr.Tag, err)
		}
	}
	start = time.Now()
	g.signPatch(ctx, p.task.ID, p.task.StartedAt, pr)
	if g.e.o.SignPatch != nil {
		timed(pr.Seconds, "sign", start)
	}
	g.endPatch(ctx, p.task.ID, StateSucceeded, "", pr)
	g.logf(ctx, p.task.ID, "wrote %s:%s; the gate scans it and promotes it when the policy allows", pr.Repository, pr.Tag)
	return nil
}

// signPatch has the written patch pr signed (Options.SignPatch) with
// what the ledger recorded before the write (pr.Signing), which it then
// drops: a failure is the task's log's, the patch stays written.
func (g *group) signPatch(ctx context.Context, taskID string, started time.Time, pr *PatchResult) {
	sign, in := g.e.o.SignPatch, pr.Signing
	pr.Signing = nil
	if sign == nil || in == nil {
		return
	}
	err := sign(ctx, attest.PatchWritten{Repository: pr.Repository, Tag: pr.Tag, Digest: digest.Digest(pr.Digest),
		OriginalRepository: in.OriginalRepository, Original: digest.Digest(pr.SourceDigest), OriginalName: pr.Source,
		Request: map[string]any{"workflowRun": g.runID, "task": taskID}, Plans: in.Plans,
		Started: started, Finished: g.e.clock.Now()})
	if err != nil {
		g.logf(ctx, taskID, "warning: the patch is written but not signed: %v", err)
		g.e.log.Warn("workflow: signing a patch failed", "run", g.runID, "task", taskID, "repository", pr.Repository, "digest", pr.Digest, "err", err)
		return
	}
	g.logf(ctx, taskID, "signed %s: drydock's signature, SLSA provenance, OpenVEX and SBOM attached", pr.Digest)
}

// write pushes the patched image or index to repo:tag through the
// registry's in-process transport with oci.Copy, the one registry writer
// (as the patch API's jobs do): every blob verified while it streams,
// the manifest with its tag last, so a tag never points at anything
// missing, and what a failed write left behind removed.
func (e *Engine) write(ctx context.Context, repo, tag string, out *PatchOutcome) error {
	srv, err := oci.ParseServer("http://" + registry.InternalHost)
	if err != nil {
		return err
	}
	ref, err := srv.Tag(repo, tag)
	if err != nil {
		return err
	}
	art := &oci.Artifact{Image: out.Image, Index: out.Index}
	if art.Descriptor.Digest, err = art.Digest(); err != nil {
		return err
	}
	ctx = e.o.WithUser(context.WithoutCancel(ctx), ActorWorkflow)
	_, err = oci.Copy(ctx, art, ref, append(srv.Options(), oci.WithTransport(e.o.Registry.Transport()))...)
	return err
}
