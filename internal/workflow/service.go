package workflow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The service: what `drydock workflow ...` asks the server for, through
// the API. Errors wrap ErrInvalid (a bad request), ErrNotFound or
// ErrExists.

// ErrInvalid is wrapped by refused requests.
var ErrInvalid = errors.New("invalid request")

// DefaultName is the workflow a command means when it names none.
const DefaultName = "default"

// WorkflowType is the workflow type ACR's list shows.
const WorkflowType = "continuouspatchv1"

var workflowNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func checkName(n string) error {
	if !workflowNameRE.MatchString(n) {
		return fmt.Errorf("%w: workflow name %q: lower-case letters, digits and dashes, at most 63", ErrInvalid, n)
	}
	return nil
}

// CreateRequest creates a workflow (or, with DryRun, only shows what it
// would do).
type CreateRequest struct {
	Name string `json:"name"`
	// Config is the config file's text.
	Config string `json:"config"`
	// Schedule is "Nd".
	Schedule string `json:"schedule"`
	// SecuritySuite turns the security-suite signal on (default) or off.
	SecuritySuite *bool `json:"security_suite,omitempty"`
	// Rollout rolls promoted patch tags out to the cluster (default off).
	Rollout        bool `json:"rollout,omitempty"`
	DryRun         bool `json:"dry_run,omitempty"`
	RunImmediately bool `json:"run_immediately,omitempty"`
}

// UpdateRequest changes a workflow: at least one of Config, Schedule,
// SecuritySuite and Rollout.
type UpdateRequest struct {
	Name           string  `json:"name"`
	Config         *string `json:"config,omitempty"`
	Schedule       *string `json:"schedule,omitempty"`
	SecuritySuite  *bool   `json:"security_suite,omitempty"`
	Rollout        *bool   `json:"rollout,omitempty"`
	DryRun         bool    `json:"dry_run,omitempty"`
	RunImmediately bool    `json:"run_immediately,omitempty"`
}

// Result is what create and update return.
type Result struct {
	// Workflow is the stored workflow (nil on a dry run).
	Workflow *View `json:"workflow,omitempty"`
	// Selection is what the config matches now (ACR's quick dry run).
	Selection *Selection `json:"selection"`
	// DryRun is the full dry run, when asked.
	DryRun *DryRunReport `json:"dry_run,omitempty"`
	// Run is the run --run-immediately queued.
	Run *Run `json:"run,omitempty"`
}

