package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

// Component is the store's database name (DATA/workflow/workflow.db on
// SQLite).
const Component = "workflow"

// Migrations are the store's schema steps. Records are JSON documents in
// TEXT columns beside the few columns queries select on; times are Unix
// nanoseconds. A run's tasks are rows of their own: an update rewrites the
// run's header and the tasks it changed, not a document of a hundred
// images' results.
var Migrations = []database.Migration{{
	Version: 1, Name: "workflows, runs and their tasks, run logs, image locks and engine state",
	SQLite: `
CREATE TABLE workflows (
	name       TEXT PRIMARY KEY,
	doc        TEXT NOT NULL
);
CREATE TABLE workflow_runs (
	id         TEXT PRIMARY KEY,
	workflow   TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_ns INTEGER NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workflow, created_ns);
CREATE INDEX workflow_runs_by_state ON workflow_runs (state);
CREATE TABLE workflow_tasks (
	task_key   TEXT PRIMARY KEY,
	run_id     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	doc        TEXT NOT NULL
);
CREATE UNIQUE INDEX workflow_tasks_by_run ON workflow_tasks (run_id, seq);
CREATE TABLE workflow_logs (
	line_key   TEXT PRIMARY KEY,
	run_id     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	task_id    TEXT NOT NULL,
	at_ns      INTEGER NOT NULL,
	line       TEXT NOT NULL
);
CREATE UNIQUE INDEX workflow_logs_by_run ON workflow_logs (run_id, seq);
CREATE TABLE workflow_locks (
	lock_key   TEXT PRIMARY KEY,
	holder     TEXT NOT NULL
);
CREATE TABLE workflow_state (
	state_key  TEXT PRIMARY KEY,
	value      TEXT NOT NULL
);`,
	Postgres: `
CREATE TABLE workflows (
	name       TEXT PRIMARY KEY,
	doc        TEXT NOT NULL
);
CREATE TABLE workflow_runs (
	id         TEXT PRIMARY KEY,
	workflow   TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_ns BIGINT NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workflow, created_ns);
CREATE INDEX workflow_runs_by_state ON workflow_runs (state);
CREATE TABLE workflow_tasks (
	task_key   TEXT PRIMARY KEY,
	run_id     TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	doc        TEXT NOT NULL
);
CREATE UNIQUE INDEX workflow_tasks_by_run ON workflow_tasks (run_id, seq);
CREATE TABLE workflow_logs (
	line_key   TEXT PRIMARY KEY,
	run_id     TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	task_id    TEXT NOT NULL,
	at_ns      BIGINT NOT NULL,
	line       TEXT NOT NULL
);
CREATE UNIQUE INDEX workflow_logs_by_run ON workflow_logs (run_id, seq);
CREATE TABLE workflow_locks (
	lock_key   TEXT PRIMARY KEY,
	holder     TEXT NOT NULL
);
CREATE TABLE workflow_state (
	state_key  TEXT PRIMARY KEY,
	value      TEXT NOT NULL
);`,
}}

// Tables are the store's tables, for copying an installation.
var Tables = []database.Table{
	{Name: "workflows", Columns: []string{"name", "doc"}, Key: "name"},
	{Name: "workflow_runs", Columns: []string{"id", "workflow", "state", "created_ns", "doc"}, Key: "id"},
	{Name: "workflow_tasks", Columns: []string{"task_key", "run_id", "seq", "doc"}, Key: "task_key"},
	{Name: "workflow_logs", Columns: []string{"line_key", "run_id", "seq", "task_id", "at_ns", "line"}, Key: "line_key"},
	{Name: "workflow_locks", Columns: []string{"lock_key", "holder"}, Key: "lock_key"},
	{Name: "workflow_state", Columns: []string{"state_key", "value"}, Key: "state_key"},
}

// SQL is the Store on a database opened by internal/database: SQLite
// files, or PostgreSQL shared by replicas. Every read-modify-write runs in
// one DB.Update holding a named lock on the record's key, so that updates
// from several processes never interleave.
type SQL struct{ db *database.DB }

var _ Store = (*SQL)(nil)

// Open opens the store in the "workflow" database of o, migrating its
// schema.
func Open(ctx context.Context, o *database.Opener) (*SQL, error) {
	db, err := o.Open(ctx, Component)
	if err != nil {
		return nil, fmt.Errorf("workflow store: %w", err)
	}
	s, err := NewSQL(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// NewSQL migrates the store's schema in db and returns the store, which
// closes db with Close.
func NewSQL(ctx context.Context, db *database.DB) (*SQL, error) {
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, fmt.Errorf("workflow store: %w", err)
	}
	return &SQL{db: db}, nil
}

// Close closes the database.
func (s *SQL) Close() error { return s.db.Close() }

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readDoc[T any](ctx context.Context, q queryer, query, key, what string) (*T, error) {
	var raw string
	err := q.QueryRowContext(ctx, query, key).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s %q: %w", what, key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("workflow store: reading %s %q: %w", what, key, err)
	}
	v := new(T)
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return nil, fmt.Errorf("workflow store: stored %s %q: %w", what, key, err)
	}
	return v, nil
}

