package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/patchjob"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// gateParts are the gate's services of one server process.
type gateParts struct {
	store      store.Store
	exceptions exceptions.Store
	queue      *jobs.Queue
	dispatcher *events.Dispatcher
	keeper     *gatekeeper.Keeper
	metrics    *metrics.Gate
	patches    *patchjob.Service
	// promoted are told of each promotion (the gate's events pass through
	// them on their way to the dispatcher).
	promoted promotionListeners
}

// openGate opens the verdict store, the job queue and the event
// dispatcher and builds the gatekeeper on reg. now is the clock (nil: the
// system clock).
func openGate(ctx context.Context, cfg config.Config, dbs *database.Opener, log *slog.Logger, reg *registry.Registry, audits *audit.Log, m *metrics.Metrics, now func() time.Time) (_ *gateParts, err error) {
	g := &gateParts{}
	defer func() {
		if err != nil {
			g.close(context.Background())
		}
	}()
	st, err := store.Open(ctx, dbs)
	if err != nil {
		return nil, err
	}
	if now != nil {
		st.SetClock(now) // the days of the findings history
	}
	g.store = st
	// The policy's one home: the file gate.policy names, else the gate's
	// store (edited through the API; every replica reads it there).
	policy, err := gatekeeper.NewPolicySource(cfg.Gate.Policy, gatekeeper.WithPolicyStore(g.store), gatekeeper.WithPolicyClock(now))
	if err != nil {
		return nil, fmt.Errorf("gate.policy: %w", err)
	}
	exSource, err := gatekeeper.NewExceptionSource(cfg.Gate.Exceptions)
	if err != nil {
		return nil, fmt.Errorf("gate.exceptions: %w", err)
	}
	if g.exceptions, err = exceptions.Open(ctx, dbs); err != nil {
		return nil, err
	}
	qopts := []jobs.Option{
		jobs.WithLogger(log.With("component", "jobs")),
		jobs.WithWorkers(cfg.Gate.ScanWorkers),
		jobs.WithQueue(workflowQueue, cfg.Workflow.Workers),
		jobs.WithJobTimeout(time.Duration(cfg.Gate.ScanTimeout)),
		jobs.WithRescueStuckAfter(time.Duration(cfg.Gate.StuckAfter)),
		// The sweep has a worker of its own: it never waits for, or holds
		// up, a scan.
		jobs.WithQueue(gatekeeper.SweepQueue, 1),
		jobs.WithQueue(gcQueue, 1),
		// SQLite has no LISTEN/NOTIFY: new jobs are found by polling. A
		// tenth of a second keeps a push's scan starting at once, for one
		// indexed query per poll.
		jobs.WithPollInterval(100 * time.Millisecond),
		// A scan that errors is retried after 2, 8, 18 and 32 seconds, then
		// its digest fails with the error: about a minute, not River's
		// default of several.
		jobs.WithRetryBackoff(func(attempt int) time.Duration {
			return min(time.Duration(attempt*attempt)*2*time.Second, time.Minute)
		}),
		// Patches run one at a time, apart from the scans.
		jobs.WithQueue(patchjob.Queue, 1),
	}
	if dbs.Driver() == database.SQLite {
		// One process works the embedded queue: jobs a killed server left
		// running are queued again at start, not after StuckAfter. Replicas
		// sharing PostgreSQL leave that to River's rescuer on the leader:
		// another replica's running job is not an orphan.
		qopts = append(qopts, jobs.WithSingleWorker())
	}
	if g.queue, err = jobs.Open(ctx, dbs, qopts...); err != nil {
		return nil, err
	}
	receivers, err := webhookReceivers(cfg.Events.Webhooks)
	if err != nil {
		return nil, err
	}
	opts := []events.Option{events.WithLogger(log.With("component", "events"))}
	if g.dispatcher, err = events.NewDispatcher(receivers, opts...); err != nil {
		return nil, err
	}
	g.metrics = m.NewGate(g.store.CountByState)
	cache, err := scan.NewFileCache(filepath.Join(cfg.Data, "scan", "inventory"))
	if err != nil {
		return nil, err
	}
	key, err := openKey(cfg, now)
	if err != nil {
		return nil, err
	}
	if g.keeper, err = gatekeeper.New(gatekeeper.Options{
		Registry: reg, Store: g.store, Queue: g.queue, Audit: audits, Events: &gateEvents{next: g.dispatcher, promoted: &g.promoted},
		Policy: policy, Exceptions: exSource, ExceptionStore: g.exceptions, DBPath: vulndb.DefaultPath(cfg.Data), InventoryCache: cache,
		Now: now, Log: log.With("component", "gate"), StuckAfter: time.Duration(cfg.Gate.StuckAfter),
		SweepInterval: time.Duration(cfg.Gate.SweepInterval), Metrics: g.metrics, Key: key,
		ScanOptions: gateScanOptions(cfg),
		MaxDataAge:  time.Duration(cfg.Gate.MaxDataAge),
	}); err != nil {
		return nil, err
	}
	if g.patches, err = openPatches(cfg, log, reg, g.queue, g.signPatch); err != nil {
		return nil, err
	}
	name := "stored policy (the built-in one until edited)"
	if cfg.Gate.Policy != "" {
		name = cfg.Gate.Policy
	}
	if _, err := os.Stat(vulndb.DefaultPath(cfg.Data)); err != nil {
		log.Warn("no vulnerability database yet: scans fail and nothing is promotable until \"drydock db update\" (or \"drydock db pull\") writes one; the scans run again when it appears",
			"vulndb", vulndb.DefaultPath(cfg.Data))
	}
	log.Info("gate ready", "policy", name, "exceptions", cfg.Gate.Exceptions, "webhooks", len(receivers),
		"vulndb", vulndb.DefaultPath(cfg.Data))
	return g, nil
}

