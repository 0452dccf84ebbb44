package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults applied by Open when no option overrides them.
const (
	DefaultWorkers     = 2
	DefaultJobTimeout  = 10 * time.Minute
	DefaultMaxAttempts = 5

	// DefaultQueue is the queue jobs go to when EnqueueOptions.Queue is empty.
	DefaultQueue = "default"

	// maxWorkers mirrors River's per-queue limit (QueueNumWorkersMax).
	maxWorkers = 10_000
)

// Option configures a Queue at Open. Options validate their argument and
// make Open fail rather than silently falling back to a default.
type Option func(*config) error

type config struct {
	logger       *slog.Logger
	workers      int
	queues       map[string]int
	jobTimeout   time.Duration
	maxAttempts  int
	rescueAfter  time.Duration
	pollInterval time.Duration
	backoff      func(attempt int) time.Duration
	single       bool
}

func defaultConfig() *config {
	return &config{
		logger:      slog.New(slog.DiscardHandler),
		workers:     DefaultWorkers,
		queues:      map[string]int{},
		jobTimeout:  DefaultJobTimeout,
		maxAttempts: DefaultMaxAttempts,
	}
}

// WithLogger sets the logger for the queue and River's internals. By default
// nothing is logged (libraries never print).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		c.logger = slog.New(quietInfo{l.Handler()})
		return nil
	}
}

// quietInfo logs River's informational messages (schema migrations, the
// client starting and stopping) at debug level: they are routine.
// Warnings and errors keep their level.
type quietInfo struct{ slog.Handler }

func (h quietInfo) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, l)
}

func (h quietInfo) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietInfo) WithAttrs(as []slog.Attr) slog.Handler { return quietInfo{h.Handler.WithAttrs(as)} }
func (h quietInfo) WithGroup(n string) slog.Handler       { return quietInfo{h.Handler.WithGroup(n)} }

// WithWorkers sets how many jobs of the default queue run concurrently in
// this process (default 2).
func WithWorkers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > maxWorkers {
			return fmt.Errorf("WithWorkers: %d out of range 1..%d", n, maxWorkers)
		}
		c.workers = n
		return nil
	}
}

// WithQueue adds a named queue worked by n concurrent workers, in addition
// to DefaultQueue. Jobs can only be enqueued to configured queues.
func WithQueue(name string, n int) Option {
	return func(c *config) error {
		if !kindRE.MatchString(name) {
			return fmt.Errorf("WithQueue: invalid queue name %q", name)
		}
		if n < 1 || n > maxWorkers {
			return fmt.Errorf("WithQueue %q: %d workers out of range 1..%d", name, n, maxWorkers)
		}
		c.queues[name] = n
		return nil
	}
}

// WithJobTimeout bounds one attempt of a job: its context is cancelled after
// d (default 10m). A handler that ignores the cancellation keeps running and
// shows up in Queue.Stuck.
func WithJobTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithJobTimeout: %s must be positive", d)
		}
		c.jobTimeout = d
		return nil
	}
}

// WithMaxAttempts sets how many times a failing job runs before it is
// discarded (default 5).
func WithMaxAttempts(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMaxAttempts: %d must be at least 1", n)
		}
		c.maxAttempts = n
		return nil
	}
}

// WithRescueStuckAfter sets how long a job may stay "running" before the
// queue's leader considers its worker dead (crashed or killed process) and
// schedules it again, or discards it once its attempts are used up. It must be
// longer than the job time-out. River's default is one hour, or the job
// time-out plus one hour when that is longer.
func WithRescueStuckAfter(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithRescueStuckAfter: %s must be positive", d)
		}
		c.rescueAfter = d
		return nil
	}
}

// WithPollInterval sets how often idle workers look for new jobs (River's
// FetchPollInterval, default 1s) and caps the minimum gap between fetches
// (FetchCooldown, default 100ms). Jobs enqueued through this Queue are
// usually picked up sooner: riversqlite emulates LISTEN/NOTIFY with an
// outbox table that it polls.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Millisecond {
			return fmt.Errorf("WithPollInterval: %s must be at least 1ms", d)
		}
		c.pollInterval = d
		return nil
	}
}

// WithRetryBackoff sets the delay before attempt+1 after attempt failed.
// The default is River's exponential back-off (attempt^4 seconds, jittered).
func WithRetryBackoff(f func(attempt int) time.Duration) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("WithRetryBackoff: nil function")
		}
		c.backoff = f
		return nil
	}
}

// WithSingleWorker declares that this process is the only one working the
// queue file: the embedded, single-process setup. Start then takes an
// exclusive lock on the file (failing with ErrOtherWorker while another
// process holds it) and, since no other worker can be alive, queues
// again at once every job left running: its process died (kill -9, out
// of memory, power loss) and River's rescuer would otherwise wait for
// WithRescueStuckAfter. The rescued attempt is counted (Info.Rescued).
// Processes that only enqueue or list jobs need no lock. A queue shared
// by several live workers (PostgreSQL) must not use this: their running
// jobs are not orphans.
func WithSingleWorker() Option {
	return func(c *config) error {
		c.single = true
		return nil
	}
}
