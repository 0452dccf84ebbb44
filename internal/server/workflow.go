package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/workflow"
)

// workflowQueue is the job queue the workflow engine's jobs run in, apart
// from the gate's scans so that a long patch never delays a scan.
const workflowQueue = "workflow"

// workflowParts are the continuous-patching services of one server.
type workflowParts struct {
	store  *workflow.SQL
	engine *workflow.Engine
}

// openWorkflows opens the run ledger and builds the engine on the gate's
// job queue (before it starts). now is the clock (nil: the system clock).
func openWorkflows(ctx context.Context, cfg config.Config, dbs *database.Opener, log *slog.Logger, reg *registry.Registry, gp *gateParts, now func() time.Time) (*workflowParts, error) {
	st, err := workflow.Open(ctx, dbs)
	if err != nil {
		return nil, err
	}
	wc := cfg.Workflow
	log = log.With("component", "workflow")
	patchOpts := []patch.Option{patch.WithCacheDir(patchCacheDir(cfg)), patch.WithCacheLimits(patchCacheLimits(cfg)), patch.WithLimits(scan.Limits(cfg.Gate.Limits))}
	var clock workflow.Clock = workflow.SystemClock{}
	if now != nil {
		clock = clockFunc(now)
	}
	cache, err := scan.NewFileCache(filepath.Join(cfg.Data, "scan", "inventory"))
	if err != nil {
		st.Close()
		return nil, err
	}
	eng, err := workflow.New(workflow.Options{
		Store: st, Queue: gp.queue, QueueName: workflowQueue, Registry: reg, DBPath: vulndb.DefaultPath(cfg.Data),
		InventoryCache: cache, ScanOptions: gateScanOptions(cfg), Clock: clock, Log: log,
		Patcher: &workflow.LibraryPatcher{Options: patchOpts, Mirror: wc.Mirror, SecurityMirror: wc.SecurityMirror, HostKeyring: wc.HostKeyring,
			Sandbox: wc.Sandbox, Tool: "drydock " + buildinfo.Get().Version, Clock: clock, Logger: log},
		HTTPClient:   &http.Client{Timeout: 5 * time.Minute},
		TickInterval: time.Duration(wc.TickInterval), Debounce: time.Duration(wc.Debounce), PollInterval: time.Duration(wc.PollInterval),
		WithUser: auth.WithUser, SignPatch: gp.signPatch,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("workflow engine: %w", err)
	}
	if err := eng.Start(); err != nil {
		st.Close()
		return nil, fmt.Errorf("workflow engine: %w", err)
	}
	return &workflowParts{store: st, engine: eng}, nil
}

func (w *workflowParts) close() error {
	if w == nil || w.store == nil {
		return nil
	}
	return w.store.Close()
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// signPatch signs a patch the server ran with the gate's key (#20); nil
// when the gate signs nothing.
func (g *gateParts) signPatch(ctx context.Context, p attest.PatchWritten) error {
	if g.keeper.Key() == nil {
		return nil
	}
	_, err := g.keeper.SignPatch(ctx, p)
	return err
}
