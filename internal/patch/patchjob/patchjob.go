// Package patchjob runs patches on the server: a POST /api/v1/patch
// becomes a job on the persistent queue (internal/jobs), worked by
// patch.Run against the server's own registry, in process; its progress
// and then its result are stored with the job, in the queue's database,
// so any replica answers a GET of it while it runs and after.
//
// A server patch reads an image of the server (quarantine/NAME or
// live/NAME) and writes its result to quarantine/ — never live/: a
// patched image is a new image and passes the gate like any other.
package patchjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Queue is where patch jobs run: a queue of their own, one at a time
// per replica (a patch is heavy; scans keep their workers).
const Queue = "patch"

// Args is a patch job's stored input.
type Args struct {
	Request patch.Request `json:"request"`
	Actor   string        `json:"actor"`
}

// Kind names the job type.
func (Args) Kind() string { return "patch" }

// ErrInvalid is wrapped by the refusal of a request a server cannot run.
var ErrInvalid = errors.New("invalid patch request")

// ErrNotFound is wrapped when there is no patch job of that id.
var ErrNotFound = errors.New("no such patch job")

// Targets returns the repositories a server patch reads and writes, for
// authorization: the input's (in quarantine/ or live/) and the output's
// (in quarantine/; by default the input's name there). It refuses inputs
// that are not images of the server and outputs outside quarantine/.
func Targets(req patch.Request) (input, output string, err error) {
	in, err := repository(req.Image)
	if err != nil || !patch.ServerName(req.Image) {
		return "", "", fmt.Errorf("%w: image %q: a server patches its own images, quarantine/NAME[:TAG] or live/NAME[:TAG]", ErrInvalid, req.Image)
	}
	out := imgref.Rebase(in, imgref.Quarantine)
	if req.Output != "" {
		o, err := repository(req.Output)
		if err != nil || !patch.ServerName(req.Output) || !imgref.IsQuarantine(o) {
			return "", "", fmt.Errorf("%w: output %q: a server patch writes to quarantine/NAME[:TAG], never live/ (a patched image passes the gate like any other)", ErrInvalid, req.Output)
		}
		out = o
	}
	return in, out, nil
}

// repository is the repository part of a server reference.
func repository(ref string) (string, error) {
	r, err := imgref.Parse(ref)
	if err != nil {
		return "", err
	}
	return r.Repository, nil
}

// Options configure a Service.
type Options struct {
	// Server is how patch.Run reaches the server's registry (in
	// process: ServerOptions carries the registry's transport).
	Server        oci.Server
	ServerOptions []oci.Option
	// DBPath is the vulnerability database (vulnerable-only, end of
	// life); read when present.
	DBPath string
	// DistroInfo is distro-info-data's directory, when there is no DB.
	DistroInfo string
	// CacheDir holds the patch engine's caches (default: its own).
	CacheDir string
	Limits   patch.CacheLimits
	// ImageLimits bound what reading an image may cost: the gate's
	// (scan.DefaultLimits when zero).
	ImageLimits scan.Limits
	Log         *slog.Logger
	// WithActor marks ctx as the requester's (what the registry records
	// of the result's push); nil leaves ctx as it is.
	WithActor func(ctx context.Context, actor string) context.Context
	// SignPatch signs a patch once written (the gate's SignPatch: its
	// signature, provenance, OpenVEX and SBOM); nil signs nothing. A
	// failure is logged; the patch stays written and the job succeeds.
	SignPatch func(ctx context.Context, p attest.PatchWritten) error
}

// Service submits patch jobs and reads them back.
type Service struct {
	q *jobs.Queue
	o Options
}

// New registers the patch job's handler on q (before q starts).
func New(q *jobs.Queue, o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{q: q, o: o}
	if err := jobs.Register(q, s.work); err != nil {
		return nil, err
	}
	return s, nil
}

