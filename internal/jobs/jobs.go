// Package jobs is drydock's persistent background-work queue: scans on
// arrival, workflow runs and rescans are enqueued here, never run on bare
// goroutines, so that they survive restarts and crashes.
//
// The queue is River (github.com/riverqueue/river) on the database
// internal/database opens: a SQLite file in the embedded setup
// (riversqlite), or the PostgreSQL database replicas share (riverpgxv5,
// with LISTEN/NOTIFY). The rest of drydock sees only this package's small
// API (Open, Register, Enqueue, Start, Stop, Jobs, Stuck) and never
// imports River.
//
// # Delivery guarantees and idempotent handlers
//
// A job is stored when Enqueue returns and is worked at least once: a job
// that was queued when the process died runs after the restart, and a job
// that was running when the process died (kill -9, power loss) is found by
// River's rescuer once it has been running for longer than
// WithRescueStuckAfter and is run again with its next attempt. The rescuer
// runs on the elected leader; after a crash the new process becomes leader
// only when the dead one's lease expires (about 15 seconds in River v0.51).
// A queue worked by one process only (the embedded setup,
// WithSingleWorker) does better: Start holds an exclusive lock on the
// file, so every job found running there was left by a dead process, and
// queues those jobs again at once. Handlers see how many of their
// attempts died this way (Info.Rescued).
//
// Because an attempt may be repeated after a crash, handlers must be
// idempotent: write their result keyed by the job's input (for a scan, the
// image digest), so a second run replaces or skips rather than duplicating.
// Info gives the handler its job id and attempt number.
//
// A job is never worked by two processes at once unless it outlives
// WithRescueStuckAfter, which must therefore be longer than WithJobTimeout.
// Queue.Stuck reports jobs running longer than a threshold so that the gate can
// treat their images as "stuck" rather than "pending".
//
// # Replicas
//
// On PostgreSQL every replica works the same queue: a job is locked by the
// one worker that fetched it, River's leader (elected in the database)
// runs the rescuer and the periodic schedules, so a job whose replica died
// is finished by another and a schedule fires once per period whatever
// the number of replicas.
//
// # Databases
//
// A SQLite file is opened with a single connection, as riversqlite
// recommends. River's schema is migrated with rivermigrate at every Open
// (a no-op when current), on PostgreSQL under drydock's migration lock.
package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/drydock-project/drydock/internal/database"
)

// JobArgs is the input of a job. It is stored as JSON, so it must be a
// struct value (not a pointer) whose fields encode with encoding/json. Kind
// names the job type and selects its handler; it must not depend on field
// values.
type JobArgs interface {
	Kind() string
}

// State is where a job is in its life cycle.
type State string

// Job states, as River names them.
const (
	StateAvailable State = "available" // waiting for a worker
	StateScheduled State = "scheduled" // waiting for its ScheduledAt
	StatePending   State = "pending"   // not yet eligible to run
	StateRunning   State = "running"   // an attempt is in progress
	StateRetryable State = "retryable" // failed, will run again
	StateCompleted State = "completed" // handler returned nil
	StateCancelled State = "cancelled" // handler returned Permanent(err)
	StateDiscarded State = "discarded" // failed MaxAttempts times
)

// Job is a stored job as listed by Queue.Jobs.
type Job struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	Queue       string          `json:"queue"`
	State       State           `json:"state"`
	UniqueKey   string          `json:"unique_key,omitempty"`
	Args        json.RawMessage `json:"args"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	Errors      []AttemptError  `json:"errors,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	ScheduledAt time.Time       `json:"scheduled_at"`
	AttemptedAt time.Time       `json:"attempted_at,omitzero"` // start of the latest attempt
	FinalizedAt time.Time       `json:"finalized_at,omitzero"` // completed, cancelled or discarded
	// Output is what the handler recorded with SetOutput (JSON), nil if
	// nothing.
	Output json.RawMessage `json:"output,omitempty"`
}

// AttemptError is the error recorded for one failed attempt.
type AttemptError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

// Filter selects jobs for Queue.Jobs. Empty fields match everything. Jobs
// are returned by ascending ID; page with AfterID set to the last ID seen.
type Filter struct {
	Kinds   []string
	States  []State
	Queues  []string
	AfterID int64
	Limit   int // default 100, at most 10000
}

// EnqueueOptions are per-job settings for Queue.Enqueue.
type EnqueueOptions struct {
	// UniqueKey, when set, makes the job unique among jobs of the same kind
	// that are not finished: while one with this key is available, scheduled,
	// pending, running or retryable, Enqueue returns its ID instead of adding a
	// second job. Once it has completed, the key may be enqueued again (a
	// rescan).
	UniqueKey string
	// Queue is the queue to run in; DefaultQueue when empty.
	Queue string
	// ScheduledAt delays the job until then; now when zero.
	ScheduledAt time.Time
}

