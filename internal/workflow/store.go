package workflow

import (
	"context"
	"errors"
	"time"
)

// Store errors.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// RunFilter selects runs. Zero fields match everything.
type RunFilter struct {
	Workflow string
	// Since keeps runs created at or after it.
	Since time.Time
	// States keeps runs in one of these states.
	States []State
	// Limit bounds the result (default and maximum MaxRunList).
	Limit int
}

// MaxRunList is the most runs one listing returns (ACR's top 1000).
const MaxRunList = 1000

// MaxLogList is the most log lines one Logs call returns.
const MaxLogList = 10_000

// Store keeps workflows, their runs (the ledger) and the runs' logs. It
// stores; it does not decide: every change goes through a function the
// caller passes, applied to the current record inside one transaction, so
// that concurrent writers (job handlers of several server replicas) never
// lose an update.
//
// Implementations: SQLite (OpenSQLite). Every implementation passes
// workflowtest.Run.
type Store interface {
	// CreateWorkflow stores a new workflow; ErrExists when the name is
	// taken.
	CreateWorkflow(ctx context.Context, w *Workflow) error
	// Workflow returns one workflow; ErrNotFound when there is none.
	Workflow(ctx context.Context, name string) (*Workflow, error)
	// Workflows lists every workflow, by name.
	Workflows(ctx context.Context) ([]*Workflow, error)
	// UpdateWorkflow applies fn to the stored workflow in a transaction
	// and stores the result, unless fn fails (nothing is written, fn's
	// error is returned). fn must not change the name.
	UpdateWorkflow(ctx context.Context, name string, fn func(*Workflow) error) (*Workflow, error)
	// DeleteWorkflow removes a workflow with its runs and logs;
	// ErrNotFound when there is none.
	DeleteWorkflow(ctx context.Context, name string) error

	// CreateRun stores a new run; ErrExists when its ID is taken, and
	// ErrNotFound when its workflow does not exist.
	CreateRun(ctx context.Context, r *Run) error
	// Run returns one run; ErrNotFound when there is none.
	Run(ctx context.Context, id string) (*Run, error)
	// Runs lists runs, newest first (by creation time, then ID).
	Runs(ctx context.Context, f RunFilter) ([]*Run, error)
	// UpdateRun applies fn to the stored run in a transaction, as
	// UpdateWorkflow does. fn must not change the ID or the workflow, and
	// may add tasks but not remove, reorder or rename them.
	UpdateRun(ctx context.Context, id string, fn func(*Run) error) (*Run, error)

	// AppendLog adds lines to a task's log, numbered in the order
	// appended across the run (Seq > 0, increasing).
	AppendLog(ctx context.Context, runID, taskID string, at time.Time, lines ...string) error
	// Logs returns up to limit lines of a run's log with Seq > after, in
	// order (limit <= 0 or above MaxLogList: MaxLogList).
	Logs(ctx context.Context, runID string, after int64, limit int) ([]LogLine, error)

	// UpdateLock applies fn to the holder of the named lock ("" when
	// free) in a transaction and stores what it returns ("" frees it).
	// The engine holds one lock per image so that two runs never patch
	// the same image at once.
	UpdateLock(ctx context.Context, key string, fn func(holder string) (string, error)) (string, error)
	// UpdateState applies fn to a small named value (nil when absent) in a
	// transaction and stores the result (nil deletes it): the engine's
	// memory between ticks, such as the HTTP validators of the archive
	// files it polls.
	UpdateState(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) ([]byte, error)

	Close() error
}

// Clock tells the time for every decision the package takes (schedules,
// debounce windows, end-of-life).
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }
