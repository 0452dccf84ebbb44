package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/registry"
)

// ActorGC is the audit actor of scheduled collections and of the tags
// retention deletes.
const ActorGC = "gc"

// Auditor records audit entries (*audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) (*audit.Entry, error)
}

// Options configure a Service.
type Options struct {
	Registry *registry.Registry
	Member   *Member
	Queue    *jobs.Queue
	// JobQueue is the queue collections run in (default: the default
	// queue); a queue of their own keeps a long collection from holding
	// a scan worker.
	JobQueue string
	Audit    Auditor
	Metrics  *metrics.GC
	Log      *slog.Logger
	// Now is the clock retention and the run records read (default: the
	// system clock).
	Now func() time.Time
	// Config is the serve config's gc section.
	Config config.GC
	// UploadTimeout is how long an upload may stay idle (uploads.purgeAfter).
	UploadTimeout time.Duration
	// UploadPurgeInterval is how often idle uploads are purged between
	// collections (uploads.purgeInterval); 0: only by collections.
	UploadPurgeInterval time.Duration
	// Guards answer the never-delete rules other services know; their
	// fields may be nil.
	Guards Guards
	// Quotas, when set, receive each collection's usage (the registry
	// checks uploads against them).
	Quotas *Quotas
}

// Service runs collections and retention, on a schedule and on request,
// as jobs on the persistent queue, and records them in gc_runs.
type Service struct {
	o        Options
	runs     runs
	activity *activity
	policies []Policy
}

// NewService builds the service and registers its job handlers on the
// queue (before the queue starts).
func NewService(o Options) (*Service, error) {
	if o.Registry == nil || o.Member == nil || o.Queue == nil {
		return nil, errors.New("gc service: registry, member and queue are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.JobQueue == "" {
		o.JobQueue = jobs.DefaultQueue
	}
	s := &Service{o: o, runs: runs{db: o.Member.db}, activity: newActivity(o.Member.db, o.Now), policies: PoliciesFrom(o.Config.Retention)}
	if err := jobs.RegisterWithTimeout(o.Queue, -1, s.runJob); err != nil {
		return nil, err
	}
	if err := jobs.Register(o.Queue, s.scheduledJob); err != nil {
		return nil, err
	}
	if err := jobs.Register(o.Queue, s.purgeJob); err != nil {
		return nil, err
	}
	return s, nil
}

// Schedule installs the periodic jobs: collections every Config.Schedule,
// upload purges every UploadPurgeInterval. Call after NewService, before
// or after the queue starts.
func (s *Service) Schedule() error {
	if d := time.Duration(s.o.Config.Schedule); d > 0 {
		if err := jobs.Schedule(s.o.Queue, "gc.schedule", d, scheduledArgs{}); err != nil {
			return err
		}
	}
	if s.o.UploadPurgeInterval > 0 && s.o.UploadTimeout > 0 {
		if err := jobs.Schedule(s.o.Queue, "gc.purge_uploads", s.o.UploadPurgeInterval, purgeArgs{}); err != nil {
			return err
		}
	}
	return nil
}

type runArgs struct {
	RunID int64 `json:"run_id"`
}

func (runArgs) Kind() string { return "gc.run" }

type scheduledArgs struct{}

func (scheduledArgs) Kind() string { return "gc.scheduled" }

type purgeArgs struct{}

func (purgeArgs) Kind() string { return "gc.purge_uploads" }

// Request asks for a collection.
type Request struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool `json:"dryRun"`
	// SkipRetention runs the collection without the retention policies.
	SkipRetention bool `json:"skipRetention"`
	// Actor is who asked, for the audit log.
	Actor string `json:"-"`
}

// Start records a requested run and queues it; its progress and report
// are read with Run.
func (s *Service) Start(ctx context.Context, req Request) (*Run, error) {
	return s.start(ctx, TriggerRequest, req)
}

func (s *Service) start(ctx context.Context, trigger string, req Request) (*Run, error) {
	if req.Actor == "" {
		req.Actor = ActorGC
	}
	r := &Run{Trigger: trigger, Actor: req.Actor, DryRun: req.DryRun, Retention: !req.SkipRetention && len(s.policies) > 0,
		CreatedAt: s.o.Now().UTC()}
	if err := s.runs.create(ctx, r); err != nil {
		return nil, err
	}
	if _, err := s.o.Queue.Enqueue(ctx, runArgs{RunID: r.ID}, jobs.EnqueueOptions{Queue: s.o.JobQueue,
		UniqueKey: fmt.Sprintf("gc-run-%d", r.ID)}); err != nil {
		_ = s.runs.finish(context.WithoutCancel(ctx), r.ID, s.o.Now(), nil, fmt.Errorf("queueing: %w", err))
		return nil, err
	}
	return r, nil
}

// Run returns a run with its progress and report.
func (s *Service) Run(ctx context.Context, id int64) (*Run, error) { return s.runs.get(ctx, id) }