// Info describes the running job to its handler.
type Info struct {
	ID          int64
	Kind        string
	Attempt     int // 1 on the first run
	MaxAttempts int
	// Rescued counts the earlier attempts that ended because the process
	// working them died (kill -9, out of memory, power loss) or hung,
	// rather than by the handler returning. The count is stored with the
	// job, so it survives restarts: a handler can refuse to try again an
	// input that keeps killing its process.
	Rescued int
}

// ErrStarted is returned by Register and Start once the queue is started.
var ErrStarted = errors.New("job queue already started")

// ErrClosed is returned when the queue has been closed.
var ErrClosed = errors.New("job queue closed")

// UnknownKindError is returned by Enqueue for a kind with no handler on a
// queue that has handlers registered.
type UnknownKindError struct{ Kind string }

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("no handler registered for job kind %q", e.Kind)
}

const (
	defaultListLimit = 100
	maxListLimit     = 10_000
	// hardStopGrace bounds the wait for cancelled jobs to return.
	hardStopGrace = 5 * time.Second
	// uniqueKeyField is the args field that carries EnqueueOptions.UniqueKey.
	uniqueKeyField = "drydock_unique_key"
)

// kindRE is River's rule for kinds and queue names.
var kindRE = regexp.MustCompile(`\A[\w][\w\-\[\]<>\/.·:+]+\z`)

// uniqueStates are the states in which a UniqueKey blocks a duplicate; River
// requires available, pending, running and scheduled.
var uniqueStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// Queue is a persistent job queue. Enqueue, Jobs and Stuck may be used
// without Start (for example by a CLI that only enqueues).
type Queue struct {
	db      *database.DB
	single  bool
	logger  *slog.Logger
	lock    *os.File // the worker lock, held from Start (WithSingleWorker)
	client  riverClient
	workers *river.Workers
	queues  map[string]bool

	mu      sync.Mutex
	kinds   map[string]bool
	started bool
	stopped bool
	closed  bool
}

// Open opens the queue in the "jobs" database of o (DATA/jobs/jobs.db, or
// the shared PostgreSQL database), migrates River's schema and prepares a
// client. Register handlers, then Start.
func Open(ctx context.Context, o *database.Opener, opts ...Option) (*Queue, error) {
	db, err := o.Open(ctx, Component, database.SingleConnection())
	if err != nil {
		return nil, fmt.Errorf("opening job queue: %w", err)
	}
	q, err := New(ctx, db, opts...)
	if err != nil {
		db.Close()
		return nil, err
	}
	return q, nil
}

// New is Open on a database already opened (with
// database.SingleConnection on SQLite); Close closes it.
func New(ctx context.Context, db *database.DB, opts ...Option) (*Queue, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(cfg); err != nil {
			return nil, fmt.Errorf("opening job queue %s: %w", db, err)
		}
	}
	if cfg.rescueAfter != 0 && cfg.rescueAfter <= cfg.jobTimeout {
		return nil, fmt.Errorf("opening job queue %s: rescue-stuck-after %s must exceed job time-out %s", db, cfg.rescueAfter, cfg.jobTimeout)
	}
	if _, ok := cfg.queues[DefaultQueue]; ok {
		return nil, fmt.Errorf("opening job queue %s: size the default queue with WithWorkers", db)
	}
	if cfg.single && db.Driver() != database.SQLite {
		return nil, fmt.Errorf("opening job queue %s: WithSingleWorker is for a SQLite queue file; replicas sharing PostgreSQL rely on River's rescuer", db)
	}
	q := &Queue{db: db, single: cfg.single, logger: cfg.logger, workers: river.NewWorkers(), queues: map[string]bool{}, kinds: map[string]bool{}}
	rq := map[string]river.QueueConfig{DefaultQueue: {MaxWorkers: cfg.workers}}
	for name, n := range cfg.queues {
		rq[name] = river.QueueConfig{MaxWorkers: n}
	}
	for name := range rq {
		q.queues[name] = true
	}
	rc := &river.Config{
		Logger:               cfg.logger,
		Queues:               rq,
		Workers:              q.workers,
		JobTimeout:           cfg.jobTimeout,
		MaxAttempts:          cfg.maxAttempts,
		RescueStuckJobsAfter: cfg.rescueAfter,
		// Handlers are registered after the client is built; Enqueue does
		// the known-kind check itself.
		SkipUnknownJobCheck: true,
	}
	if cfg.pollInterval > 0 {
		rc.FetchPollInterval = cfg.pollInterval
		rc.FetchCooldown = min(cfg.pollInterval, river.FetchCooldownDefault)
	}
	if cfg.backoff != nil {
		rc.RetryPolicy = backoffPolicy{cfg.backoff}
	}
	var err error
	if q.client, err = newClient(ctx, db, rc, cfg.logger); err != nil {
		return nil, fmt.Errorf("opening job queue %s: %w", db, err)
	}
	return q, nil
}

