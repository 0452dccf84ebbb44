package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gc"
	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/store"
)

// gcQueue is the job queue collections run in: one worker, apart from the
// scans, so that a long collection never holds a scan worker.
const gcQueue = "gc"

// gcParts are the garbage collection services of one server: its member
// of the collection barrier (every registry write goes through it) and
// the service that runs collections and retention.
type gcParts struct {
	db      *database.DB
	member  *gc.Member
	service *gc.Service
	quotas  *gc.Quotas // nil without gc.quotas
	metrics *metrics.GC
	// inventory is the Kubernetes inventory once kube.watch opened it:
	// collections keep what runs.
	inventory atomic.Pointer[gc.Inventory]
}

// useInventory makes collections keep the live/ digests inv says run.
func (g *gcParts) useInventory(inv gc.Inventory) {
	if g != nil && inv != nil {
		g.inventory.Store(&inv)
	}
}

// running lists what the inventory says runs (nothing without one).
func (g *gcParts) running(ctx context.Context) ([]digest.Digest, error) {
	inv := g.inventory.Load()
	if inv == nil {
		return nil, nil
	}
	return gc.InventoryDigests(*inv)(ctx)
}

// joinGC opens the collector's database and joins this process to the
// collection barrier; it comes before the registry, whose writes enter it.
func joinGC(ctx context.Context, dbs *database.Opener, log *slog.Logger, ms *metrics.Metrics) (*gcParts, error) {
	db, err := dbs.Open(ctx, gc.Component)
	if err != nil {
		return nil, err
	}
	gm := ms.NewGC()
	m, err := gc.Join(ctx, db, gc.WithLogger(log.With("component", "gc")), gc.WithProtectObserver(gm.ObserveProtect))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	return &gcParts{db: db, member: m, metrics: gm}, nil
}

// registryOptions are the registry's options for collection: the barrier,
// the pull observer (retention's keepDays) and the quotas.
func (g *gcParts) registryOptions(cfg config.Config, audits *audit.Log, log *slog.Logger, now func() time.Time) []registry.Option {
	var opts []registry.Option
	if len(cfg.GC.Quotas) > 0 {
		g.quotas = gc.NewQuotas(g.db, cfg.GC.Quotas, audits, log.With("component", "gc"), now)
		opts = append(opts, registry.WithQuota(g.quotas))
	}
	return append(opts,
		registry.WithBarrier(g.member),
		registry.WithPullObserver(func(ctx context.Context, repo string, d digest.Digest) {
			if g.service != nil {
				g.service.Pulled(ctx, repo, d)
			}
		}),
	)
}

// manifestPushed records a tag's push for retention.
func (g *gcParts) manifestPushed(ctx context.Context, log *slog.Logger, repo, tag string, d digest.Digest) {
	if g.service == nil || tag == "" {
		return
	}
	if err := g.service.RecordPush(ctx, repo, tag, d); err != nil {
		log.Warn("recording a push for retention", "repository", repo, "tag", tag, "err", err)
	}
}

// start builds the service on the gate's queue (before it starts).
func (g *gcParts) start(cfg config.Config, log *slog.Logger, reg *registry.Registry, gp *gateParts, audits *audit.Log, now func() time.Time) error {
	verdicts := gp.store
	svc, err := gc.NewService(gc.Options{
		Registry: reg, Member: g.member, Queue: gp.queue, JobQueue: gcQueue, Audit: audits, Metrics: g.metrics,
		Log: log.With("component", "gc"), Now: now, Config: cfg.GC, UploadTimeout: time.Duration(cfg.Uploads.PurgeAfter),
		Guards: gc.Guards{Pending: func(d digest.Digest) bool { return pending(verdicts, d) }, RunningDigests: g.running}, Quotas: g.quotas,
	})
	if err != nil {
		return fmt.Errorf("garbage collection: %w", err)
	}
	if err := svc.Schedule(); err != nil {
		return fmt.Errorf("gc.schedule: %w", err)
	}
	g.service = svc
	return nil
}

// pending reports whether d's verdict is pending; when the store cannot
// say, it answers yes, which keeps the image.
func pending(st store.Store, d digest.Digest) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	im, err := st.Image(ctx, d.String())
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	return err != nil || im.Verdict.State == gate.StatePending
}

// run keeps the member in step with collections until ctx ends.
func (g *gcParts) run(ctx context.Context) {
	if g != nil {
		g.member.Run(ctx)
	}
}

// close leaves the barrier and closes the database.
func (g *gcParts) close() error {
	if g == nil {
		return nil
	}
	return errors.Join(g.member.Close(), g.db.Close())
}
