package workflow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/registry"
)

// The run's life: handleRun is the trigger task (resolve the config's tags,
// record a scan task per image, queue one images job per original digest);
// handleImages scans each image's latest patch, decides, and patches the
// original once for the images that need it. Both are idempotent: after a
// crash the job runs again and resumes from the ledger, so a finished task
// is never done again and a tag is written at most once per task.

// queueRun stores a new run and queues its trigger task.
func (e *Engine) queueRun(ctx context.Context, w *Workflow, id string, tr Trigger) (*Run, error) {
	now := e.clock.Now()
	r := &Run{ID: id, Workflow: w.Name, Trigger: tr, State: StateQueued, Config: w.Config, SecuritySuite: w.SecuritySuite, CreatedAt: now,
		Tasks: []Task{{ID: id + "-t", Kind: TaskTrigger, State: StateQueued, CreatedAt: now}}}
	if err := e.o.Store.CreateRun(ctx, r); err != nil && !errors.Is(err, ErrExists) {
		return nil, err
	}
	if err := e.enqueue(ctx, runArgs{RunID: id}, "run:"+id); err != nil {
		return nil, fmt.Errorf("queueing run %s: %w", id, err)
	}
	e.logf(ctx, id, id+"-t", "run queued: %s%s", tr.Kind, detailText(tr.Detail))
	return e.o.Store.Run(ctx, id)
}

func detailText(d string) string {
	if d == "" {
		return ""
	}
	return " (" + d + ")"
}

// tagLister reads an image name's tags from the registry.
func (e *Engine) tagLister(ctx context.Context, name string) (TagSet, error) {
	ts := TagSet{Name: name}
	for _, ns := range []string{liveNS, quarantineNS} {
		tags, err := e.o.Registry.Tags(ctx, ns+name)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			return ts, err
		}
		if ns == liveNS {
			ts.Live = tags
		} else {
			ts.Quarantine = tags
		}
	}
	return ts, nil
}

// handleRun is the trigger task.
func (e *Engine) handleRun(ctx context.Context, a runArgs) error {
	r, err := e.o.Store.Run(ctx, a.RunID)
	if errors.Is(err, ErrNotFound) {
		return nil // deleted with its workflow
	}
	if err != nil {
		return err
	}
	if r.State.Finished() {
		return nil
	}
	_, release, err := e.lease(ctx, r.ID, LeaseTrigger)
	if errors.Is(err, errLeased) {
		// Another job holds it: it finishes the part, or its lease runs
		// out (its process died) and this job takes over.
		return jobs.Snooze(LeaseTTL / 2)
	}
	if err != nil {
		return err
	}
	defer release()
	tid := r.ID + "-t"
	if t := r.Task(tid); t != nil && t.State == StateSucceeded {
		return e.queueGroups(ctx, r) // resumed after the tasks were recorded
	}
	now := e.clock.Now()
	if _, err := e.o.Store.UpdateRun(ctx, r.ID, func(r *Run) error {
		r.State, r.StartedAt = StateRunning, now
		t := r.Task(tid)
		t.State, t.StartedAt = StateRunning, now
		return nil
	}); err != nil {
		return err
	}
	e.logf(ctx, r.ID, tid, "resolving the tags of %d repositories (tag convention %s)", len(r.Config.Repositories), r.Config.TagConvention)
	sel, err := Select(ctx, &r.Config, e.tagLister)
	if err != nil {
		e.logf(ctx, r.ID, tid, "error: %v", err)
		return e.failTrigger(ctx, r.ID, err)
	}
	if len(r.Trigger.Images) > 0 {
		sel.Matches = slices.DeleteFunc(sel.Matches, func(m Match) bool { return !slices.Contains(r.Trigger.Images, m.Image()) })
	}
	groups := map[string]string{} // image -> original digest
	for _, m := range sel.Matches {
		desc, err := e.o.Registry.Resolve(ctx, m.Source, m.Tag)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			groups[m.Image()] = "missing:" + m.Image() // gone since listed: its scan says so
		case err != nil:
			return err
		default:
			groups[m.Image()] = desc.Digest.String()
		}
	}
	for _, nf := range sel.NotFound {
		e.logf(ctx, r.ID, tid, "not found: %s", nf)
	}
	for _, ig := range sel.Ignored {
		e.logf(ctx, r.ID, tid, "ignored: %s: %s", ig.Image, ig.Reason)
	}
	for _, m := range sel.Matches {
		latest := m.Latest
		if latest == "" {
			latest = "N/A"
		}
		e.logf(ctx, r.ID, tid, "%s,%s,%s", m.Name, m.Tag, latest)
	}
	e.logf(ctx, r.ID, tid, "matches found: %d", len(sel.Matches))
	e.readAhead(ctx, r.ID, tid, sel.Matches, r.SecuritySuite)
	now = e.clock.Now()
	r, err = e.o.Store.UpdateRun(ctx, r.ID, func(r *Run) error {
		t := r.Task(tid)
		t.State, t.EndedAt = StateSucceeded, now
		t.Trigger = &TriggerResult{Convention: sel.Convention, Matches: sel.Matches, NotFound: sel.NotFound, Ignored: sel.Ignored}
		for i, m := range sel.Matches {
			if r.ImageTask(TaskScan, m.Image()) != nil {
				continue
			}
			r.Tasks = append(r.Tasks, Task{ID: fmt.Sprintf("%s-s%d", r.ID, i+1), Kind: TaskScan, Image: m.Image(), Group: groups[m.Image()],
				State: StateQueued, CreatedAt: now, Scan: &ScanResult{Match: m, Target: m.Source + ":" + m.Tag}})
		}
		finishIfDone(r, now)
		return nil
	})
	if err != nil {
		return err
	}
	if r.State.Finished() {
		e.dropRun(r.ID)
		return nil
	}
	return e.queueGroups(ctx, r)
}