// View is a workflow as show prints it.
type View struct {
	Name          string    `json:"name"`
	Type          string    `json:"type"`
	Config        Config    `json:"config"`
	ConfigText    string    `json:"config_text"`
	Schedule      string    `json:"schedule"`
	Cron          string    `json:"cron"`
	SecuritySuite bool      `json:"security_suite"`
	Rollout       bool      `json:"rollout"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// NextRuns are the next scheduled runs (UTC).
	NextRuns []time.Time      `json:"next_runs"`
	Pending  []PendingTrigger `json:"pending_triggers,omitempty"`
	// LastRun is the newest run, without its tasks' results.
	LastRun *RunSummary `json:"last_run,omitempty"`
}

// RunSummary summarises a run.
type RunSummary struct {
	ID        string      `json:"id"`
	Trigger   TriggerKind `json:"trigger"`
	Detail    string      `json:"detail,omitempty"`
	State     State       `json:"state"`
	CreatedAt time.Time   `json:"created_at"`
	StartedAt time.Time   `json:"started_at,omitzero"`
	EndedAt   time.Time   `json:"ended_at,omitzero"`
	Images    int         `json:"images"`
	Patched   int         `json:"patched"`
	Skipped   int         `json:"skipped"`
	Failed    int         `json:"failed"`
	// Tags lists the tags written.
	Tags  []string `json:"tags,omitempty"`
	Error string   `json:"error,omitempty"`
}

// Summarize summarises a run.
func Summarize(r *Run) RunSummary {
	s := RunSummary{ID: r.ID, Trigger: r.Trigger.Kind, Detail: r.Trigger.Detail, State: r.State, CreatedAt: r.CreatedAt,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, Error: r.Error}
	for _, t := range r.Tasks {
		switch t.Kind {
		case TaskScan:
			s.Images++
			if t.State == StateFailed {
				s.Failed++
			}
			if t.State == StateSucceeded && t.Scan != nil && !t.Scan.Patch {
				s.Skipped++
			}
		case TaskPatch:
			switch {
			case t.State == StateFailed:
				s.Failed++
			case t.State == StateSkipped:
				s.Skipped++
			case t.Patch != nil && t.Patch.TagWritten:
				s.Patched++
				s.Tags = append(s.Tags, strings.TrimPrefix(t.Patch.Repository, quarantineNS)+":"+t.Patch.Tag)
			}
		}
	}
	return s
}

func (e *Engine) view(ctx context.Context, w *Workflow) (*View, error) {
	v := &View{Name: w.Name, Type: WorkflowType, Config: w.Config, ConfigText: w.ConfigText, Schedule: w.Schedule.String(),
		Cron: w.Schedule.Cron(), SecuritySuite: w.SecuritySuite, Rollout: w.Rollout, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		Pending: w.Triggers.Pending}
	next := w.NextRunAt
	if !next.IsZero() {
		v.NextRuns = append([]time.Time{next.UTC()}, w.Schedule.NextN(next, 2)...)
	}
	runs, err := e.o.Store.Runs(ctx, RunFilter{Workflow: w.Name, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(runs) > 0 {
		s := Summarize(runs[0])
		v.LastRun = &s
	}
	return v, nil
}

// Create creates a workflow, as ACR's create does: the schedule and config
// are checked, a quick dry run resolves the tags (more than MaxImages
// fails), and with DryRun the full dry run is returned and nothing is
// stored.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (*Result, error) {
	req.Name = cmp.Or(req.Name, DefaultName)
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	now := e.clock.Now()
	sched, err := ParseSchedule(req.Schedule, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cfg, err := ParseConfig([]byte(req.Config))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if req.DryRun && req.RunImmediately {
		return nil, fmt.Errorf("%w: --dry-run and --run-immediately exclude each other", ErrInvalid)
	}
	if _, err := e.o.Store.Workflow(ctx, req.Name); err == nil {
		return nil, fmt.Errorf("workflow %q: %w: change it with update, or delete it first", req.Name, ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	security := req.SecuritySuite == nil || *req.SecuritySuite
	res, err := e.preview(ctx, cfg, security, req.DryRun)
	if err != nil || req.DryRun {
		return res, err
	}
	built, _ := e.dbBuiltAt()
	w := &Workflow{Name: req.Name, Config: *cfg, ConfigText: req.Config, Schedule: sched, SecuritySuite: security, Rollout: req.Rollout,
		CreatedAt: now, UpdatedAt: now, NextRunAt: sched.Next(now), Triggers: TriggerState{DBBuiltAt: built}}
	if err := e.o.Store.CreateWorkflow(ctx, w); err != nil {
		return nil, err
	}
	e.log.Info("workflow created", "workflow", w.Name, "schedule", sched.String(), "next_run", w.NextRunAt)
	return e.finishChange(ctx, w, res, req.RunImmediately)
}

// preview resolves the config (failing over MaxImages) and, for a dry
// run, evaluates every image.
func (e *Engine) preview(ctx context.Context, cfg *Config, security, full bool) (*Result, error) {
	sel, err := Select(ctx, cfg, e.tagLister)
	if err != nil {
		if sel != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil, err
	}
	res := &Result{Selection: sel}
	if full {
		if res.DryRun, err = e.DryRun(ctx, cfg, sel, security); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (e *Engine) finishChange(ctx context.Context, w *Workflow, res *Result, runNow bool) (*Result, error) {
	if runNow {
		r, err := e.queueRun(ctx, w, newID(), Trigger{Kind: TriggerManual, Detail: "--run-immediately"})
		if err != nil {
			return nil, err
		}
		res.Run = r
	}
	v, err := e.view(ctx, w)
	if err != nil {
		return nil, err
	}
	res.Workflow = v
	return res, nil
}

// Update changes a workflow's config, schedule (taking the hour and minute
// again, as ACR does) or security-suite signal.
func (e *Engine) Update(ctx context.Context, req UpdateRequest) (*Result, error) {
	req.Name = cmp.Or(req.Name, DefaultName)
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	if req.Config == nil && req.Schedule == nil && req.SecuritySuite == nil && req.Rollout == nil {
		return nil, fmt.Errorf("%w: say what to change: --config FILE, --schedule Nd, --security-suite or --rollout", ErrInvalid)
	}
	if req.DryRun && req.RunImmediately {
		return nil, fmt.Errorf("%w: --dry-run and --run-immediately exclude each other", ErrInvalid)
	}
	now := e.clock.Now()
	var sched *Schedule
	if req.Schedule != nil {
		s, err := ParseSchedule(*req.Schedule, now)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		sched = &s
	}
	var cfg *Config
	if req.Config != nil {
		c, err := ParseConfig([]byte(*req.Config))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		cfg = c
	}
	cur, err := e.o.Store.Workflow(ctx, req.Name)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("workflow %q does not exist: %w: create it first (drydock workflow create --config FILE --schedule Nd)", req.Name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	security := cur.SecuritySuite
	if req.SecuritySuite != nil {
		security = *req.SecuritySuite
	}
	previewCfg := &cur.Config
	if cfg != nil {
		previewCfg = cfg
	}
	res, err := e.preview(ctx, previewCfg, security, req.DryRun)
	if err != nil || req.DryRun {
		return res, err
	}
	w, err := e.o.Store.UpdateWorkflow(ctx, req.Name, func(w *Workflow) error {
		if cfg != nil {
			w.Config, w.ConfigText = *cfg, *req.Config
		}
		if sched != nil {
			w.Schedule = *sched
			w.NextRunAt = sched.Next(now)
		}
		w.SecuritySuite = security
		if req.Rollout != nil {
			w.Rollout = *req.Rollout
		}
		w.UpdatedAt = now
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.log.Info("workflow updated", "workflow", w.Name, "schedule", w.Schedule.String(), "next_run", w.NextRunAt)
	return e.finishChange(ctx, w, res, req.RunImmediately)
}

// Show returns one workflow.
func (e *Engine) Show(ctx context.Context, name string) (*View, error) {
	w, err := e.o.Store.Workflow(ctx, cmp.Or(name, DefaultName))
	if err != nil {
		return nil, err
	}
	return e.view(ctx, w)
}

// List returns every workflow.
func (e *Engine) List(ctx context.Context) ([]*View, error) {
	ws, err := e.o.Store.Workflows(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*View, 0, len(ws))
	for _, w := range ws {
		v, err := e.view(ctx, w)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Delete cancels a workflow's active runs and deletes it with its ledger.
func (e *Engine) Delete(ctx context.Context, name string) ([]string, error) {
	name = cmp.Or(name, DefaultName)
	canceled, err := e.Cancel(ctx, name, "")
	if err != nil {
		return nil, err
	}
	if err := e.o.Store.DeleteWorkflow(ctx, name); err != nil {
		return nil, err
	}
	e.log.Info("workflow deleted", "workflow", name, "canceled_runs", canceled)
	return canceled, nil
}

// RunNow queues a run of a workflow now.
func (e *Engine) RunNow(ctx context.Context, name string) (*Run, error) {
	w, err := e.o.Store.Workflow(ctx, cmp.Or(name, DefaultName))
	if err != nil {
		return nil, err
	}
	return e.queueRun(ctx, w, newID(), Trigger{Kind: TriggerManual})
}

// Cancel cancels one run (id), or every queued or running run of the
// workflow; it returns the IDs canceled. A run's tasks still queued or
// running end canceled; a tag being written when the cancel arrives is
// either written whole or not at all.
func (e *Engine) Cancel(ctx context.Context, name, id string) ([]string, error) {
	name = cmp.Or(name, DefaultName)
	if _, err := e.o.Store.Workflow(ctx, name); err != nil {
		return nil, err
	}
	var ids []string
	if id != "" {
		r, err := e.o.Store.Run(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.Workflow != name {
			return nil, fmt.Errorf("run %s: %w in workflow %q", id, ErrNotFound, name)
		}
		if r.State.Finished() {
			return nil, fmt.Errorf("%w: run %s has already ended (%s)", ErrInvalid, id, r.State)
		}
		ids = []string{id}
	} else {
		runs, err := e.o.Store.Runs(ctx, RunFilter{Workflow: name, States: []State{StateQueued, StateRunning}})
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
	}
	var out []string
	for _, rid := range ids {
		now := e.clock.Now()
		changed := false
		if _, err := e.o.Store.UpdateRun(ctx, rid, func(r *Run) error {
			changed = false
			if r.State.Finished() {
				return nil
			}
			changed = true
			r.State, r.EndedAt, r.Error = StateCanceled, now, "canceled"
			for i := range r.Tasks {
				if t := &r.Tasks[i]; !t.State.Finished() {
					t.State, t.EndedAt = StateCanceled, now
				}
			}
			return nil
		}); err != nil {
			return out, err
		}
		if changed {
			out = append(out, rid)
			e.logf(ctx, rid, rid+"-t", "run canceled")
			e.dropRun(rid)
		}
	}
	return out, nil
}

// RunDetail is a run with its log.
type RunDetail struct {
	Run     *Run       `json:"run"`
	Summary RunSummary `json:"summary"`
	Log     []LogLine  `json:"log"`
}

// RunWithLog returns a run and its log lines after the given sequence
// number.
func (e *Engine) RunWithLog(ctx context.Context, id string, after int64) (*RunDetail, error) {
	r, err := e.o.Store.Run(ctx, id)
	if err != nil {
		return nil, err
	}
	lines, err := e.o.Store.Logs(ctx, id, after, 0)
	if err != nil {
		return nil, err
	}
	if lines == nil {
		lines = []LogLine{}
	}
	return &RunDetail{Run: r, Summary: Summarize(r), Log: lines}, nil
}

// Runs lists a workflow's runs, newest first.
func (e *Engine) Runs(ctx context.Context, name string, limit int) ([]RunSummary, error) {
	runs, err := e.o.Store.Runs(ctx, RunFilter{Workflow: cmp.Or(name, DefaultName), Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]RunSummary, 0, len(runs))
	for _, r := range runs {
		out = append(out, Summarize(r))
	}
	return out, nil
}

// statusOrder sorts states for the filter's error message.
func validStatus(s State) error {
	if s == "" || s.Valid() {
		return nil
	}
	var names []string
	for _, st := range States {
		names = append(names, string(st))
	}
	return fmt.Errorf("%w: status %q: want one of %s", ErrInvalid, s, strings.Join(names, ", "))
}