// Runs lists the newest runs (without the items of their reports).
func (s *Service) Runs(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	return s.runs.list(ctx, limit)
}

func (s *Service) scheduledJob(ctx context.Context, _ scheduledArgs) error {
	_, err := s.start(ctx, TriggerSchedule, Request{Actor: ActorGC})
	return err
}

func (s *Service) purgeJob(ctx context.Context, _ purgeArgs) error {
	n, err := s.o.Registry.PurgeUploads(ctx, s.o.UploadTimeout)
	if n > 0 {
		s.o.Log.Info("purged abandoned uploads", "count", n)
	}
	return err
}

// runJob executes a run. A run found running was cut off by a crash: it
// starts again from the beginning (collecting is idempotent).
func (s *Service) runJob(ctx context.Context, a runArgs) error {
	r, err := s.runs.get(ctx, a.RunID)
	if errors.Is(err, ErrRunNotFound) {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if r.Finished() {
		return nil
	}
	if err := s.execute(ctx, r); err != nil {
		// Recorded in the run; a new run tries again.
		return jobs.Permanent(err)
	}
	return nil
}

// leadWait is how often a run waiting for another collection to end
// tries again.
const leadWait = time.Second

// execute runs r: retention, then the collection.
func (s *Service) execute(ctx context.Context, r *Run) (err error) {
	log := s.o.Log.With("run", r.ID, "dry_run", r.DryRun, "trigger", r.Trigger)
	var cycle *Cycle
	if !r.DryRun {
		for {
			cycle, err = s.o.Member.Lead(ctx)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrBusy) {
				return s.fail(ctx, r, log, fmt.Errorf("becoming the collector: %w", err))
			}
			select {
			case <-ctx.Done():
				return s.fail(ctx, r, log, ctx.Err())
			case <-time.After(leadWait):
			}
		}
		defer func() {
			if ferr := cycle.Finish(context.WithoutCancel(ctx)); ferr != nil {
				err = errors.Join(err, ferr)
			}
		}()
	}
	started := s.o.Now()
	if err := s.runs.start(ctx, r.ID, started); err != nil {
		return fmt.Errorf("run %d: %w", r.ID, err)
	}
	s.o.Metrics.Running(true)
	defer s.o.Metrics.Running(false)
	log.Info("garbage collection started", "retention", r.Retention, "attempt", r.Attempts+1)

	rep := &Report{}
	guards, err := s.guards(ctx)
	if err != nil {
		return s.fail(ctx, r, log, err)
	}
	var ignore map[string]bool
	if r.Retention {
		if rep.Retention, ignore, err = s.retain(ctx, r.DryRun, guards); err != nil {
			return s.fail(ctx, r, log, fmt.Errorf("retention: %w", err))
		}
		log.Info("retention done", "deleted_tags", len(rep.Retention.Deleted), "protected_tags", len(rep.Retention.Protected))
	}
	o := registry.CollectOptions{DryRun: r.DryRun, Grace: time.Duration(s.o.Config.Grace), UploadTimeout: s.o.UploadTimeout, Pace: s.o.Config.Pace,
		Yield: time.Duration(s.o.Config.Yield), Keep: keep(ctx, guards), Progress: s.progress(ctx, r.ID, log)}
	if cycle != nil {
		o.Coordinator = cycle
	}
	if r.DryRun && len(ignore) > 0 {
		o.IgnoreTags = func(repo, tag string) bool { return ignore[repo+":"+tag] }
	}
	if s.o.Quotas != nil && !r.DryRun {
		if err := s.o.Quotas.beginCollection(ctx); err != nil {
			return s.fail(ctx, r, log, err)
		}
	}
	col, err := s.o.Registry.Collect(ctx, o)
	rep.Collection = col
	if err != nil {
		return s.fail(ctx, r, log, err, rep)
	}
	if s.o.Quotas != nil && !r.DryRun {
		if err := s.o.Quotas.collected(ctx, col.Usage); err != nil {
			return s.fail(ctx, r, log, err, rep)
		}
	}
	if ferr := s.runs.finish(context.WithoutCancel(ctx), r.ID, s.o.Now(), rep, nil); ferr != nil {
		return ferr
	}
	s.o.Metrics.Collected(true, r.DryRun, col.Duration, col.FreedBytes, col.Deleted, col.Protected, s.o.Now())
	if !r.DryRun {
		for _, u := range col.Usage {
			if u.Scope == "namespace" {
				s.o.Metrics.NamespaceUsage(u.Name, u.Bytes)
			}
		}
	}
	retained := 0
	if rep.Retention != nil {
		retained = len(rep.Retention.Deleted)
	}
	log.Info("garbage collection finished", "freed_bytes", col.FreedBytes, "deleted", col.Deleted, "protected", col.Protected,
		"deleted_tags", retained, "duration", col.Duration.String(), "yielded", col.Yielded.String())
	s.audit(ctx, r, audit.OutcomeOK, map[string]any{"run": r.ID, "dryRun": r.DryRun, "freedBytes": col.FreedBytes,
		"deleted": col.Deleted, "protected": col.Protected, "deletedTags": retained, "durationSeconds": col.Duration.Seconds()})
	return nil
}

