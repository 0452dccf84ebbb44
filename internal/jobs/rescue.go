package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
)

// The errors recorded for an attempt whose worker died: by River's
// rescuer (after WithRescueStuckAfter), or by the start-up rescue of a
// queue opened WithSingleWorker.
const (
	riverRescueError   = "Stuck job rescued by JobRescuer"
	startupRescueError = "the process working this attempt died (found running at start-up, rescued)"
)

// rescuedAttempts counts the attempts of a job that ended because their
// worker died, rather than by the handler returning.
func rescuedAttempts(errs []rivertype.AttemptError) int {
	n := 0
	for _, e := range errs {
		if e.Error == riverRescueError || e.Error == startupRescueError {
			n++
		}
	}
	return n
}

// ErrOtherWorker is returned by Start on a queue opened WithSingleWorker
// when another process is working the same queue file.
var ErrOtherWorker = errors.New("another process is working this job queue")

// lockWorker takes the worker lock of the queue file at path: an
// exclusive flock on path+".worker", released by the kernel when the
// process dies, so holding it proves every other worker is gone.
func lockWorker(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".worker", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("worker lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked: is another drydock serve using this data directory?)", ErrOtherWorker, f.Name())
		}
		return nil, fmt.Errorf("worker lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// rescueOrphans makes every job left running available again at once
// (discarded when it has no attempt left), recording the dead attempt.
// It must only run while this process holds the worker lock: then no
// other process is working any of these jobs, so all of them were left
// by a process that died. It returns how many it rescued.
func (q *Queue) rescueOrphans(ctx context.Context) (int, error) {
	exec := riversqlite.New(q.db.SQL()).GetExecutor()
	now := time.Now().UTC()
	total := 0
	var after int64
	for {
		running, err := exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{AfterID: after, Max: 1000, StuckHorizon: now.Add(time.Hour)})
		if err != nil {
			return total, fmt.Errorf("rescuing jobs left running: %w", err)
		}
		if len(running) == 0 {
			return total, nil
		}
		p := &riverdriver.JobRescueManyParams{StuckHorizon: now.Add(time.Hour)}
		for _, j := range running {
			e, err := json.Marshal(rivertype.AttemptError{At: now, Attempt: j.Attempt, Error: startupRescueError})
			if err != nil {
				return total, err
			}
			// Available, not retryable: retryable jobs wait for the leader's
			// scheduler, and after a crash the new process is leader only
			// when the dead one's lease expires.
			state, finalized := rivertype.JobStateAvailable, (*time.Time)(nil)
			if j.Attempt >= j.MaxAttempts {
				state, finalized = rivertype.JobStateDiscarded, &now
			}
			p.ID = append(p.ID, j.ID)
			p.Error = append(p.Error, e)
			p.FinalizedAt = append(p.FinalizedAt, finalized)
			p.ScheduledAt = append(p.ScheduledAt, now)
			p.State = append(p.State, string(state))
		}
		if _, err := exec.JobRescueMany(ctx, p); err != nil {
			return total, fmt.Errorf("rescuing jobs left running: %w", err)
		}
		total += len(running)
		after = running[len(running)-1].ID
	}
}
