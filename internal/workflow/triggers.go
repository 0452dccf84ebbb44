package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// The tick is the engine's periodic job. Each tick, with the engine's
// clock and what the store holds:
//   - queues the run of every workflow whose scheduled time has come (one
//     run, however many times were missed while the server was down);
//   - notices a new vulnerability database and records, per workflow, a
//     pending trigger for the images it gives new fixable findings;
//   - polls the security suites of the workflows' images (their InRelease,
//     with If-None-Match / If-Modified-Since: a 304 of a few bytes when
//     unchanged) and records a pending trigger for the images of a suite
//     that changed;
//   - queues a run for each pending trigger quiet for the debounce window.
//
// A lighter periodic job, every LeaseTTL/2, resumes the parts of runs
// whose job died (see lease.go).
//
// Run IDs of scheduled and event runs are derived from what caused them,
// so a tick repeated after a crash never queues a run twice.

func (e *Engine) handleTick(ctx context.Context, _ tickArgs) error { return e.Tick(ctx) }

// Tick does one tick's work now (the periodic job calls it; tests call it
// after moving the clock).
func (e *Engine) Tick(ctx context.Context) error {
	ws, err := e.o.Store.Workflows(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, w := range ws {
		if err := e.runIfDue(ctx, w); err != nil {
			errs = append(errs, fmt.Errorf("workflow %s: schedule: %w", w.Name, err))
		}
	}
	if err := e.checkDB(ctx, ws); err != nil {
		errs = append(errs, err)
	}
	if err := e.pollSuites(ctx, ws); err != nil {
		errs = append(errs, err)
	}
	if err := e.firePending(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, err := range errs {
		e.log.Warn("workflow tick", "err", err)
	}
	return errors.Join(errs...)
}

// derivedID is the run ID of an event: the same event, the same ID.
func derivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "r" + hex.EncodeToString(h.Sum(nil))[:8]
}

// runIfDue queues the scheduled run of w when its time has come.
func (e *Engine) runIfDue(ctx context.Context, w *Workflow) error {
	now := e.clock.Now()
	due := w.NextRunAt
	if due.IsZero() || now.Before(due) {
		return nil
	}
	id := derivedID(w.Name, "schedule", due.UTC().Format(time.RFC3339))
	if _, err := e.queueRun(ctx, w, id, Trigger{Kind: TriggerSchedule, Detail: "scheduled for " + due.UTC().Format("2006-01-02 15:04 UTC")}); err != nil {
		return err
	}
	e.log.Info("workflow: scheduled run queued", "workflow", w.Name, "run", id, "due", due)
	_, err := e.o.Store.UpdateWorkflow(ctx, w.Name, func(w *Workflow) error {
		if w.NextRunAt.Equal(due) {
			w.NextRunAt = w.Schedule.Next(now)
		}
		return nil
	})
	return err
}

// dbBuiltAt is the build time of the vulnerability database; zero when
// there is none.
func (e *Engine) dbBuiltAt() (time.Time, error) {
	if _, err := os.Stat(e.o.DBPath); err != nil {
		return time.Time{}, nil
	}
	db, err := vulndb.Open(e.o.DBPath)
	if err != nil {
		return time.Time{}, fmt.Errorf("opening the vulnerability database: %w", err)
	}
	defer db.Close()
	return db.Meta().BuiltAt, nil
}

// checkDB records a db-update trigger for the images a new database gives
// fixable findings the workflow has not seen on them yet.
func (e *Engine) checkDB(ctx context.Context, ws []*Workflow) error {
	if len(ws) == 0 {
		return nil // no workflow to trigger: the database is not opened every tick for nothing
	}
	built, err := e.dbBuiltAt()
	if err != nil || built.IsZero() {
		return err
	}
	for _, w := range ws {
		if w.Triggers.DBBuiltAt.Equal(built) {
			continue
		}
		// A new database, or the first one of a workflow created without:
		// its fixable findings the images' last scans did not have.
		affected, err := e.newFindings(ctx, w)
		if err != nil {
			return fmt.Errorf("workflow %s: checking the new vulnerability database: %w", w.Name, err)
		}
		now := e.clock.Now()
		if _, err := e.o.Store.UpdateWorkflow(ctx, w.Name, func(w *Workflow) error {
			w.Triggers.DBBuiltAt = built
			if len(affected) > 0 {
				addPending(w, PendingTrigger{Kind: TriggerDBUpdate, Detail: "vulnerability database built at " + built.UTC().Format(time.RFC3339),
					Images: affected, FirstSeen: now, LastSeen: now})
			}
			return nil
		}); err != nil {
			return err
		}
		if len(affected) > 0 {
			e.log.Info("workflow: new fixable findings after a database update", "workflow", w.Name, "images", affected)
		}
	}
	return nil
}

// newFindings scans the latest patch of each of w's images with the
// current database and returns the images with a fixable finding their
// last scan in a run did not have.
func (e *Engine) newFindings(ctx context.Context, w *Workflow) ([]string, error) {
	sel, err := Select(ctx, &w.Config, e.tagLister)
	if err != nil {
		return nil, err
	}
	runs, err := e.o.Store.Runs(ctx, RunFilter{Workflow: w.Name, Limit: 200})
	if err != nil {
		return nil, err
	}
	env, err := e.openEnv(ctx, e.o.HTTPClient, nil)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	var out []string
	for _, m := range sel.Matches {
		repo, tag := m.Target()
		a, err := e.read(ctx, repo, tag)
		if err != nil {
			continue // gone: the next run says so
		}
		f, err := env.scanArtifact(ctx, a)
		if err != nil {
			return nil, err
		}
		if f.eol || f.unsupported || len(f.ids) == 0 {
			continue
		}
		seen := lastSeenIDs(runs, m.Image())
		if slices.ContainsFunc(f.ids, func(id string) bool { return !seen[id] }) {
			out = append(out, m.Image())
		}
	}
	return out, nil
}

// lastSeenIDs are the fixable findings of image's newest finished scan.
func lastSeenIDs(runs []*Run, image string) map[string]bool {
	for _, r := range runs { // newest first
		if t := r.ImageTask(TaskScan, image); t != nil && t.State == StateSucceeded && t.Scan != nil {
			m := map[string]bool{}
			for _, id := range t.Scan.FixableIDs {
				m[id] = true
			}
			return m
		}
	}
	return map[string]bool{}
}

// addPending merges p into w's pending triggers: the same kind and detail
// extend one trigger (its quiet window starts again).
func addPending(w *Workflow, p PendingTrigger) {
	for i := range w.Triggers.Pending {
		q := &w.Triggers.Pending[i]
		if q.Kind == p.Kind && q.Detail == p.Detail {
			q.LastSeen = p.LastSeen
			for _, im := range p.Images {
				if !slices.Contains(q.Images, im) {
					q.Images = append(q.Images, im)
				}
			}
			slices.Sort(q.Images)
			return
		}
	}
	slices.Sort(p.Images)
	w.Triggers.Pending = append(w.Triggers.Pending, p)
}

// firePending queues a run for each pending trigger quiet for the
// debounce window.
func (e *Engine) firePending(ctx context.Context) error {
	ws, err := e.o.Store.Workflows(ctx)
	if err != nil {
		return err
	}
	now := e.clock.Now()
	for _, w := range ws {
		for _, p := range w.Triggers.Pending {
			if now.Before(p.LastSeen.Add(e.o.Debounce)) {
				continue
			}
			id := derivedID(w.Name, string(p.Kind), p.Detail, p.FirstSeen.UTC().Format(time.RFC3339Nano))
			if _, err := e.queueRun(ctx, w, id, Trigger{Kind: p.Kind, Detail: p.Detail, Images: p.Images}); err != nil {
				return err
			}
			e.log.Info("workflow: event run queued", "workflow", w.Name, "run", id, "trigger", p.Kind, "detail", p.Detail)
			if _, err := e.o.Store.UpdateWorkflow(ctx, w.Name, func(w *Workflow) error {
				w.Triggers.Pending = slices.DeleteFunc(w.Triggers.Pending, func(q PendingTrigger) bool {
					return q.Kind == p.Kind && q.Detail == p.Detail && q.FirstSeen.Equal(p.FirstSeen)
				})
				return nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// suiteState is what the engine remembers of a polled InRelease.
type suiteState struct {
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	SHA256       string    `json:"sha256,omitempty"`
	CheckedAt    time.Time `json:"checked_at"`
}

// maxInRelease bounds a polled InRelease.
const maxInRelease = 4 << 20

// pollSuites polls the security suites the workflows' images update from
// and records a security-suite trigger for the images of a changed one.
func (e *Engine) pollSuites(ctx context.Context, ws []*Workflow) error {
	type watcher struct {
		workflow string
		images   []string
	}
	suites := map[string][]watcher{}
	for _, w := range ws {
		if !w.SecuritySuite {
			continue
		}
		runs, err := e.o.Store.Runs(ctx, RunFilter{Workflow: w.Name, Limit: 50})
		if err != nil {
			return err
		}
		byURL := map[string][]string{}
		seen := map[string]bool{}
		for _, r := range runs { // newest first: each image's latest scan
			for _, t := range r.Tasks {
				if t.Kind != TaskScan || t.Scan == nil || t.State != StateSucceeded || seen[t.Image] {
					continue
				}
				seen[t.Image] = true
				for _, u := range t.Scan.Suites {
					byURL[u] = append(byURL[u], t.Image)
				}
			}
		}
		for u, ims := range byURL {
			slices.Sort(ims)
			suites[u] = append(suites[u], watcher{workflow: w.Name, images: ims})
		}
	}
	var errs []error
	for _, u := range slices.Sorted(maps.Keys(suites)) {
		changed, err := e.pollSuite(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !changed {
			continue
		}
		now := e.clock.Now()
		for _, wt := range suites[u] {
			if _, err := e.o.Store.UpdateWorkflow(ctx, wt.workflow, func(w *Workflow) error {
				addPending(w, PendingTrigger{Kind: TriggerSecuritySuite, Detail: u + " changed", Images: wt.images, FirstSeen: now, LastSeen: now})
				return nil
			}); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
		}
		e.log.Info("workflow: a security suite changed", "inrelease", u)
	}
	return errors.Join(errs...)
}

// pollSuite fetches one InRelease if its poll interval has passed, with
// the validators of the last fetch. It reports a change of content; the
// first sight of a suite is not a change.
func (e *Engine) pollSuite(ctx context.Context, u string) (bool, error) {
	key := "suite:" + u
	var st suiteState
	now := e.clock.Now()
	raw, err := e.o.Store.UpdateState(ctx, key, func(old []byte) ([]byte, error) { return old, nil })
	if err != nil {
		return false, err
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &st); err != nil {
			return false, fmt.Errorf("stored state of %s: %w", u, err)
		}
		if now.Before(st.CheckedAt.Add(e.o.PollInterval)) {
			return false, nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("polling %s: %w", u, err)
	}
	if st.ETag != "" {
		req.Header.Set("If-None-Match", st.ETag)
	}
	if st.LastModified != "" {
		req.Header.Set("If-Modified-Since", st.LastModified)
	}
	resp, err := e.o.HTTPClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("polling %s: %w", u, err)
	}
	defer resp.Body.Close()
	changed := false
	switch resp.StatusCode {
	case http.StatusNotModified:
	case http.StatusOK:
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(resp.Body, maxInRelease+1))
		if err != nil {
			return false, fmt.Errorf("polling %s: %w", u, err)
		}
		if n > maxInRelease {
			return false, fmt.Errorf("polling %s: more than %d bytes", u, maxInRelease)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		changed = st.SHA256 != "" && sum != st.SHA256
		st.SHA256 = sum
		st.ETag, st.LastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	default:
		return false, fmt.Errorf("polling %s: HTTP %s", u, resp.Status)
	}
	st.CheckedAt = now
	b, err := json.Marshal(st)
	if err != nil {
		return false, err
	}
	if _, err := e.o.Store.UpdateState(ctx, key, func([]byte) ([]byte, error) { return b, nil }); err != nil {
		return false, err
	}
	return changed, nil
}