func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("workflow store: %w", err)
	}
	return string(b), nil
}

// exists reports whether query (a COUNT) finds rows.
func exists(ctx context.Context, tx *database.Tx, query string, args ...any) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("workflow store: %w", err)
	}
	return n > 0, nil
}

// Lock names, one per record kind.
func workflowLock(name string) string { return "workflow:" + name }
func runLock(id string) string        { return "workflow-run:" + id }

// CreateWorkflow implements Store.
func (s *SQL) CreateWorkflow(ctx context.Context, w *Workflow) error {
	if w.Name == "" {
		return errors.New("workflow store: workflow without a name")
	}
	doc, err := encode(w)
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, workflowLock(w.Name)); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT COUNT(*) FROM workflows WHERE name = ?`, w.Name); err != nil || ok {
			if ok {
				return fmt.Errorf("workflow %q: %w", w.Name, ErrExists)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workflows (name, doc) VALUES (?, ?)`, w.Name, doc); err != nil {
			return fmt.Errorf("workflow store: creating workflow %q: %w", w.Name, err)
		}
		return nil
	})
}

// Workflow implements Store.
func (s *SQL) Workflow(ctx context.Context, name string) (*Workflow, error) {
	return readDoc[Workflow](ctx, s.db, `SELECT doc FROM workflows WHERE name = ?`, name, "workflow")
}