// failTrigger ends a run whose trigger task failed.
func (e *Engine) failTrigger(ctx context.Context, runID string, cause error) error {
	now := e.clock.Now()
	_, err := e.o.Store.UpdateRun(ctx, runID, func(r *Run) error {
		t := r.Task(runID + "-t")
		t.State, t.EndedAt, t.Error = StateFailed, now, cause.Error()
		r.State, r.EndedAt, r.Error = StateFailed, now, cause.Error()
		return nil
	})
	e.dropRun(runID)
	return err
}

// queueGroups queues an images job per original digest with unfinished
// scan tasks.
func (e *Engine) queueGroups(ctx context.Context, r *Run) error {
	groups := map[string][]string{}
	for _, t := range r.Tasks {
		if t.Kind == TaskScan && !t.State.Finished() {
			groups[t.Group] = append(groups[t.Group], t.Image)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		if err := e.enqueue(ctx, imagesArgs{RunID: r.ID, Digest: g, Images: groups[g]}, "images:"+r.ID+":"+g); err != nil {
			return fmt.Errorf("queueing the scans of run %s: %w", r.ID, err)
		}
	}
	return nil
}

// finishIfDone ends the run when every task has finished.
func finishIfDone(r *Run, now time.Time) {
	if r.State.Finished() {
		return
	}
	failed, total := 0, 0
	for _, t := range r.Tasks {
		if !t.State.Finished() {
			return
		}
		if t.Kind == TaskScan {
			total++
		}
		if t.State == StateFailed {
			failed++
		}
	}
	r.EndedAt = now
	if failed > 0 {
		r.State = StateFailed
		r.Error = fmt.Sprintf("%d task(s) failed over %d image(s)", failed, total)
		return
	}
	r.State = StateSucceeded
}

// addFetches adds a job's archive requests to the run's counts.
func addFetches(r *Run, f map[string]int) {
	if len(f) == 0 {
		return
	}
	if r.Fetches == nil {
		r.Fetches = map[string]int{}
	}
	for u, n := range f {
		r.Fetches[u] += n
	}
}

// lockKey is the lock of one image across runs.
func lockKey(image string) string { return "image:" + image }

// errBusy means another run holds an image.
var errBusy = errors.New("image busy")

// lockImages takes the images' locks for run, all or none. It returns
// errBusy, naming the holder, when another unfinished run holds one.
func (e *Engine) lockImages(ctx context.Context, runID string, images []string) (release func(), err error) {
	var held []string
	release = func() {
		for _, im := range held {
			_, err := e.o.Store.UpdateLock(context.WithoutCancel(ctx), lockKey(im), func(h string) (string, error) {
				if h == runID {
					return "", nil
				}
				return h, nil
			})
			if err != nil {
				e.log.Warn("workflow: releasing an image lock failed", "image", im, "run", runID, "err", err)
			}
		}
	}
	for _, im := range slices.Sorted(slices.Values(images)) {
		stale := ""
		for range 2 {
			h, err := e.o.Store.UpdateLock(ctx, lockKey(im), func(h string) (string, error) {
				if h == "" || h == runID || h == stale {
					return runID, nil
				}
				return h, nil
			})
			if err != nil {
				release()
				return nil, err
			}
			if h == runID {
				held = append(held, im)
				break
			}
			// Held by another run: free to take once that run has ended.
			hr, err := e.o.Store.Run(ctx, h)
			if err != nil && !errors.Is(err, ErrNotFound) {
				release()
				return nil, err
			}
			if err == nil && !hr.State.Finished() {
				release()
				return nil, fmt.Errorf("%w: %s is being patched by run %s", errBusy, im, h)
			}
			stale = h
		}
		if !slices.Contains(held, im) {
			release()
			return nil, fmt.Errorf("%w: %s", errBusy, im)
		}
	}
	return release, nil
}

// stillHolds checks, right before a write, that run still holds image.
func (e *Engine) stillHolds(ctx context.Context, runID, image string) error {
	_, err := e.o.Store.UpdateLock(ctx, lockKey(image), func(h string) (string, error) {
		if h != runID {
			return h, fmt.Errorf("run %s no longer holds %s (held by %q)", runID, image, h)
		}
		return h, nil
	})
	return err
}

// canceled reports whether the run was canceled (or deleted).
func (e *Engine) canceled(ctx context.Context, runID string) bool {
	r, err := e.o.Store.Run(ctx, runID)
	return errors.Is(err, ErrNotFound) || (err == nil && r.State == StateCanceled)
}

// handleImages scans, decides and patches the images of one run whose
// originals share a digest.
func (e *Engine) handleImages(ctx context.Context, a imagesArgs) error {
	r, err := e.o.Store.Run(ctx, a.RunID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.State.Finished() {
		return nil
	}
	held, releaseLease, err := e.lease(ctx, r.ID, a.Digest)
	if errors.Is(err, errLeased) {
		return jobs.Snooze(LeaseTTL / 2) // see handleRun
	}
	if err != nil {
		return err
	}
	defer releaseLease()
	release, err := e.lockImages(ctx, r.ID, a.Images)
	if errors.Is(err, errBusy) {
		for _, im := range a.Images {
			if t := r.ImageTask(TaskScan, im); t != nil {
				e.logf(ctx, r.ID, t.ID, "waiting: %v", err)
			}
		}
		return jobs.Snooze(e.o.LockRetry)
	}
	if err != nil {
		return err
	}
	defer release()
	cache := e.runClient(r.ID)
	g := &group{e: e, runID: r.ID, images: a.Images, security: r.SecuritySuite, conv: r.Config.TagConvention, lease: held, cache: cache}
	defer func() { // what the job fetched, when it stops early (finish records it otherwise)
		if f := cache.drain(); len(f) > 0 {
			_, _ = e.o.Store.UpdateRun(context.WithoutCancel(ctx), r.ID, func(r *Run) error {
				addFetches(r, f)
				return nil
			})
		}
	}()
	env, err := e.openEnv(ctx, cache.client, func(string) {})
	if err != nil {
		// Without a database nothing can be decided: the images fail.
		return g.failAll(ctx, err)
	}
	defer env.Close()
	g.env = env
	if err := g.scanAll(ctx); err != nil {
		return err
	}
	if err := g.patchAll(ctx); err != nil {
		return err
	}
	return g.finish(ctx)
}
