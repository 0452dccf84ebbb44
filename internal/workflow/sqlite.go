package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DefaultPath is where the workflow store lives under a data directory.
func DefaultPath(dataDir string) string { return filepath.Join(dataDir, "workflow", "workflow.db") }

// The schema keeps to SQL that PostgreSQL runs too: TEXT documents (the
// records as JSON), BIGINT Unix nanoseconds, ON CONFLICT upserts.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS workflows (
	name       TEXT PRIMARY KEY,
	doc        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workflow_runs (
	id         TEXT PRIMARY KEY,
	workflow   TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_ns BIGINT NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_runs_by_workflow ON workflow_runs (workflow, created_ns);
CREATE TABLE IF NOT EXISTS workflow_logs (
	run_id     TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	task_id    TEXT NOT NULL,
	at_ns      BIGINT NOT NULL,
	line       TEXT NOT NULL,
	PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS workflow_locks (
	lock_key   TEXT PRIMARY KEY,
	holder     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workflow_state (
	state_key  TEXT PRIMARY KEY,
	value      BLOB NOT NULL
);
`

// SQLite is the Store on an SQLite file.
type SQLite struct{ db *sql.DB }

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating) the store at path. Transactions take the
// write lock at BEGIN (immediate), so that read-modify-write updates of
// concurrent writers, in this process or another sharing the file,
// serialize instead of failing.
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("workflow store: %w", err)
	}
	q := url.Values{"_pragma": []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"}, "_txlock": []string{"immediate"}}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("workflow store %s: %w", path, err)
	}
	if _, err := db.Exec(sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("workflow store %s: create schema: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// inTx runs fn in a transaction and commits unless it fails.
func (s *SQLite) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("workflow store: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("workflow store: %w", err)
	}
	return nil
}

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

// CreateWorkflow implements Store.
func (s *SQLite) CreateWorkflow(ctx context.Context, w *Workflow) error {
	if w.Name == "" {
		return errors.New("workflow store: workflow without a name")
	}
	doc, err := encode(w)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workflows WHERE name = ?`, w.Name).Scan(&n); err != nil {
			return fmt.Errorf("workflow store: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("workflow %q: %w", w.Name, ErrExists)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workflows (name, doc) VALUES (?, ?)`, w.Name, doc); err != nil {
			return fmt.Errorf("workflow store: creating workflow %q: %w", w.Name, err)
		}
		return nil
	})
}

// Workflow implements Store.
func (s *SQLite) Workflow(ctx context.Context, name string) (*Workflow, error) {
	return readDoc[Workflow](ctx, s.db, `SELECT doc FROM workflows WHERE name = ?`, name, "workflow")
}

// Workflows implements Store.
func (s *SQLite) Workflows(ctx context.Context) ([]*Workflow, error) {
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
func (s *SQLite) UpdateWorkflow(ctx context.Context, name string, fn func(*Workflow) error) (*Workflow, error) {
	var out *Workflow
	err := s.inTx(ctx, func(tx *sql.Tx) error {
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
func (s *SQLite) DeleteWorkflow(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
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
		if _, err := tx.ExecContext(ctx, `DELETE FROM workflow_runs WHERE workflow = ?`, name); err != nil {
			return fmt.Errorf("workflow store: deleting the runs of workflow %q: %w", name, err)
		}
		return nil
	})
}

// CreateRun implements Store.
func (s *SQLite) CreateRun(ctx context.Context, r *Run) error {
	if r.ID == "" || r.Workflow == "" {
		return errors.New("workflow store: run without an ID or a workflow")
	}
	doc, err := encode(r)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workflows WHERE name = ?`, r.Workflow).Scan(&n); err != nil {
			return fmt.Errorf("workflow store: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("workflow %q: %w", r.Workflow, ErrNotFound)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_runs WHERE id = ?`, r.ID).Scan(&n); err != nil {
			return fmt.Errorf("workflow store: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("run %q: %w", r.ID, ErrExists)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_runs (id, workflow, state, created_ns, doc) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.Workflow, string(r.State), r.CreatedAt.UnixNano(), doc); err != nil {
			return fmt.Errorf("workflow store: creating run %q: %w", r.ID, err)
		}
		return nil
	})
}

// Run implements Store.
func (s *SQLite) Run(ctx context.Context, id string) (*Run, error) {
	return readDoc[Run](ctx, s.db, `SELECT doc FROM workflow_runs WHERE id = ?`, id, "run")
}

// Runs implements Store.
func (s *SQLite) Runs(ctx context.Context, f RunFilter) ([]*Run, error) {
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
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("workflow store: %w", err)
		}
		r := new(Run)
		if err := json.Unmarshal([]byte(raw), r); err != nil {
			return nil, fmt.Errorf("workflow store: stored run: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateRun implements Store.
func (s *SQLite) UpdateRun(ctx context.Context, id string, fn func(*Run) error) (*Run, error) {
	var out *Run
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := readDoc[Run](ctx, tx, `SELECT doc FROM workflow_runs WHERE id = ?`, id, "run")
		if err != nil {
			return err
		}
		wf := r.Workflow
		if err := fn(r); err != nil {
			return err
		}
		if r.ID != id || r.Workflow != wf {
			return fmt.Errorf("workflow store: an update may not change the ID or workflow of run %q", id)
		}
		doc, err := encode(r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE workflow_runs SET state = ?, doc = ? WHERE id = ?`, string(r.State), doc, id); err != nil {
			return fmt.Errorf("workflow store: updating run %q: %w", id, err)
		}
		out = r
		return nil
	})
	return out, err
}

// AppendLog implements Store.
func (s *SQLite) AppendLog(ctx context.Context, runID, taskID string, at time.Time, lines ...string) error {
	if len(lines) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM workflow_logs WHERE run_id = ?`, runID).Scan(&last); err != nil {
			return fmt.Errorf("workflow store: %w", err)
		}
		for i, l := range lines {
			if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_logs (run_id, seq, task_id, at_ns, line) VALUES (?, ?, ?, ?, ?)`,
				runID, last+int64(i)+1, taskID, at.UnixNano(), l); err != nil {
				return fmt.Errorf("workflow store: appending to the log of run %q: %w", runID, err)
			}
		}
		return nil
	})
}

// Logs implements Store.
func (s *SQLite) Logs(ctx context.Context, runID string, after int64, limit int) ([]LogLine, error) {
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
func (s *SQLite) UpdateLock(ctx context.Context, key string, fn func(holder string) (string, error)) (string, error) {
	var out string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
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
func (s *SQLite) UpdateState(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var old []byte
		err := tx.QueryRowContext(ctx, `SELECT value FROM workflow_state WHERE state_key = ?`, key).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("workflow store: reading state %q: %w", key, err)
		}
		next, err := fn(old)
		if err != nil {
			return err
		}
		if next == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM workflow_state WHERE state_key = ?`, key)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO workflow_state (state_key, value) VALUES (?, ?)
				ON CONFLICT (state_key) DO UPDATE SET value = excluded.value`, key, next)
		}
		if err != nil {
			return fmt.Errorf("workflow store: writing state %q: %w", key, err)
		}
		out = next
		return nil
	})
	return out, err
}
