package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/drydock-project/drydock/internal/database"
)

// unfinished are the states of jobs that still have to run.
var unfinished = []State{StateAvailable, StateScheduled, StatePending, StateRetryable, StateRunning}

// rawArgs are stored job args re-inserted as they are.
type rawArgs struct {
	kind string
	args json.RawMessage
}

func (r rawArgs) Kind() string                 { return r.kind }
func (r rawArgs) MarshalJSON() ([]byte, error) { return r.args, nil }

// CopyUnfinished enqueues into the queue of to every job of the queue of
// from that has yet to run, with its kind, args, unique key, queue and
// schedule, and returns how many. A job that was running (its process is
// stopped: copy an installation at rest) runs again, as after a crash.
// Attempt counts and errors start afresh.
func CopyUnfinished(ctx context.Context, from, to *database.Opener) (int, error) {
	src, err := Open(ctx, from)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	dst, err := Open(ctx, to)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	n := 0
	var after int64
	for {
		page, err := src.Jobs(ctx, Filter{States: unfinished, AfterID: after, Limit: maxListLimit})
		if err != nil {
			return n, err
		}
		for _, j := range page {
			var a river.JobArgs = rawArgs{kind: j.Kind, args: j.Args}
			opts := &river.InsertOpts{Queue: j.Queue, MaxAttempts: j.MaxAttempts}
			if j.State == StateScheduled || j.State == StateRetryable {
				opts.ScheduledAt = j.ScheduledAt
			}
			if j.UniqueKey != "" {
				a = uniqueArgs{UniqueKey: j.UniqueKey, args: rawArgs{kind: j.Kind, args: j.Args}}
				opts.UniqueOpts = river.UniqueOpts{ByArgs: true, ByState: uniqueStates}
			}
			if _, err := dst.client.Insert(ctx, a, opts); err != nil {
				return n, fmt.Errorf("copying job %d (%s): %w", j.ID, j.Kind, err)
			}
			n++
		}
		if len(page) < maxListLimit {
			return n, nil
		}
		after = page[len(page)-1].ID
	}
}

// CountUnfinished returns how many jobs of the queue of o have yet to run.
func CountUnfinished(ctx context.Context, o *database.Opener) (int, error) {
	q, err := Open(ctx, o)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	n := 0
	var after int64
	for {
		page, err := q.Jobs(ctx, Filter{States: unfinished, AfterID: after, Limit: maxListLimit})
		if err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < maxListLimit {
			return n, nil
		}
		after = page[len(page)-1].ID
	}
}
