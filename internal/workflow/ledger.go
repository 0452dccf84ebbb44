package workflow

import (
	"slices"
	"time"

	"github.com/drydock-project/drydock/internal/patch"
)

// State is the state of a run or a task.
type State string

// States, as ACR's list shows them.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateSkipped   State = "skipped"
	StateCanceled  State = "canceled"
)

// States lists every state, in life-cycle order.
var States = []State{StateQueued, StateRunning, StateSucceeded, StateFailed, StateSkipped, StateCanceled}

// Finished reports whether s is final.
func (s State) Finished() bool {
	return s == StateSucceeded || s == StateFailed || s == StateSkipped || s == StateCanceled
}

// Valid reports whether s is one of States.
func (s State) Valid() bool { return slices.Contains(States, s) }

// TaskKind is what a task does.
type TaskKind string

// Task kinds: one trigger task per run, then per image a scan task and,
// when the scan says so, a patch task.
const (
	TaskTrigger TaskKind = "trigger"
	TaskScan    TaskKind = "scan"
	TaskPatch   TaskKind = "patch"
)

// TriggerKind is why a run was queued.
type TriggerKind string

// Triggers.
const (
	TriggerSchedule      TriggerKind = "schedule"
	TriggerManual        TriggerKind = "manual" // --run-immediately, or a run asked through the API
	TriggerDBUpdate      TriggerKind = "db-update"
	TriggerSecuritySuite TriggerKind = "security-suite"
)

// Signals: why a scan decided to patch.
const (
	// SignalDB: the vulnerability database has fixable findings.
	SignalDB = "vulnerability-db"
	// SignalSecuritySuite: the release's security suite has updates for
	// installed packages (which the database may not know yet).
	SignalSecuritySuite = "security-suite"
)

// Workflow is a stored workflow.
type Workflow struct {
	Name string `json:"name"`
	// Config is the validated config and ConfigText the file as given.
	Config     Config   `json:"config"`
	ConfigText string   `json:"config_text"`
	Schedule   Schedule `json:"schedule"`
	// SecuritySuite turns on the second signal: patch when the release's
	// security suite has updates for installed packages, even before the
	// vulnerability database knows them. Off is ACR's behaviour.
	SecuritySuite bool `json:"security_suite"`
	// Rollout moves the workloads that run a configured image to its
	// patch tag once the gate promotes it into live/ (drydock rollout, run
	// by the server with its kube.kubeconfig).
	Rollout   bool      `json:"rollout,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// NextRunAt is the next scheduled run.
	NextRunAt time.Time `json:"next_run_at"`
	// Triggers is the engine's bookkeeping for its event triggers.
	Triggers TriggerState `json:"triggers,omitzero"`
}

// TriggerState is what the event triggers remember between ticks.
type TriggerState struct {
	// DBBuiltAt is the build time of the vulnerability database the
	// workflow's images were last checked against.
	DBBuiltAt time.Time `json:"db_built_at,omitzero"`
	// Pending are events waiting out the debounce window.
	Pending []PendingTrigger `json:"pending,omitempty"`
}

// PendingTrigger is an event that will queue a run once quiet for the
// debounce window.
type PendingTrigger struct {
	Kind TriggerKind `json:"kind"`
	// Detail says what happened (the suite that changed, the DB build).
	Detail    string    `json:"detail"`
	Images    []string  `json:"images,omitempty"` // NAME:TAG; empty = all
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Run is one execution of a workflow: its ledger entry.
type Run struct {
	ID       string  `json:"id"`
	Workflow string  `json:"workflow"`
	Trigger  Trigger `json:"trigger"`
	State    State   `json:"state"`
	// Config is the config the run was started with.
	Config        Config    `json:"config"`
	SecuritySuite bool      `json:"security_suite"`
	CreatedAt     time.Time `json:"created_at"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	EndedAt       time.Time `json:"ended_at,omitzero"`
	Tasks         []Task    `json:"tasks"`
	Error         string    `json:"error,omitempty"`
	// Fetches counts the requests the run sent to package archives, by
	// URL (Release files once per suite; indexes already in the cache are
	// not fetched).
	Fetches map[string]int `json:"fetches,omitempty"`
	// Leases say which job works on which part of the run (LeaseTrigger,
	// or an images group by its digest) and until when; a job renews its
	// lease while it works. A lease that expired while its part is
	// unfinished means the job died with its process: the engine's tick
	// queues a job that resumes the part.
	Leases map[string]Lease `json:"leases,omitempty"`
	// Resumes counts, per part, the jobs queued to resume it.
	Resumes map[string]int `json:"resumes,omitempty"`
}

// LeaseTrigger is the lease key of a run's trigger task.
const LeaseTrigger = "trigger"

// Lease is a job's claim on part of a run.
type Lease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

// Trigger says why a run was queued.
type Trigger struct {
	Kind   TriggerKind `json:"kind"`
	Detail string      `json:"detail,omitempty"`
	// Images restricts the run to these NAME:TAG (event triggers); empty
	// means every image the config matches.
	Images []string `json:"images,omitempty"`
}