// openKey loads drydock's signing key as cfg.Sign says (nil when signing
// is disabled).
func openKey(cfg config.Config, now func() time.Time) (*attest.Key, error) {
	if cfg.Sign.Disabled {
		return nil, nil
	}
	if cfg.Sign.Key == "" && cfg.Database.Driver == database.Postgres {
		// Replicas would each generate a key of their own.
		return nil, errors.New("sign.key: replicas sharing a PostgreSQL database must share one signing key: name a key file (or set sign.disabled)")
	}
	pw := os.Getenv("DRYDOCK_SIGN_PASSWORD")
	if pw == "" {
		pw = os.Getenv("COSIGN_PASSWORD")
	}
	k, err := attest.LoadKey(attest.KeyOptions{Dir: filepath.Join(cfg.Data, "keys"), Ref: cfg.Sign.Key,
		Certificate: cfg.Sign.Certificate, Password: []byte(pw), Now: now})
	if err != nil {
		return nil, fmt.Errorf("sign.key: %w", err)
	}
	return k, nil
}

// webhookReceivers turns the configured webhooks into event receivers.
func webhookReceivers(hooks []config.Webhook) ([]events.Receiver, error) {
	var out []events.Receiver
	for i, h := range hooks {
		secret := []byte(h.Secret)
		if h.SecretFile != "" {
			b, err := os.ReadFile(h.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("events.webhooks[%d] (%q): secretFile: %w", i, h.Name, err)
			}
			secret = []byte(strings.TrimSpace(string(b)))
		}
		out = append(out, events.Receiver{Name: h.Name, URL: h.URL, Secret: secret, Types: h.Types})
	}
	return out, nil
}

// start starts the job queue: scans, and the sweep, a periodic job that
// one of the processes sharing the queue runs each gate.sweepInterval.
func (g *gateParts) start(ctx context.Context) error {
	return g.queue.Start(context.WithoutCancel(ctx))
}

// close stops the queue (letting running scans finish for a while), then
// flushes events and closes the store.
func (g *gateParts) close(ctx context.Context) error {
	var errs []error
	if g.queue != nil {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := g.queue.Stop(sctx); err != nil && !errors.Is(err, jobs.ErrClosed) {
			errs = append(errs, err)
		}
		cancel()
		if err := g.queue.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if g.dispatcher != nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := g.dispatcher.Close(dctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if g.store != nil {
		if err := g.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if g.exceptions != nil {
		if err := g.exceptions.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openPatches registers the patch jobs of POST /api/v1/patch: patch.Run
// against the registry in process, attributed to the job's requester.
func openPatches(cfg config.Config, log *slog.Logger, reg *registry.Registry, q *jobs.Queue, sign func(context.Context, attest.PatchWritten) error) (*patchjob.Service, error) {
	srv, err := oci.ParseServer("http://" + registry.InternalHost)
	if err != nil {
		return nil, err
	}
	return patchjob.New(q, patchjob.Options{
		Server: srv, ServerOptions: []oci.Option{oci.WithTransport(reg.Transport())},
		DBPath: vulndb.DefaultPath(cfg.Data), DistroInfo: cfg.Patch.DistroInfo, CacheDir: patchCacheDir(cfg),
		Limits: patchCacheLimits(cfg), ImageLimits: scan.Limits(cfg.Gate.Limits), Log: log.With("component", "patch"), WithActor: auth.WithUser,
		SignPatch: sign,
	})
}

// patchCacheDir is where the server's patches (API jobs and workflows)
// keep their caches.
func patchCacheDir(cfg config.Config) string {
	if cfg.Patch.CacheDir != "" {
		return cfg.Patch.CacheDir
	}
	return filepath.Join(cfg.Data, "cache", "patch")
}

// gateScanOptions are the gate's scan limits and maximum data age: the
// one home of what the gate and the workflow engine refuse.
func gateScanOptions(cfg config.Config) []scan.Option {
	return []scan.Option{scan.WithLimits(scan.Limits(cfg.Gate.Limits)), scan.WithMaxDBAge(time.Duration(cfg.Gate.MaxDataAge))}
}

func patchCacheLimits(cfg config.Config) patch.CacheLimits {
	return patch.CacheLimits{Trees: cfg.Patch.TreeCacheSize, Images: cfg.Patch.ImageCacheSize, Packages: cfg.Patch.PackageCacheSize}
}
