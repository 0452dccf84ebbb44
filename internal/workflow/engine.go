package workflow

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/scan"
)

// Registry is what the engine needs of drydock's registry, in process;
// *registry.Registry implements it. A missing repository or tag is
// registry.ErrNotFound.
type Registry interface {
	Tags(ctx context.Context, repo string) ([]string, error)
	Resolve(ctx context.Context, repo, ref string) (ocispec.Descriptor, error)
	Transport() http.RoundTripper
}

// Defaults of Options.
const (
	DefaultTickInterval = time.Minute
	DefaultDebounce     = 2 * time.Minute
	DefaultPollInterval = 15 * time.Minute
	DefaultLockRetry    = 15 * time.Second
	// ActorWorkflow is the audit actor of what workflows write.
	ActorWorkflow = "drydock:workflow"
)

// Options configure an Engine. Store, Queue, Registry, Patcher and DBPath
// are required.
type Options struct {
	Store    Store
	Queue    *jobs.Queue
	Registry Registry
	Patcher  Patcher
	// DBPath is the vulnerability database.
	DBPath string
	// InventoryCache keeps each image's inventory by digest (shared with
	// the gate); nil scans layers every time.
	InventoryCache scan.InventoryCache
	// ScanOptions are the gate's scan options (its limits, the maximum
	// age of the vulnerability data): the engine refuses what the gate
	// refuses. The engine's own (clock, database, fixable OS findings)
	// come after them.
	ScanOptions []scan.Option
	// QueueName is the job queue the workflow jobs run in (configured on
	// Queue); DefaultQueue when empty.
	QueueName string
	// Clock decides schedules, debounce windows and end-of-life.
	Clock Clock
	Log   *slog.Logger
	// HTTPClient fetches from package archives (polls and patches).
	HTTPClient *http.Client
	// TickInterval is how often the engine looks for due work;
	// Debounce how long an event trigger waits for quiet; PollInterval
	// how often a security suite's InRelease is polled; LockRetry how soon
	// a job waiting for an image another run holds tries again.
	TickInterval, Debounce, PollInterval, LockRetry time.Duration
	// WithUser marks a context as the engine's own (the audit actor of
	// the tags it writes); nil leaves contexts as they are.
	WithUser func(ctx context.Context, user string) context.Context
	// SignPatch signs a patch once written (the gate's SignPatch: its
	// signature, provenance, OpenVEX and SBOM); nil signs nothing. A
	// failure is logged in the task's log; the patch stays written.
	SignPatch func(ctx context.Context, p attest.PatchWritten) error
}

// Engine runs workflows. Its methods are safe for concurrent use.
type Engine struct {
	o     Options
	clock Clock
	log   *slog.Logger

	// runs holds per-run caches (the archive client whose Release files
	// the run's images share). A cache, not state: a process that has
	// none builds it again.
	mu   sync.Mutex
	runs map[string]*runCache
	// reads are the layer reads in flight in this process, by platform
	// image digest; readSem bounds how many run at once (see maxReads).
	reads   map[string]chan struct{}
	readSem chan struct{}
	// afterWrite, when set (tests), runs right after a patch's tag is
	// written; its error stops the job there as a crash would.
	afterWrite func(taskID string) error
}

// New checks o and registers the engine's jobs on the queue (before the
// queue starts).
func New(o Options) (*Engine, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("workflow engine: no store")
	case o.Queue == nil:
		return nil, errors.New("workflow engine: no job queue")
	case o.Registry == nil:
		return nil, errors.New("workflow engine: no registry")
	case o.Patcher == nil:
		return nil, errors.New("workflow engine: no patcher")
	case o.DBPath == "":
		return nil, errors.New("workflow engine: no vulnerability database path")
	}
	o.TickInterval = cmp.Or(o.TickInterval, DefaultTickInterval)
	o.Debounce = cmp.Or(o.Debounce, DefaultDebounce)
	o.PollInterval = cmp.Or(o.PollInterval, DefaultPollInterval)
	o.LockRetry = cmp.Or(o.LockRetry, DefaultLockRetry)
	o.QueueName = cmp.Or(o.QueueName, jobs.DefaultQueue)
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.WithUser == nil {
		o.WithUser = func(ctx context.Context, _ string) context.Context { return ctx }
	}
	e := &Engine{o: o, clock: o.Clock, log: o.Log, runs: map[string]*runCache{}, reads: map[string]chan struct{}{}, readSem: make(chan struct{}, maxReads())}
	if e.clock == nil {
		e.clock = SystemClock{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for _, err := range []error{
		jobs.Register(o.Queue, e.handleTick),
		jobs.Register(o.Queue, e.handleRun),
		jobs.Register(o.Queue, e.handleImages),
		jobs.Register(o.Queue, e.handleResume),
	} {
		if err != nil {
			return nil, fmt.Errorf("workflow engine: %w", err)
		}
	}
	return e, nil
}

// Start adds the engine's periodic jobs to the queue (the tick, and the
// resumption of runs whose job died); call it before the queue starts.
func (e *Engine) Start() error {
	in := jobs.InQueue(e.o.QueueName)
	if err := jobs.Schedule(e.o.Queue, "workflow.tick", e.o.TickInterval, tickArgs{}, in); err != nil {
		return err
	}
	return jobs.Schedule(e.o.Queue, "workflow.resume", LeaseTTL/2, resumeArgs{}, in)
}

// Job kinds.
type (
	tickArgs   struct{}
	resumeArgs struct{}
	runArgs    struct {
		RunID string `json:"run_id"`
	}
	// imagesArgs is the scan (and patch) of the images of one run whose
	// originals share one digest: patched once, tagged per image.
	imagesArgs struct {
		RunID  string   `json:"run_id"`
		Digest string   `json:"digest"`
		Images []string `json:"images"`
	}
)

func (tickArgs) Kind() string   { return "workflow.tick" }
func (resumeArgs) Kind() string { return "workflow.resume" }
func (runArgs) Kind() string    { return "workflow.run" }
func (imagesArgs) Kind() string { return "workflow.images" }

func (e *Engine) enqueue(ctx context.Context, args jobs.JobArgs, key string) error {
	_, err := e.o.Queue.Enqueue(ctx, args, jobs.EnqueueOptions{Queue: e.o.QueueName, UniqueKey: key})
	return err
}

// newID returns a run ID: "r" and 8 random hex digits.
func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "r" + hex.EncodeToString(b[:])
}

// maxLogLine bounds one log line.
const maxLogLine = 4 << 10

// logf appends a line to a task's log (and the server's debug log).
func (e *Engine) logf(ctx context.Context, runID, taskID, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	var lines []string
	for l := range strings.SplitSeq(line, "\n") {
		if len(l) > maxLogLine {
			l = l[:maxLogLine] + " [cut]"
		}
		lines = append(lines, l)
	}
	e.log.Debug("workflow: "+line, "run", runID, "task", taskID)
	if err := e.o.Store.AppendLog(context.WithoutCancel(ctx), runID, taskID, e.clock.Now(), lines...); err != nil {
		e.log.Warn("workflow: writing a task log failed", "run", runID, "task", taskID, "err", err)
	}
}

// taskLog returns a log function for a task.
func (e *Engine) taskLog(ctx context.Context, runID, taskID string) func(string) {
	return func(s string) { e.logf(ctx, runID, taskID, "%s", s) }
}