// fail records a failed run.
func (s *Service) fail(ctx context.Context, r *Run, log *slog.Logger, err error, rep ...*Report) error {
	var report *Report
	if len(rep) > 0 {
		report = rep[0]
	}
	if ferr := s.runs.finish(context.WithoutCancel(ctx), r.ID, s.o.Now(), report, err); ferr != nil {
		err = errors.Join(err, ferr)
	}
	var d time.Duration
	if report != nil && report.Collection != nil {
		d = report.Collection.Duration
	}
	s.o.Metrics.Collected(false, r.DryRun, d, 0, nil, 0, s.o.Now())
	log.Error("garbage collection failed", "err", err)
	s.audit(ctx, r, audit.OutcomeError, map[string]any{"run": r.ID, "dryRun": r.DryRun, "error": err.Error()})
	return err
}

func (s *Service) audit(ctx context.Context, r *Run, outcome string, detail map[string]any) {
	if s.o.Audit == nil {
		return
	}
	d, _ := audit.Detail(detail)
	if _, err := s.o.Audit.Record(context.WithoutCancel(ctx), audit.Entry{Actor: r.Actor, Action: audit.ActionGC,
		Outcome: outcome, Detail: d}); err != nil {
		s.o.Log.Error("audit: recording a garbage collection failed", "err", err)
	}
}

// progressEvery bounds how often a run's progress is written.
const progressEvery = 500 * time.Millisecond

// progress returns the collection's progress callback: the log at each
// phase, the run record at most every progressEvery.
func (s *Service) progress(ctx context.Context, id int64, log *slog.Logger) func(registry.Progress) {
	var mu sync.Mutex
	var last time.Time
	phase := ""
	return func(p registry.Progress) {
		mu.Lock()
		defer mu.Unlock()
		changed := p.Phase != phase
		if changed {
			log.Info("garbage collection", "phase", p.Phase, "total", p.Total)
			phase = p.Phase
		}
		if !changed && time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		if err := s.runs.progress(context.WithoutCancel(ctx), id, p); err != nil {
			log.Warn("recording progress", "err", err)
		}
	}
}

// guards are the run's never-delete rules: the configured ones, with
// what runs read once from the inventory.
func (s *Service) guards(ctx context.Context) (Guards, error) {
	g := s.o.Guards
	if g.RunningDigests == nil {
		return g, nil
	}
	ds, err := g.RunningDigests(ctx)
	if err != nil {
		return g, fmt.Errorf("reading what runs (kept from collection): %w", err)
	}
	set := make(map[digest.Digest]bool, len(ds))
	for _, d := range ds {
		set[d] = true
	}
	prev := g.Running
	g.Running = func(d digest.Digest) bool { return set[d] || (prev != nil && prev(d)) }
	return g, nil
}

// keep is the collection's extra roots: what running workloads use in
// live/. (A pending verdict keeps a tag from retention, not an image
// someone untagged or deleted: that one is gone for clients already.)
func keep(ctx context.Context, g Guards) func(repo string, d digest.Digest) string {
	return func(repo string, d digest.Digest) string {
		if ctx.Err() != nil {
			return "cancelled" // keep everything once cancelled
		}
		if g.Running != nil && imgref.IsLive(repo) && g.Running(d) {
			return "a running workload uses it"
		}
		return ""
	}
}

// Quotas lists every repository's and namespace's usage with its quota
// (an empty list when no quotas are configured and no collection ran).
func (s *Service) Quotas(ctx context.Context) ([]QuotaUsage, error) {
	q := s.o.Quotas
	if q == nil {
		q = NewQuotas(s.o.Member.db, nil, nil, nil, s.o.Now)
	}
	return q.List(ctx)
}

// RecordPush records a tag's push time (retention's keepDays); the
// server's manifest listener calls it.
func (s *Service) RecordPush(ctx context.Context, repo, tag string, d digest.Digest) error {
	if tag == "" {
		return nil
	}
	return s.activity.pushed(ctx, repo, tag, d)
}

// Pulled records a pull; it is the registry's PullObserver.
func (s *Service) Pulled(ctx context.Context, repo string, d digest.Digest) {
	if err := s.activity.pulled(ctx, repo, d); err != nil {
		s.o.Log.Warn("recording a pull", "err", err)
	}
}

// annotations reads a manifest's base-image annotation and index children.
func annotations(body []byte) (base digest.Digest, children []digest.Digest) {
	var m struct {
		Manifests   []ocispec.Descriptor `json:"manifests"`
		Annotations map[string]string    `json:"annotations"`
	}
	if json.Unmarshal(body, &m) != nil {
		return "", nil
	}
	for _, c := range m.Manifests {
		children = append(children, c.Digest)
	}
	if b, err := imgref.ParseDigest(m.Annotations[ocispec.AnnotationBaseImageDigest]); err == nil {
		base = b
	}
	return base, children
}