// Task is one step of a run.
type Task struct {
	ID    string   `json:"id"`
	Kind  TaskKind `json:"kind"`
	Image string   `json:"image,omitempty"` // NAME:TAG of the original; "" for the trigger
	// Group is the digest of the original: the images of a run whose
	// originals share it are scanned and patched by one job, once.
	Group     string    `json:"group,omitempty"`
	State     State     `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Error     string    `json:"error,omitempty"`
	// One of these, by Kind.
	Trigger *TriggerResult `json:"trigger,omitempty"`
	Scan    *ScanResult    `json:"scan,omitempty"`
	Patch   *PatchResult   `json:"patch,omitempty"`
}

// TriggerResult is what the trigger task found.
type TriggerResult struct {
	Convention TagConvention `json:"tag_convention"`
	Matches    []Match       `json:"matches"`
	NotFound   []string      `json:"not_found,omitempty"`
	Ignored    []IgnoredTag  `json:"ignored,omitempty"`
}

// Severity counts: severity name -> number of findings.
type Counts map[string]int

// Total sums the counts.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// ScanResult is what a scan task found on the latest patch (or the
// original when there is none) and what it decided.
type ScanResult struct {
	Match Match `json:"match"`
	// Target is the scanned REPO:TAG and Digest its manifest digest.
	Target string `json:"target"`
	Digest string `json:"digest,omitempty"`
	// OS and support, per the scan.
	OS         string `json:"os,omitempty"`
	Support    string `json:"support,omitempty"`
	SupportEnd string `json:"support_end,omitempty"`
	// Fixable counts the fixable OS-package findings by severity (Trivy's
	// --ignore-unfixed, no severity filter); FixableIDs lists them.
	Fixable    Counts   `json:"fixable"`
	FixableIDs []string `json:"fixable_ids,omitempty"`
	// SecurityUpdates are updates the release's security suite offers for
	// installed packages (when the workflow's security-suite signal is on).
	SecurityUpdates []PackageChange `json:"security_updates,omitempty"`
	// Suites are the release's security suites (their InRelease URLs),
	// which the security-suite trigger watches.
	Suites []string `json:"suites,omitempty"`
	// Signals lists what says to patch (SignalDB, SignalSecuritySuite).
	Signals []string `json:"signals,omitempty"`
	// Patch is the decision; SkipReason says why not.
	Patch      bool   `json:"patch"`
	SkipReason string `json:"skip_reason,omitempty"`
	// Tag is the tag a patch would write.
	Tag string `json:"tag,omitempty"`
	// Seconds is the time of each phase (read, scan, plan): a measure,
	// not a decision.
	Seconds map[string]float64 `json:"phase_seconds,omitempty"`
}

// PackageChange is one package update.
type PackageChange struct {
	Package string `json:"package"`
	From    string `json:"from,omitempty"`
	To      string `json:"to"`
	Suite   string `json:"suite,omitempty"`
}

// PatchResult is what a patch task did.
type PatchResult struct {
	// Source is the original REPO:TAG and SourceDigest its digest.
	Source       string `json:"source"`
	SourceDigest string `json:"source_digest"`
	// Tag is the tag the patch is (or was) written to, in Repository;
	// fixed before anything is written, so a resumed task writes the same
	// tag.
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	// Packages lists the updates installed, over every platform.
	Packages  []PackageChange `json:"packages,omitempty"`
	Platforms []string        `json:"platforms,omitempty"`
	// Sandboxed lists the maintainer scripts that ran in the patcher's
	// sandbox ("PLATFORM: PACKAGE SCRIPT").
	Sandboxed []string `json:"sandboxed,omitempty"`
	// Digest is the patched image's digest.
	Digest string `json:"digest,omitempty"`
	// FixableBefore and FixableAfter count fixable findings of the
	// original and of the patched image.
	FixableBefore Counts `json:"fixable_before,omitempty"`
	FixableAfter  Counts `json:"fixable_after,omitempty"`
	// TagWritten is true once the tag points at Digest. Unchanged means
	// the patch equals the latest patch (same digest): no tag written.
	TagWritten bool   `json:"tag_written"`
	Unchanged  bool   `json:"unchanged,omitempty"`
	SameAs     string `json:"same_as,omitempty"`
	// SharedWith names the task that built this patch when several tags
	// of one digest are patched once.
	SharedWith string `json:"shared_with,omitempty"`
	// SkipReason says why nothing was written.
	SkipReason string `json:"skip_reason,omitempty"`
	// Signing is what signing the patch needs, recorded with the tag
	// before the write when the engine signs patches, and dropped once the
	// patch is signed: a job resumed after a crash between the write and
	// the signature signs with it.
	Signing *Signing `json:"signing,omitempty"`
	// Seconds is the time of each phase: patch (the patcher's whole
	// build), patch/PHASE (the patcher's own phases over every platform:
	// read, index, resolve, download, unpack, scripts, layer), rescan (the
	// patched image's scan), write and sign.
	Seconds map[string]float64 `json:"phase_seconds,omitempty"`
}

// Signing is the input of a written patch's signature that the ledger
// does not hold otherwise.
type Signing struct {
	// OriginalRepository holds the original (the source's repository).
	OriginalRepository string `json:"original_repository"`
	// Plans are the patcher's plans, one per platform (the provenance's
	// package changes with their archive URLs).
	Plans []patch.Plan `json:"plans"`
}

// timed adds the time since start to phase in m.
func timed(m map[string]float64, phase string, start time.Time) {
	m[phase] += time.Since(start).Seconds()
}

// LogLine is one line of a task's log.
type LogLine struct {
	Seq  int64     `json:"seq"`
	Task string    `json:"task"`
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

// Task returns the task with id, or nil.
func (r *Run) Task(id string) *Task {
	for i := range r.Tasks {
		if r.Tasks[i].ID == id {
			return &r.Tasks[i]
		}
	}
	return nil
}

// ImageTask returns the task of kind for image, or nil.
func (r *Run) ImageTask(kind TaskKind, image string) *Task {
	for i := range r.Tasks {
		if r.Tasks[i].Kind == kind && r.Tasks[i].Image == image {
			return &r.Tasks[i]
		}
	}
	return nil
}