// Submit checks req and queues it; the job's id names it for Status.
func (s *Service) Submit(ctx context.Context, actor string, req patch.Request) (int64, error) {
	if _, _, err := Targets(req); err != nil {
		return 0, err
	}
	if err := patch.Check(req); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return s.q.Enqueue(ctx, Args{Request: req, Actor: actor}, jobs.EnqueueOptions{Queue: Queue})
}

// State is where a patch job is.
type State string

// States of a patch job.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateRetrying  State = "retrying" // an attempt failed; it runs again
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
)

// Progress is what a running patch is doing.
type Progress struct {
	Phase    string `json:"phase"`
	Platform string `json:"platform,omitempty"`
	Package  string `json:"package,omitempty"`
	Done     int64  `json:"done,omitempty"`
	Total    int64  `json:"total,omitempty"`
	// Phases lists the phases gone through, in order, "platform phase".
	Phases []string  `json:"phases"`
	At     time.Time `json:"at"`
}

// Status is a patch job as the API shows it.
type Status struct {
	ID         int64         `json:"id"`
	State      State         `json:"state"`
	Request    patch.Request `json:"request"`
	Actor      string        `json:"actor,omitempty"`
	Progress   *Progress     `json:"progress,omitempty"`
	Result     *patch.Result `json:"result,omitempty"`
	Error      string        `json:"error,omitempty"`
	Attempt    int           `json:"attempt"`
	CreatedAt  time.Time     `json:"created_at"`
	StartedAt  time.Time     `json:"started_at,omitzero"`
	FinishedAt time.Time     `json:"finished_at,omitzero"`
}