// Workflows implements Store.
func (s *SQL) Workflows(ctx context.Context) ([]*Workflow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM workflows ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("workflow store: %w", err)
	}
	defer rows.Close()
	var out []*Workflow
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("workflow store: %w", err)
		}
		w := new(Workflow)
		if err := json.Unmarshal([]byte(raw), w); err != nil {
			return nil, fmt.Errorf("workflow store: stored workflow: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// UpdateWorkflow implements Store.
func (s *SQL) UpdateWorkflow(ctx context.Context, name string, fn func(*Workflow) error) (*Workflow, error) {
	var out *Workflow
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		out = nil
		if err := tx.Lock(ctx, workflowLock(name)); err != nil {
			return err
		}
		w, err := readDoc[Workflow](ctx, tx, `SELECT doc FROM workflows WHERE name = ?`, name, "workflow")
		if err != nil {
			return err
		}
		if err := fn(w); err != nil {
			return err
		}
		if w.Name != name {
			return fmt.Errorf("workflow store: an update may not rename workflow %q", name)
		}
		doc, err := encode(w)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE workflows SET doc = ? WHERE name = ?`, doc, name); err != nil {
			return fmt.Errorf("workflow store: updating workflow %q: %w", name, err)
		}
		out = w
		return nil
	})
	return out, err
}

// DeleteWorkflow implements Store.
func (s *SQL) DeleteWorkflow(ctx context.Context, name string) error {
	return s.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, workflowLock(name)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM workflows WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("workflow store: deleting workflow %q: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("workflow %q: %w", name, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM workflow_logs WHERE run_id IN (SELECT id FROM workflow_runs WHERE workflow = ?)`, name); err != nil {
			return fmt.Errorf("workflow store: deleting the logs of workflow %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM workflow_tasks WHERE run_id IN (SELECT id FROM workflow_runs WHERE workflow = ?)`, name); err != nil {
			return fmt.Errorf("workflow store: deleting the tasks of workflow %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM workflow_runs WHERE workflow = ?`, name); err != nil {
			return fmt.Errorf("workflow store: deleting the runs of workflow %q: %w", name, err)
		}
		return nil
	})
}

// runRows is a run as stored: its header (the run without its tasks)
// and one document per task.
type runRows struct {
	header string
	tasks  []string
}

func encodeRun(r *Run) (runRows, error) {
	h := *r
	h.Tasks = nil
	var rows runRows
	var err error
	if rows.header, err = encode(&h); err != nil {
		return rows, err
	}
	for i := range r.Tasks {
		d, err := encode(&r.Tasks[i])
		if err != nil {
			return rows, err
		}
		rows.tasks = append(rows.tasks, d)
	}
	return rows, nil
}

func taskKey(runID string, seq int) string { return fmt.Sprintf("%s/%06d", runID, seq) }

func insertTask(ctx context.Context, tx *database.Tx, runID string, seq int, doc string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_tasks (task_key, run_id, seq, doc) VALUES (?, ?, ?, ?)`,
		taskKey(runID, seq), runID, seq, doc); err != nil {
		return fmt.Errorf("workflow store: writing a task of run %q: %w", runID, err)
	}
	return nil
}

type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadTasks reads the tasks of runs, in order, into them.
func loadTasks(ctx context.Context, q rowsQueryer, runs []*Run) error {
	byID := map[string]*Run{}
	var ids []any
	for _, r := range runs {
		byID[r.ID] = r
		ids = append(ids, r.ID)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
		rows, err := q.QueryContext(ctx, `SELECT run_id, doc FROM workflow_tasks WHERE run_id IN (`+marks+`) ORDER BY run_id, seq`, chunk...)
		if err != nil {
			return fmt.Errorf("workflow store: reading tasks: %w", err)
		}
		for rows.Next() {
			var id, doc string
			if err := rows.Scan(&id, &doc); err != nil {
				rows.Close()
				return fmt.Errorf("workflow store: %w", err)
			}
			var t Task
			if err := json.Unmarshal([]byte(doc), &t); err != nil {
				rows.Close()
				return fmt.Errorf("workflow store: stored task of run %q: %w", id, err)
			}
			r := byID[id]
			r.Tasks = append(r.Tasks, t)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("workflow store: %w", err)
		}
	}
	return nil
}

// loadRun reads one run with its tasks.
func loadRun[Q interface {
	queryer
	rowsQueryer
}](ctx context.Context, q Q, id string) (*Run, error) {
	r, err := readDoc[Run](ctx, q, `SELECT doc FROM workflow_runs WHERE id = ?`, id, "run")
	if err != nil {
		return nil, err
	}
	r.Tasks = nil
	if err := loadTasks(ctx, q, []*Run{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// CreateRun implements Store.
func (s *SQL) CreateRun(ctx context.Context, r *Run) error {
	if r.ID == "" || r.Workflow == "" {
		return errors.New("workflow store: run without an ID or a workflow")
	}
	rows, err := encodeRun(r)
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *database.Tx) error {
		// The workflow's lock too: a run is never added to a workflow
		// being deleted.
		if err := tx.Lock(ctx, workflowLock(r.Workflow)); err != nil {
			return err
		}
		if err := tx.Lock(ctx, runLock(r.ID)); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT COUNT(*) FROM workflows WHERE name = ?`, r.Workflow); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("workflow %q: %w", r.Workflow, ErrNotFound)
			}
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT COUNT(*) FROM workflow_runs WHERE id = ?`, r.ID); err != nil || ok {
			if ok {
				return fmt.Errorf("run %q: %w", r.ID, ErrExists)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_runs (id, workflow, state, created_ns, doc) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.Workflow, string(r.State), r.CreatedAt.UnixNano(), rows.header); err != nil {
			return fmt.Errorf("workflow store: creating run %q: %w", r.ID, err)
		}
		for i, d := range rows.tasks {
			if err := insertTask(ctx, tx, r.ID, i, d); err != nil {
				return err
			}
		}
		return nil
	})
}

// Run implements Store.
func (s *SQL) Run(ctx context.Context, id string) (*Run, error) {
	return loadRun(ctx, s.db, id)
}

// Runs implements Store.
func (s *SQL) Runs(ctx context.Context, f RunFilter) ([]*Run, error) {
	var where []string
	var args []any
	if f.Workflow != "" {
		where, args = append(where, "workflow = ?"), append(args, f.Workflow)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_ns >= ?"), append(args, f.Since.UnixNano())
	}
	if len(f.States) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(f.States)), ", ")
		where = append(where, "state IN ("+marks+")")
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxRunList {
		limit = MaxRunList
	}
	q := `SELECT doc FROM workflow_runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_ns DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("workflow store: listing runs: %w", err)
	}
	var out []*Run
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("workflow store: %w", err)
		}
		r := new(Run)
		if err := json.Unmarshal([]byte(raw), r); err != nil {
			rows.Close()
			return nil, fmt.Errorf("workflow store: stored run: %w", err)
		}
		r.Tasks = nil
		out = append(out, r)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("workflow store: %w", err)
	}
	if err := loadTasks(ctx, s.db, out); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateRun implements Store. Only the header and the tasks fn changed
