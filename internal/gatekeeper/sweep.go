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
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Run sweeps every interval until ctx ends (see Sweep).
func (k *Keeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := k.Sweep(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("gate sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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

// scanOlderThan reports whether digest's last successful scan ran before t.
func (k *Keeper) scanOlderThan(ctx context.Context, digest string, t time.Time) bool {
	sc, err := k.store.Scan(ctx, digest)
	return err == nil && sc.Error == "" && !sc.ScannedAt.IsZero() && sc.ScannedAt.Before(t)
}

// Sweep does the gate's periodic work:
//   - a scan running longer than StuckAfter fails its digest's verdict
//     (fail closed) and raises a stuck-scan event, once per job;
//   - when the vulnerability database changed (a new build, or a first
//     one), every known digest is queued for a rescan, and so is a digest
//     whose scan is older than half the policy's maxScanAge;
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
	changed, first := k.dbChanged()
	pol, _, _ := k.policy.Get()
	for _, im := range images {
		reason := ""
		switch {
		case changed:
			reason = "db-update"
		case pol != nil && pol.MaxScanAge > 0 && k.scanOlderThan(ctx, im.Digest, now.Add(-pol.MaxScanAge/2)):
			// Rescan at half the policy's maximum scan age, so that a
			// scan never gets old enough to fail the verdict.
			reason = "max-scan-age"
		case first:
			// At start, retry the scans that failed before (a missing
			// database, a crash): the database may be there now.
			if sc, err := k.store.Scan(ctx, im.Digest); err == nil && sc.Error != "" {
				reason = "retry"
			}
		}
		if reason != "" {
			if _, err := k.Enqueue(ctx, im.Repository, "", im.Digest, reason); err != nil {
				errs = append(errs, err)
			}
		}
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
		if pol != nil && pol.AutoPromote && v.Promotable() && !im.Promoted && strings.HasPrefix(im.Repository, Quarantine) {
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
		k.mu.Lock()
		seen := k.stuckEvented[j.ID]
		k.stuckEvented[j.ID] = true
		k.mu.Unlock()
		if seen {
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

// dbChanged reports whether the vulnerability database's build differs
// from the one seen by the previous call; first is set on the first call,
// which only records the build.
func (k *Keeper) dbChanged() (changed, first bool) {
	var built time.Time
	if _, err := os.Stat(k.dbPath); err == nil {
		if db, err := vulndb.Open(k.dbPath); err == nil {
			built = db.Meta().BuiltAt
			db.Close()
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	first = !k.dbSeen
	prev := k.dbBuiltAt
	k.dbSeen, k.dbBuiltAt = true, built
	return !first && !built.IsZero() && !built.Equal(prev), first
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
