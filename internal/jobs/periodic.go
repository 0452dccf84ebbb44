package jobs

import (
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// allStates are every job state: a periodic job's uniqueness holds
// whatever became of the period's job.
var allStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateCompleted, rivertype.JobStateDiscarded,
	rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// Schedule makes the queue enqueue args every interval, the first time when
// the queue starts, instead of a ticker in each process: on a database
// that several processes share, River's elected leader enqueues periodic
// jobs, and each job is unique within its period (the interval's multiple
// of UTC time it falls in; periods are at least a second, so a shorter
// interval runs at most once a second), so a period gets exactly one job
// even across a change of leader. id names the schedule (unique per
// queue). A handler for args' kind must be registered.
func Schedule(q *Queue, id string, interval time.Duration, args JobArgs, opts ...ScheduleOption) error {
	if interval <= 0 {
		return fmt.Errorf("scheduling %q: interval %s is not positive", id, interval)
	}
	if !kindRE.MatchString(id) {
		return fmt.Errorf("scheduling %q: invalid id", id)
	}
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return fmt.Errorf("scheduling %q: %w", id, ErrClosed)
	}
	io := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: max(interval, time.Second), ByState: allStates}}
	for _, o := range opts {
		if err := o(q, io); err != nil {
			return fmt.Errorf("scheduling %q: %w", id, err)
		}
	}
	pj := river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return args, io },
		&river.PeriodicJobOpts{ID: id, RunOnStart: true})
	if _, err := q.client.PeriodicJobs().AddSafely(pj); err != nil {
		return fmt.Errorf("scheduling %q: %w", id, err)
	}
	return nil
}

// ScheduleOption adjusts Schedule.
type ScheduleOption func(q *Queue, io *river.InsertOpts) error

// InQueue puts the scheduled jobs in the named queue (configured with
// WithQueue) instead of DefaultQueue.
func InQueue(name string) ScheduleOption {
	return func(q *Queue, io *river.InsertOpts) error {
		if !q.queues[name] {
			return fmt.Errorf("queue %q not configured", name)
		}
		io.Queue = name
		return nil
	}
}

// Snooze, returned by a handler, runs the job again after d without
// counting an attempt: for work that must wait for something else (a lock
// another job holds) rather than fail.
func Snooze(d time.Duration) error { return river.JobSnooze(d) }
