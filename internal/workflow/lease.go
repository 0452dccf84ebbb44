package workflow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drydock-project/drydock/internal/jobs"
)

// Leases: a job that works on part of a run (its trigger task, or one
// images group) holds a lease on that part in the run's record and renews
// it while it works. When the process dies (kill -9, power loss), the
// lease runs out while the part is unfinished; the engine's tick then
// queues a job that resumes the part from the ledger, instead of waiting
// for the job queue's own rescue of the dead job (which waits out the
// whole job time-out). Several replicas agree through the record: the
// lease is taken and renewed inside UpdateRun.

const (
	// LeaseTTL is how long a lease lasts without renewal; it is renewed
	// every LeaseTTL/3.
	LeaseTTL = 30 * time.Second
	// MaxResumes is how often one part of a run is resumed before its
	// tasks fail: a part that kills the server every time must not kill
	// it forever.
	MaxResumes = 3
	// resumePrefix marks a placeholder lease the tick sets when it queues
	// a resume: the first job to come takes it over.
	resumePrefix = "resume-"
)

// errLeased means another live job holds the part.
var errLeased = errors.New("another job is working on this part of the run")

// jobOwner names the running job as a lease owner.
func jobOwner(ctx context.Context) string {
	if info, ok := jobs.JobInfo(ctx); ok {
		return "job-" + strconv.FormatInt(info.ID, 10) + "." + strconv.Itoa(info.Attempt)
	}
	return "call-" + newID()
}

// heldLease is a lease this job holds.
type heldLease struct {
	lost atomic.Bool // another job took the part over
	stop chan struct{}
	done chan struct{}
}

// Lost reports whether the lease was taken over (this job must not write).
func (h *heldLease) Lost() bool { return h.lost.Load() }

// lease takes part of run for the calling job (errLeased when a live job
// holds it) and renews it until release.
func (e *Engine) lease(ctx context.Context, runID, part string) (*heldLease, func(), error) {
	owner := jobOwner(ctx)
	ctx = context.WithoutCancel(ctx)
	var previous string // the owner whose lease this job takes over
	set := func(renew bool) error {
		now := e.clock.Now()
		_, err := e.o.Store.UpdateRun(ctx, runID, func(r *Run) error {
			l, ok := r.Leases[part]
			previous = ""
			switch {
			case renew && (!ok || l.Owner != owner):
				return errLeased
			case !renew && ok && l.Owner != owner && !strings.HasPrefix(l.Owner, resumePrefix) && now.Before(l.Until):
				return errLeased
			case !renew && ok && l.Owner != owner:
				previous = l.Owner
			}
			if r.Leases == nil {
				r.Leases = map[string]Lease{}
			}
			r.Leases[part] = Lease{Owner: owner, Until: now.Add(LeaseTTL)}
			return nil
		})
		return err
	}
	if err := set(false); err != nil {
		return nil, nil, err
	}
	if previous != "" {
		e.logf(ctx, runID, runID+"-t", "resuming %s: %s takes over from %s, which stopped (the server died?)", part, owner, previous)
	}
	h := &heldLease{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if err := set(true); errors.Is(err, errLeased) {
					h.lost.Store(true)
					e.log.Warn("workflow: a job lost its lease", "run", runID, "part", part, "owner", owner)
					return
				} else if err != nil {
					e.log.Warn("workflow: renewing a lease failed", "run", runID, "part", part, "err", err)
				}
			}
		}
	}()
	release := func() {
		close(h.stop)
		<-h.done
		_, err := e.o.Store.UpdateRun(ctx, runID, func(r *Run) error {
			if l, ok := r.Leases[part]; ok && l.Owner == owner {
				delete(r.Leases, part)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			e.log.Warn("workflow: releasing a lease failed", "run", runID, "part", part, "err", err)
		}
	}
	return h, release, nil
}

func (e *Engine) handleResume(ctx context.Context, _ resumeArgs) error { return e.ResumeOrphans(ctx) }

// ResumeOrphans queues a job for every part of an unfinished run whose
// lease ran out: its job died with its process (the periodic job calls
// it; tests call it after moving the clock).
func (e *Engine) ResumeOrphans(ctx context.Context) error {
	runs, err := e.o.Store.Runs(ctx, RunFilter{States: []State{StateQueued, StateRunning}})
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range runs {
		now := e.clock.Now()
		for _, part := range slices.Sorted(maps.Keys(r.Leases)) {
			l := r.Leases[part]
			if now.Before(l.Until) || strings.HasPrefix(l.Owner, resumePrefix) {
				continue
			}
			if err := e.resumePart(ctx, r.ID, part, l, now); err != nil {
				errs = append(errs, fmt.Errorf("run %s: resuming %s: %w", r.ID, part, err))
			}
		}
	}
	return errors.Join(errs...)
}

// resumePart handles one expired lease: drop it when its part is done,
// fail the part after MaxResumes, else queue a job to resume it.
func (e *Engine) resumePart(ctx context.Context, runID, part string, dead Lease, now time.Time) error {
	var queue jobs.JobArgs
	var key string
	r, err := e.o.Store.UpdateRun(ctx, runID, func(r *Run) error {
		queue = nil
		l, ok := r.Leases[part]
		if !ok || l != dead {
			return nil // changed meanwhile
		}
		unfinished := unfinishedImages(r, part)
		if part == LeaseTrigger {
			if t := r.Task(r.ID + "-t"); t != nil && !t.State.Finished() {
				unfinished = append(unfinished, "")
			}
		}
		if len(unfinished) == 0 && part != LeaseTrigger {
			delete(r.Leases, part)
			return nil
		}
		if r.Resumes == nil {
			r.Resumes = map[string]int{}
		}
		if r.Resumes[part] >= MaxResumes {
			delete(r.Leases, part)
			msg := fmt.Sprintf("interrupted %d times: the server died while working on it every time; giving up", r.Resumes[part]+1)
			for i := range r.Tasks {
				t := &r.Tasks[i]
				if !t.State.Finished() && (t.Group == part || (part == LeaseTrigger && t.Kind == TaskTrigger)) {
					t.State, t.EndedAt, t.Error = StateFailed, now, msg
				}
			}
			if part == LeaseTrigger {
				r.State, r.EndedAt, r.Error = StateFailed, now, msg
			}
			finishIfDone(r, now)
			return nil
		}
		r.Resumes[part]++
		n := r.Resumes[part]
		r.Leases[part] = Lease{Owner: resumePrefix + strconv.Itoa(n), Until: now}
		if part == LeaseTrigger {
			queue, key = runArgs{RunID: r.ID}, "run:"+r.ID+":"+resumePrefix+strconv.Itoa(n)
		} else {
			queue, key = imagesArgs{RunID: r.ID, Digest: part, Images: unfinished}, "images:"+r.ID+":"+part+":"+resumePrefix+strconv.Itoa(n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if r.State.Finished() {
		e.dropRun(r.ID)
	}
	if queue == nil {
		return nil
	}
	e.log.Warn("workflow: resuming part of a run whose job died", "run", runID, "part", part, "dead_owner", dead.Owner)
	e.logf(ctx, runID, runID+"-t", "queued a job to resume %s: its job (%s) stopped renewing its lease (the server died?)", part, dead.Owner)
	return e.enqueue(ctx, queue, key)
}

// unfinishedImages lists the images of a group with an unfinished task.
func unfinishedImages(r *Run, group string) []string {
	var out []string
	for _, t := range r.Tasks {
		if t.Group == group && t.Image != "" && !t.State.Finished() && !slices.Contains(out, t.Image) {
			out = append(out, t.Image)
		}
	}
	return out
}
