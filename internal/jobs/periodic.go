package jobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// PeriodicOptions tune AddPeriodic.
type PeriodicOptions struct {
	// Queue is the queue the job goes to; DefaultQueue when empty.
	Queue string
	// RunOnStart enqueues the job as soon as this process leads the queue,
	// not one interval later.
	RunOnStart bool
}

// AddPeriodic makes the queue enqueue args every interval (River's
// periodic jobs). Only the process that leads the queue enqueues, so
// replicas sharing a database do not multiply the job; while one is still
// waiting or running, no second one is added (the job is unique by kind).
//
// The interval is a wall-clock heartbeat, not a schedule: a handler that
// decides what is due (a workflow's next run, a debounce window) reads its
// own injected clock and the database, so that tests move time without
// waiting for it, and a decision taken by one replica is seen by all.
func (q *Queue) AddPeriodic(interval time.Duration, args JobArgs, o PeriodicOptions) error {
	if args == nil {
		return errors.New("adding periodic job: nil args")
	}
	kind := args.Kind()
	if interval < time.Second {
		return fmt.Errorf("adding periodic %s job: interval %s is shorter than a second", kind, interval)
	}
	queue := o.Queue
	if queue == "" {
		queue = DefaultQueue
	}
	q.mu.Lock()
	closed, known := q.closed, q.kinds[kind]
	q.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("adding periodic %s job: %w", kind, ErrClosed)
	case !known:
		return fmt.Errorf("adding periodic job: %w (register it first)", &UnknownKindError{Kind: kind})
	case !q.queues[queue]:
		return fmt.Errorf("adding periodic %s job: queue %q not configured", kind, queue)
	}
	ua := uniqueArgs{UniqueKey: "periodic:" + kind, args: args}
	pj := river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return ua, &river.InsertOpts{Queue: queue, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
	}, &river.PeriodicJobOpts{RunOnStart: o.RunOnStart})
	if _, err := q.client.PeriodicJobs().AddSafely(pj); err != nil {
		return fmt.Errorf("adding periodic %s job: %w", kind, err)
	}
	return nil
}

// Snooze, returned by a handler, runs the job again after d without
// counting an attempt: for work that must wait for something else (a lock
// another job holds) rather than fail.
func Snooze(d time.Duration) error { return river.JobSnooze(d) }