// are written.
func (s *SQL) UpdateRun(ctx context.Context, id string, fn func(*Run) error) (*Run, error) {
	var out *Run
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		out = nil
		if err := tx.Lock(ctx, runLock(id)); err != nil {
			return err
		}
		r, err := loadRun(ctx, tx, id)
		if err != nil {
			return err
		}
		before, err := encodeRun(r)
		if err != nil {
			return err
		}
		ids := make([]string, len(r.Tasks))
		for i, t := range r.Tasks {
			ids[i] = t.ID
		}
		wf := r.Workflow
		if err := fn(r); err != nil {
			return err
		}
		if r.ID != id || r.Workflow != wf {
			return fmt.Errorf("workflow store: an update may not change the ID or workflow of run %q", id)
		}
		if len(r.Tasks) < len(ids) {
			return fmt.Errorf("workflow store: an update may not remove tasks of run %q", id)
		}
		for i, tid := range ids {
			if r.Tasks[i].ID != tid {
				return fmt.Errorf("workflow store: an update may not reorder or rename the tasks of run %q", id)
			}
		}
		after, err := encodeRun(r)
		if err != nil {
			return err
		}
		if after.header != before.header {
			if _, err := tx.ExecContext(ctx, `UPDATE workflow_runs SET state = ?, doc = ? WHERE id = ?`, string(r.State), after.header, id); err != nil {
				return fmt.Errorf("workflow store: updating run %q: %w", id, err)
			}
		}
		for i, d := range after.tasks {
			switch {
			case i >= len(before.tasks):
				if err := insertTask(ctx, tx, id, i, d); err != nil {
					return err
				}
			case d != before.tasks[i]:
				if _, err := tx.ExecContext(ctx, `UPDATE workflow_tasks SET doc = ? WHERE task_key = ?`, d, taskKey(id, i)); err != nil {
					return fmt.Errorf("workflow store: updating task %s: %w", r.Tasks[i].ID, err)
				}
			}
		}
		out = r
		return nil
	})
	return out, err
}

// AppendLog implements Store.
func (s *SQL) AppendLog(ctx context.Context, runID, taskID string, at time.Time, lines ...string) error {
	if len(lines) == 0 {
		return nil
	}
	return s.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, "workflow-log:"+runID); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM workflow_logs WHERE run_id = ?`, runID).Scan(&last); err != nil {
			return fmt.Errorf("workflow store: %w", err)
		}
		for i, l := range lines {
			seq := last + int64(i) + 1
			if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_logs (line_key, run_id, seq, task_id, at_ns, line) VALUES (?, ?, ?, ?, ?, ?)`,
				fmt.Sprintf("%s/%015d", runID, seq), runID, seq, taskID, at.UnixNano(), l); err != nil {
				return fmt.Errorf("workflow store: appending to the log of run %q: %w", runID, err)
			}
		}
		return nil
	})
}

// Logs implements Store.
func (s *SQL) Logs(ctx context.Context, runID string, after int64, limit int) ([]LogLine, error) {
	if limit <= 0 || limit > MaxLogList {
		limit = MaxLogList
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, task_id, at_ns, line FROM workflow_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`, runID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("workflow store: reading the log of run %q: %w", runID, err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var l LogLine
		var ns int64
		if err := rows.Scan(&l.Seq, &l.Task, &ns, &l.Text); err != nil {
			return nil, fmt.Errorf("workflow store: %w", err)
		}
		l.At = time.Unix(0, ns).UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// UpdateLock implements Store.
func (s *SQL) UpdateLock(ctx context.Context, key string, fn func(holder string) (string, error)) (string, error) {
	var out string
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		out = ""
		if err := tx.Lock(ctx, "workflow-lock:"+key); err != nil {
			return err
		}
		var holder string
		err := tx.QueryRowContext(ctx, `SELECT holder FROM workflow_locks WHERE lock_key = ?`, key).Scan(&holder)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("workflow store: reading lock %q: %w", key, err)
		}
		next, err := fn(holder)
		if err != nil {
			return err
		}
		switch {
		case next == holder:
		case next == "":
			_, err = tx.ExecContext(ctx, `DELETE FROM workflow_locks WHERE lock_key = ?`, key)
		default:
			_, err = tx.ExecContext(ctx, `INSERT INTO workflow_locks (lock_key, holder) VALUES (?, ?)
				ON CONFLICT (lock_key) DO UPDATE SET holder = excluded.holder`, key, next)
		}
		if err != nil {
			return fmt.Errorf("workflow store: writing lock %q: %w", key, err)
		}
		out = next
		return nil
	})
	return out, err
}

// UpdateState implements Store.
func (s *SQL) UpdateState(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		out = nil
		if err := tx.Lock(ctx, "workflow-state:"+key); err != nil {
			return err
		}
		var old []byte
		var raw string
		err := tx.QueryRowContext(ctx, `SELECT value FROM workflow_state WHERE state_key = ?`, key).Scan(&raw)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("workflow store: reading state %q: %w", key, err)
		default:
			old = []byte(raw)
		}
		next, err := fn(old)
		if err != nil {
			return err
		}
		if next == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM workflow_state WHERE state_key = ?`, key)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO workflow_state (state_key, value) VALUES (?, ?)
				ON CONFLICT (state_key) DO UPDATE SET value = excluded.value`, key, string(next))
		}
		if err != nil {
			return fmt.Errorf("workflow store: writing state %q: %w", key, err)
		}
		out = next
		return nil
	})
	return out, err
}