// Register installs fn as the handler for jobs of kind A{}.Kind(). It must
// be called before Start, once per kind. A handler's error fails the attempt
// (retried up to the max attempts, recorded in Job.Errors); wrap it with
// Permanent to stop retrying. Handlers must be idempotent (see package doc).
func Register[A JobArgs](q *Queue, fn func(ctx context.Context, args A) error) error {
	var zero A
	kind := zero.Kind()
	if fn == nil {
		return fmt.Errorf("registering job kind %q: nil handler", kind)
	}
	if !kindRE.MatchString(kind) {
		return fmt.Errorf("registering job kind %q: invalid kind", kind)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return fmt.Errorf("registering job kind %q: %w", kind, ErrClosed)
	case q.started:
		return fmt.Errorf("registering job kind %q: %w", kind, ErrStarted)
	case q.kinds[kind]:
		return fmt.Errorf("registering job kind %q: already registered", kind)
	}
	w := river.WorkFunc(func(ctx context.Context, job *river.Job[A]) error {
		info := Info{ID: job.ID, Kind: job.Kind, Attempt: job.Attempt, MaxAttempts: job.MaxAttempts, Rescued: rescuedAttempts(job.Errors)}
		ctx = context.WithValue(ctx, queueKey{}, q)
		return fn(context.WithValue(ctx, infoKey{}, info), job.Args)
	})
	if err := river.AddWorkerSafely(q.workers, w); err != nil {
		return fmt.Errorf("registering job kind %q: %w", kind, err)
	}
	q.kinds[kind] = true
	return nil
}

type infoKey struct{}

type queueKey struct{}

// SetOutput stores v (JSON) as the output of the job ctx is working, at
// once: Job and Jobs show it while the job runs (progress) and after it
// ends (its result). It replaces what was stored before. Call it from a
// handler only.
func SetOutput(ctx context.Context, v any) error {
	info, ok := JobInfo(ctx)
	q, qok := ctx.Value(queueKey{}).(*Queue)
	if !ok || !qok {
		return errors.New("jobs.SetOutput: not called from a job handler")
	}
	if _, err := q.client.JobUpdate(ctx, info.ID, &river.JobUpdateParams{Output: v}); err != nil {
		return fmt.Errorf("recording job %d's output: %w", info.ID, err)
	}
	// River also writes the output recorded in the work context when the
	// attempt ends: keep it the same.
	return river.RecordOutput(ctx, v)
}

// ErrNoJob is returned by Job for an id the queue does not hold.
var ErrNoJob = errors.New("no such job")

// Job returns the job id.
func (q *Queue) Job(ctx context.Context, id int64) (*Job, error) {
	r, err := q.client.JobGet(ctx, id)
	if errors.Is(err, river.ErrNotFound) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("reading job %d: %w", id, err)
	}
	j := fromRow(r)
	return &j, nil
}

// JobInfo returns the job being worked when ctx is a handler's context.
func JobInfo(ctx context.Context) (Info, bool) {
	info, ok := ctx.Value(infoKey{}).(Info)
	return info, ok
}

// Permanent wraps err so that the job is not retried: it ends in
// StateCancelled with err recorded.
func Permanent(err error) error { return river.JobCancel(err) }

// Start begins working jobs in the background and returns. Cancelling ctx
// stops the queue hard (running jobs see their contexts cancelled); use
// Stop for a graceful stop.
func (q *Queue) Start(ctx context.Context) error {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return fmt.Errorf("starting job queue: %w", ErrClosed)
	case q.started:
		q.mu.Unlock()
		return fmt.Errorf("starting job queue: %w", ErrStarted)
	case len(q.kinds) == 0:
		q.mu.Unlock()
		return errors.New("starting job queue: no handlers registered")
	}
	q.started = true
	q.mu.Unlock()
	if q.single {
		notStarted := func(err error) error {
			q.mu.Lock()
			q.started = false
			q.mu.Unlock()
			return fmt.Errorf("starting job queue: %w", err)
		}
		lock, err := lockWorker(q.db.String())
		if err != nil {
			return notStarted(err)
		}
		q.mu.Lock()
		q.lock = lock
		q.mu.Unlock()
		n, err := q.rescueOrphans(ctx)
		if err != nil {
			return notStarted(err)
		}
		if n > 0 {
			q.logger.Warn("jobs left running by a process that died are queued again", "jobs", n)
		}
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("starting job queue: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for running ones to finish. If ctx is
// done first, running jobs have their contexts cancelled and Stop waits a
// few more seconds for them before returning ctx's error. Jobs that were
// cut short run again after the next Start (see package doc).
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	if !q.started || q.stopped {
		q.mu.Unlock()
		return nil
	}
	q.stopped = true
	q.mu.Unlock()
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hardStopGrace)
	defer cancel()
	if herr := q.client.StopAndCancel(hctx); herr != nil {
		err = errors.Join(err, fmt.Errorf("cancelling running jobs: %w", herr))
	}
	return fmt.Errorf("stopping job queue: %w", err)
}

