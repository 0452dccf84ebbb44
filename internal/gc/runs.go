package gc

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/registry"
)

// Run states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// Triggers of a run.
const (
	TriggerSchedule = "schedule"
	TriggerRequest  = "request"
)

// Run is one collection, requested or scheduled: stored in gc_runs, so
// any replica answers its status.
type Run struct {
	ID         int64     `json:"id"`
	Trigger    string    `json:"trigger"`
	Actor      string    `json:"actor"`
	DryRun     bool      `json:"dryRun"`
	Retention  bool      `json:"retention"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Attempts counts the times a process started the run (more than one
	// after a crash: the run starts again from the beginning).
	Attempts int               `json:"attempts"`
	Progress registry.Progress `json:"progress"`
	Report   *Report           `json:"report,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// Finished reports whether the run is over.
func (r *Run) Finished() bool { return r.State == StateSucceeded || r.State == StateFailed }

// Report is what a run did (or, dry, would do).
type Report struct {
	// Retention lists the tags the retention policies deleted (or would)
	// and why others were kept; nil when retention did not run.
	Retention *RetentionReport `json:"retention,omitempty"`
	// Collection is the mark-and-sweep's report.
	Collection *registry.Report `json:"collection,omitempty"`
}

// ErrRunNotFound is returned for an unknown run id.
var ErrRunNotFound = errors.New("no such collection run")

// runs stores Runs.
type runs struct{ db *database.DB }

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func (s runs) create(ctx context.Context, r *Run) error {
	var id int64
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO gc_runs (trigger, actor, dry_run, retention, state, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, r.Trigger, r.Actor, r.DryRun, r.Retention, StateQueued, ts(r.CreatedAt)).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("recording a collection run: %w", err)
	}
	r.ID, r.State = id, StateQueued
	return nil
}

const runColumns = `id, trigger, actor, dry_run, retention, state, created_at, started_at, finished_at, attempts, progress, report, error`

func scanRun(row interface{ Scan(...any) error }) (*Run, error) {
	var r Run
	var created, started, finished, progress, report string
	if err := row.Scan(&r.ID, &r.Trigger, &r.Actor, &r.DryRun, &r.Retention, &r.State, &created, &started, &finished,
		&r.Attempts, &progress, &report, &r.Error); err != nil {
		return nil, err
	}
	r.CreatedAt, r.StartedAt, r.FinishedAt = parseTS(created), parseTS(started), parseTS(finished)
	_ = json.Unmarshal([]byte(progress), &r.Progress)
	if report != "" {
		r.Report = &Report{}
		if err := json.Unmarshal([]byte(report), r.Report); err != nil {
			return nil, fmt.Errorf("run %d: reading its report: %w", r.ID, err)
		}
	}
	return &r, nil
}

func (s runs) get(ctx context.Context, id int64) (*Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM gc_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %d: %w", id, ErrRunNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading run %d: %w", id, err)
	}
	return r, nil
}

// list returns the newest runs first, without their reports' items.
func (s runs) list(ctx context.Context, limit int) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM gc_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		if r.Report != nil && r.Report.Collection != nil {
			r.Report.Collection.Items = nil
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// start marks a run running and counts the attempt.
func (s runs) start(ctx context.Context, id int64, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE gc_runs SET state = ?, started_at = ?, attempts = attempts + 1, error = '' WHERE id = ?`,
		StateRunning, ts(at), id)
	return err
}

func (s runs) progress(ctx context.Context, id int64, p registry.Progress) error {
	b, _ := json.Marshal(p)
	_, err := s.db.ExecContext(ctx, `UPDATE gc_runs SET progress = ? WHERE id = ?`, string(b), id)
	return err
}

func (s runs) finish(ctx context.Context, id int64, at time.Time, rep *Report, runErr error) error {
	state, msg := StateSucceeded, ""
	if runErr != nil {
		state, msg = StateFailed, runErr.Error()
	}
	var b []byte
	if rep != nil {
		var err error
		if b, err = json.Marshal(rep); err != nil {
			return err
		}
	}
	_, err := s.db.ExecContext(ctx, `UPDATE gc_runs SET state = ?, finished_at = ?, report = ?, error = ? WHERE id = ?`,
		state, ts(at), string(b), msg, id)
	return err
}