// output is what the handler stores with the job.
type output struct {
	Progress *Progress     `json:"progress,omitempty"`
	Result   *patch.Result `json:"result,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Status returns the patch job id.
func (s *Service) Status(ctx context.Context, id int64) (*Status, error) {
	j, err := s.q.Job(ctx, id)
	if errors.Is(err, jobs.ErrNoJob) || (err == nil && j.Kind != (Args{}).Kind()) {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var a Args
	if err := json.Unmarshal(j.Args, &a); err != nil {
		return nil, fmt.Errorf("patch job %d: %w", id, err)
	}
	st := &Status{ID: j.ID, Request: a.Request, Actor: a.Actor, Attempt: j.Attempt, CreatedAt: j.CreatedAt,
		StartedAt: j.AttemptedAt, FinishedAt: j.FinalizedAt}
	var out output
	if len(j.Output) > 0 {
		if err := json.Unmarshal(j.Output, &out); err != nil {
			return nil, fmt.Errorf("patch job %d output: %w", id, err)
		}
	}
	st.Progress, st.Result, st.Error = out.Progress, out.Result, out.Error
	switch j.State {
	case jobs.StateRunning:
		st.State = StateRunning
	case jobs.StateRetryable:
		st.State = StateRetrying
	case jobs.StateCompleted:
		st.State = StateSucceeded
	case jobs.StateCancelled, jobs.StateDiscarded:
		st.State = StateFailed
		if st.Error == "" && len(j.Errors) > 0 {
			st.Error = j.Errors[len(j.Errors)-1].Error
		}
	default:
		st.State = StateQueued
	}
	return st, nil
}

// work runs one patch job.
func (s *Service) work(ctx context.Context, a Args) error {
	log := s.o.Log.With("job", "patch", "image", a.Request.Image, "actor", a.Actor)
	if s.o.WithActor != nil {
		ctx = s.o.WithActor(ctx, a.Actor)
	}
	rec := &recorder{ctx: ctx, log: log}
	opts := []patch.Option{patch.WithServer(s.o.Server, s.o.ServerOptions...), patch.WithLogger(log),
		patch.WithProgress(rec.event), patch.WithCacheLimits(s.o.Limits), patch.WithLimits(s.o.ImageLimits)}
	if s.o.CacheDir != "" {
		opts = append(opts, patch.WithCacheDir(s.o.CacheDir))
	}
	var db *vulndb.DB
	if _, err := os.Stat(s.o.DBPath); err == nil && s.o.DBPath != "" {
		if db, err = vulndb.Open(s.o.DBPath); err != nil {
			return fmt.Errorf("opening the vulnerability database: %w", err)
		}
		defer db.Close()
		opts = append(opts, patch.WithVulnDB(db))
	}
	rels, err := patch.LoadReleases(ctx, db, s.o.DistroInfo)
	if err != nil {
		return err
	}
	opts = append(opts, patch.WithReleases(rels))
	started := time.Now()
	res, err := patch.Run(ctx, a.Request, opts...)
	if err != nil {
		log.Warn("patch job failed", "error", err)
		rec.finish(output{Error: err.Error()})
		if permanent(err) {
			return jobs.Permanent(err)
		}
		return err
	}
	log.Info("patch job done", "output", res.Output, "digest", res.Digest)
	s.sign(ctx, log, a.Request, res, started)
	return rec.finish(output{Result: res})
}

// sign has a written patch signed (Options.SignPatch).
func (s *Service) sign(ctx context.Context, log *slog.Logger, req patch.Request, res *patch.Result, started time.Time) {
	if s.o.SignPatch == nil || res.Digest == "" || res.DryRun {
		return
	}
	in, _, err := Targets(req)
	if err != nil {
		return
	}
	out, err := name.ParseReference(res.Output, name.Insecure)
	if err != nil {
		log.Warn("the patch is written but not signed", "output", res.Output, "error", err)
		return
	}
	var plans []patch.Plan
	for _, p := range res.Platforms {
		if p.Digest != "" {
			plans = append(plans, p.Plan)
		}
	}
	w := attest.PatchWritten{Repository: out.Context().RepositoryStr(), Tag: out.Identifier(), Digest: digest.Digest(res.Digest),
		OriginalRepository: in, OriginalName: req.Image, Plans: plans, Started: started, Finished: time.Now(),
		Request: map[string]any{"mode": string(req.Mode), "image": req.Image}}
	if len(req.Packages) > 0 {
		w.Request["packages"] = req.Packages
	}
	if err := s.o.SignPatch(ctx, w); err != nil {
		log.Warn("the patch is written but not signed", "output", res.Output, "digest", res.Digest, "error", err)
		return
	}
	log.Info("patch signed", "output", res.Output, "digest", res.Digest)
}

// permanent reports errors retrying cannot help.
func permanent(err error) bool {
	for _, e := range []error{patch.ErrInvalidRequest, patch.ErrEndOfLife, patch.ErrUnsupported, patch.ErrHostileImage, patch.ErrScripts} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne *name.ErrBadName
	return errors.As(err, &ne) || strings.Contains(err.Error(), "MANIFEST_UNKNOWN")
}

// recorder stores a job's progress: every phase change, download
// progress at most every half second.
type recorder struct {
	ctx  context.Context
	log  *slog.Logger
	mu   sync.Mutex
	p    Progress
	last time.Time
}

func (r *recorder) event(e patch.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := e.Phase != r.p.Phase || e.Platform != r.p.Platform
	if changed {
		r.p.Phases = append(r.p.Phases, strings.TrimSpace(e.Platform+" "+e.Phase))
	}
	r.p.Phase, r.p.Platform, r.p.Package, r.p.Done, r.p.Total = e.Phase, e.Platform, e.Package, e.Done, e.Total
	now := time.Now()
	if !changed && now.Sub(r.last) < 500*time.Millisecond {
		return
	}
	r.last, r.p.At = now, now
	p := r.p
	p.Phases = append([]string(nil), r.p.Phases...)
	if err := jobs.SetOutput(r.ctx, output{Progress: &p}); err != nil {
		r.log.Warn("recording patch progress", "error", err)
	}
}

// finish stores the job's end: its result or error, with the progress.
func (r *recorder) finish(o output) error {
	r.mu.Lock()
	p := r.p
	r.mu.Unlock()
	p.At = time.Now()
	o.Progress = &p
	return jobs.SetOutput(r.ctx, o)
}
