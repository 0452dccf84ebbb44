package gatekeeper

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// SweepQueue is the job queue the sweep runs in when the queue has it
// (jobs.WithQueue(SweepQueue, 1)), so that a long sweep never takes a
// scan's worker; otherwise it runs in the default queue.
const SweepQueue = "gate-sweep"

// SweepArgs is the sweep job: a periodic job (Options.SweepInterval) that
// one of the processes sharing the queue runs each period.
type SweepArgs struct{}

// Kind implements jobs.JobArgs.
func (SweepArgs) Kind() string { return "gate.sweep" }

// runSweep is the sweep job. A failed sweep is logged and left to the next
// period, as every sweep decides again from what is stored.
func (k *Keeper) runSweep(ctx context.Context, _ SweepArgs) error {
	if err := k.Sweep(ctx); err != nil && ctx.Err() == nil {
		k.log.Warn("gate sweep", "err", err)
	}
	return nil
}

// autoPromoteTags auto-promotes digest under every quarantine/ tag that
// points at it (by digest alone when none does).
func (k *Keeper) autoPromoteTags(ctx context.Context, repo, digest string, v gate.Verdict) error {
	tags, err := k.reg.Tags(ctx, repo)
	if err != nil {
		return err
	}
	var mine []string
	for _, t := range tags {
		if desc, _, err := k.reg.Manifest(ctx, repo, t); err == nil && desc.Digest.String() == digest {
			mine = append(mine, t)
		}
	}
	if len(mine) == 0 {
		mine = []string{""}
	}
	var errs []error
	for _, t := range mine {
		errs = append(errs, k.autoPromote(ctx, ScanArgs{Repository: repo, Tag: t, Digest: digest, Reason: "sweep"}, v))
	}
	return errors.Join(errs...)
}

// Sweep does the gate's periodic work:
//   - a scan running longer than StuckAfter fails its digest's verdict
//     (fail closed) and raises a stuck-scan event, once per job;
//   - scans made with an older database build, scans that failed for want
//     of a database now there, and scans older than half the policy's
//     maxScanAge are queued again (see sweepRescans);
//   - every known verdict is decided again at the current time, so that
//     expired exceptions, grace windows and maximum scan ages take effect
//     and are announced without anyone asking.
func (k *Keeper) Sweep(ctx context.Context) error {
	now := k.now()
	var errs []error
	if err := k.sweepStuck(ctx, now); err != nil {
		errs = append(errs, err)
	}
	images, err := k.store.List(ctx, store.Filter{})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	pol, _, _ := k.policy.Get()
	if err := k.sweepRescans(ctx, images, pol, now); err != nil {
		errs = append(errs, err)
	}
	for _, im := range images {
		if ctx.Err() != nil {
			break
		}
		v, err := k.Reevaluate(ctx, im.Repository, im.Digest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// A digest that became promotable without a scan (a new
		// exception, a milder policy) is auto-promoted here.
		if pol != nil && pol.AutoPromote && v.Promotable() && !im.Promoted && imgref.IsQuarantine(im.Repository) {
			if err := k.autoPromoteTags(ctx, im.Repository, im.Digest, v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (k *Keeper) sweepStuck(ctx context.Context, now time.Time) error {
	stuck, err := k.queue.Stuck(ctx, k.stuckAfter, now)
	if err != nil {
		return err
	}
	for _, j := range stuck {
		if j.Kind != (ScanArgs{}).Kind() {
			continue
		}
		// Once per job, whichever replica sweeps.
		first, err := k.store.SwapSetting(ctx, stuckReportedKey+itoa(j.ID), "", now.UTC().Format(time.RFC3339))
		if err != nil {
			return err
		}
		if !first {
			continue
		}
		var a ScanArgs
		if err := json.Unmarshal(j.Args, &a); err != nil || a.Digest == "" {
			continue
		}
		running := now.Sub(j.AttemptedAt).Round(time.Second)
		why := "scan stuck: running for " + running.String() + " (job " + itoa(j.ID) + "), longer than the " + k.stuckAfter.String() + " time-out"
		k.log.Error("scan stuck", "repository", a.Repository, "digest", a.Digest, "job", j.ID, "running", running)
		k.metrics.ScanDone("stuck", 0)
		if err := k.store.PutScan(ctx, store.Scan{Digest: a.Digest, Repository: a.Repository, Error: why}); err != nil {
			return err
		}
		k.auditEntry(ctx, audit.Entry{Actor: ActorGate, Action: audit.ActionScan, Repository: a.Repository, Digest: a.Digest,
			Outcome: audit.OutcomeError}, map[string]any{"error": why, "job": j.ID})
		k.publish(events.Event{Type: events.TypeScanStuck, Subject: a.Repository + "@" + a.Digest, Data: map[string]any{
			"repository": a.Repository, "digest": a.Digest, "job": j.ID, "attemptedAt": j.AttemptedAt, "running": running.String()}})
		if _, err := k.Reevaluate(ctx, a.Repository, a.Digest); err != nil {
			return err
		}
	}
	return nil
}

// dbBuild returns the build time of the vulnerability database, zero
// when there is none (or it cannot be read).
func (k *Keeper) dbBuild() time.Time {
	if _, err := os.Stat(k.dbPath); err != nil {
		return time.Time{}
	}
	db, err := vulndb.Open(k.dbPath)
	if err != nil {
		return time.Time{}
	}
	defer db.Close()
	return db.Meta().BuiltAt
}

// sweepRescans queues the rescans the state of each scan calls for. The
// decision is made again at every sweep from what is stored, never from a
// one-time notice, so a rescan that could not be queued (a job for the
// digest still finishing) is queued at the next sweep:
//   - scanned with an older database build than the current one: db-update;
//   - failed for want of a database, and there is one now: db-available;
//   - older than half the policy's maxScanAge: max-scan-age, so that a
//     scan never gets old enough to fail the verdict;
//   - at the first sweep of the process, failed for a reason that may
//     pass (not a permanent one: unsupported, hostile, corrupt, over a
//     limit, cut off by the server dying), or never scanned at all (a job
//     lost with an old queue): retry.
func (k *Keeper) sweepRescans(ctx context.Context, images []store.Image, pol *gate.Policy, now time.Time) error {
	built := k.dbBuild()
	if built.IsZero() {
		return nil // nothing to scan with
	}
	k.mu.Lock()
	first := !k.swept
	k.swept = true
	k.mu.Unlock()
	states, err := k.store.ScanStates(ctx)
	if err != nil {
		return err
	}
	byDigest := make(map[string]store.ScanState, len(states))
	for _, st := range states {
		byDigest[st.Digest] = st
	}
	var errs []error
	for _, im := range images {
		st, scanned := byDigest[im.Digest]
		reason := ""
		switch {
		case scanned && st.Error != "" && strings.HasPrefix(st.Error, errNoDB.Error()):
			reason = "db-available"
		case scanned && !st.ScannedAt.IsZero() && st.DBBuiltAt.Before(built):
			reason = "db-update"
		case scanned && !st.ScannedAt.IsZero() && pol != nil && pol.MaxScanAge > 0 && st.ScannedAt.Before(now.Add(-pol.MaxScanAge/2)):
			reason = "max-scan-age"
		case first && (!scanned || (st.ScannedAt.IsZero() && !st.Permanent)):
			reason = "retry"
		}
		if reason != "" {
			if _, err := k.Enqueue(ctx, im.Repository, "", im.Digest, reason); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// stuckReportedKey prefixes the setting that records, per job id, that its
// scan was reported stuck.
const stuckReportedKey = "gate.stuck-reported."