// Close stops the queue hard if it is still running and closes the database.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	running := q.started && !q.stopped
	q.stopped = true
	q.mu.Unlock()
	var err error
	if running {
		ctx, cancel := context.WithTimeout(context.Background(), hardStopGrace)
		err = q.client.StopAndCancel(ctx)
		cancel()
	}
	err = errors.Join(err, q.db.Close())
	q.mu.Lock()
	if q.lock != nil {
		err = errors.Join(err, q.lock.Close()) // releases the flock
		q.lock = nil
	}
	q.mu.Unlock()
	return err
}

// HasQueue reports whether the named queue is configured (WithQueue).
func (q *Queue) HasQueue(name string) bool { return q.queues[name] }

// Enqueue stores a job and returns its ID. With opts.UniqueKey set and an
// unfinished job of the same kind and key present, it returns that job's ID.
func (q *Queue) Enqueue(ctx context.Context, args JobArgs, opts EnqueueOptions) (int64, error) {
	if args == nil {
		return 0, errors.New("enqueueing job: nil args")
	}
	kind := args.Kind()
	queue := cmp.Or(opts.Queue, DefaultQueue)
	q.mu.Lock()
	closed, known := q.closed, len(q.kinds) == 0 || q.kinds[kind]
	q.mu.Unlock()
	switch {
	case closed:
		return 0, fmt.Errorf("enqueueing %s job: %w", kind, ErrClosed)
	case !known:
		return 0, fmt.Errorf("enqueueing job: %w", &UnknownKindError{Kind: kind})
	case !q.queues[queue]:
		return 0, fmt.Errorf("enqueueing %s job: queue %q not configured", kind, queue)
	}
	io := &river.InsertOpts{Queue: queue, ScheduledAt: opts.ScheduledAt}
	var ra river.JobArgs = args
	if opts.UniqueKey != "" {
		ra = uniqueArgs{UniqueKey: opts.UniqueKey, args: args}
		io.UniqueOpts = river.UniqueOpts{ByArgs: true, ByState: uniqueStates}
	}
	res, err := q.client.Insert(ctx, ra, io)
	if err != nil {
		return 0, fmt.Errorf("enqueueing %s job: %w", kind, err)
	}
	return res.Job.ID, nil
}

// Jobs lists stored jobs matching f, by ascending ID. Finished jobs are
// kept for River's retention periods (completed 24h, discarded 7 days).
func (q *Queue) Jobs(ctx context.Context, f Filter) ([]Job, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	if limit > maxListLimit {
		return nil, fmt.Errorf("listing jobs: limit %d above %d", limit, maxListLimit)
	}
	p := river.NewJobListParams().OrderBy(river.JobListOrderByID, river.SortOrderAsc).First(limit)
	if len(f.Kinds) > 0 {
		p = p.Kinds(f.Kinds...)
	}
	if len(f.Queues) > 0 {
		p = p.Queues(f.Queues...)
	}
	if len(f.States) > 0 {
		states := make([]rivertype.JobState, len(f.States))
		for i, s := range f.States {
			states[i] = rivertype.JobState(s)
		}
		p = p.States(states...)
	}
	if f.AfterID > 0 {
		p = p.Where("id > @after_id", river.NamedArgs{"after_id": f.AfterID})
	}
	res, err := q.client.JobList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	out := make([]Job, 0, len(res.Jobs))
	for _, r := range res.Jobs {
		out = append(out, fromRow(r))
	}
	return out, nil
}

// Stuck returns the running jobs whose current attempt started before
// now-olderThan: their handler overran the time-out, hangs, or died with its
// process and awaits rescue. Pass the gate's clock reading as now.
func (q *Queue) Stuck(ctx context.Context, olderThan time.Duration, now time.Time) ([]Job, error) {
	cutoff := now.Add(-olderThan)
	var out []Job
	var after int64
	for {
		page, err := q.Jobs(ctx, Filter{States: []State{StateRunning}, AfterID: after, Limit: maxListLimit})
		if err != nil {
			return nil, fmt.Errorf("finding stuck jobs: %w", err)
		}
		for _, j := range page {
			if !j.AttemptedAt.IsZero() && j.AttemptedAt.Before(cutoff) {
				out = append(out, j)
			}
		}
		if len(page) < maxListLimit {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}
