// Package gatekeeper runs the quarantine -> live gate inside the server:
// every manifest that arrives in quarantine/ is scanned by a persistent
// background job, its verdict is decided by the gate package's rules
// (policy, OpenVEX exceptions, stability) and stored against its digest,
// and promotion copies a passing digest into live/, with its referrers.
//
// The pieces it joins: the embedded registry (read and written in process,
// never over the network), the job queue (scans survive restarts and
// crashes), the verdict store, the audit log and the event dispatcher.
// Time is read only from the clock given in Options, so expiries, grace
// windows and stuck scans are testable without sleeping.
//
// Fail closed: a digest without a finished scan is pending; a scan that
// errored, is stuck or found an unsupported OS fails; no policy, or a
// policy file that does not load, fails everything. Only pass and exempt
// are promotable, and the verdict is decided again, at the current time,
// at the moment of promotion.
package gatekeeper

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// ActorGate is the audit actor of the gate's own actions (scans, verdicts,
// auto-promotion).
const ActorGate = "drydock:gate"

// Publisher sends events; *events.Dispatcher implements it.
type Publisher interface {
	Publish(e events.Event) error
}

// Store is what the gatekeeper needs of the verdict store;
// *store.SQLite implements it.
type Store interface {
	store.Store
}

// Options configure a Keeper. Registry, Store, Queue, Audit and DBPath are
// required.
type Options struct {
	Registry *registry.Registry
	Store    Store
	Queue    *jobs.Queue
	Audit    *audit.Log
	// Events receives verdict, promotion, refusal and stuck-scan events;
	// nil sends none.
	Events Publisher
	// Policy and Exceptions are the policy file and OpenVEX directory.
	Policy     *PolicySource
	Exceptions *ExceptionSource
	// ExceptionStore holds the exceptions created through the API, used
	// beside those of the exceptions directory; nil means none.
	ExceptionStore exceptions.Store
	// DBPath is the vulnerability database the scanner reads.
	DBPath string
	// MaxDataAge is the data age above which the database is stale
	// (default vulndb.DefaultMaxDataAge).
	MaxDataAge time.Duration
	// InventoryCache keeps each image's inventory by manifest digest, so a
	// rescan reads no layer; nil disables it.
	InventoryCache scan.InventoryCache
	// ScanOptions are added to the scanner's options for every scan (the
	// cost limits of gate.limits, for one).
	ScanOptions []scan.Option
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
	// StuckAfter is how long a scan may run before it counts as stuck
	// (default 15 minutes).
	StuckAfter time.Duration
	// SweepInterval is how often the sweep runs (default a minute): a
	// periodic job of the queue, run once per interval by one of the
	// processes sharing the queue.
	SweepInterval time.Duration
	// Metrics counts scans, verdict changes and promotions; nil counts
	// nothing.
	Metrics *metrics.Gate
	// Key signs every promotion: a cosign and a Notary Project signature
	// of the live/ digest and the promotion attestation (attest); nil
	// signs nothing.
	Key *attest.Key
}

// Keeper is the gate's service. Its methods are safe for concurrent use.
type Keeper struct {
	reg        *registry.Registry
	store      Store
	queue      *jobs.Queue
	audits     *audit.Log
	events     Publisher
	policy     *PolicySource
	exceptions *ExceptionSource
	exStore    exceptions.Store
	dbPath     string
	maxDataAge time.Duration
	dbMeta     dbMeta
	cache      scan.InventoryCache
	scanOpts   []scan.Option
	now        func() time.Time
	log        *slog.Logger
	stuckAfter time.Duration
	metrics    *metrics.Gate
	key        *attest.Key

	// What this process has seen, to act on changes once per process;
	// what must hold across replicas is in the store (the decision lock,
	// the policy hash, the stuck scans reported).
	mu         sync.Mutex
	policyHash string // last policy hash seen (audited on change)
	policySeen bool
	swept      bool            // a sweep has run in this process
	exErrs     map[string]bool // exception file errors already logged
}

// New returns a Keeper and registers its scan job on the queue (before the
// queue is started).
func New(o Options) (*Keeper, error) {
	switch {
	case o.Registry == nil:
		return nil, errors.New("gatekeeper: no registry")
	case o.Store == nil:
		return nil, errors.New("gatekeeper: no verdict store")
	case o.Queue == nil:
		return nil, errors.New("gatekeeper: no job queue")
	case o.Audit == nil:
		return nil, errors.New("gatekeeper: no audit log")
	case o.DBPath == "":
		return nil, errors.New("gatekeeper: no vulnerability database path")
	}
	k := &Keeper{
		reg: o.Registry, store: o.Store, queue: o.Queue, audits: o.Audit, events: o.Events,
		policy: o.Policy, exceptions: o.Exceptions, exStore: o.ExceptionStore, dbPath: o.DBPath, maxDataAge: cmp.Or(o.MaxDataAge, defaultMaxDataAge), cache: o.InventoryCache, scanOpts: o.ScanOptions,
		now: o.Now, log: o.Log,
		stuckAfter: cmp.Or(o.StuckAfter, 15*time.Minute), metrics: o.Metrics, key: o.Key, exErrs: map[string]bool{},
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.policy == nil {
		p, err := NewPolicySource("")
		if err != nil {
			return nil, err
		}
		k.policy = p
	}
	if k.exceptions == nil {
		k.exceptions, _ = NewExceptionSource("")
	}
	if err := jobs.Register(o.Queue, k.runScan); err != nil {
		return nil, fmt.Errorf("gatekeeper: %w", err)
	}
	if err := jobs.Register(o.Queue, k.runSweep); err != nil {
		return nil, fmt.Errorf("gatekeeper: %w", err)
	}
	var in []jobs.ScheduleOption
	if o.Queue.HasQueue(SweepQueue) {
		in = append(in, jobs.InQueue(SweepQueue))
	}
	if err := jobs.Schedule(o.Queue, "gate.sweep", cmp.Or(o.SweepInterval, time.Minute), SweepArgs{}, in...); err != nil {
		return nil, fmt.Errorf("gatekeeper: %w", err)
	}
	return k, nil
}

// ManifestPushed is the registry's manifest listener: a manifest stored in
// quarantine/ gets a scan job (one per digest while one is waiting) and a
// pending verdict, at once, so that the digest is counted and shown as
// pending until its scan ends. It implements registry.ManifestListener.
// Not scanned: non-runnable artifacts and cosign tag-scheme content
// (signatures, SBOMs, reports follow their subject; see
// imgref.Manifest.NonRunnable and imgref.TagSchemeArtifact: when their
// subject is already in live/, they are copied there, see
// followerArrived), the gate's own writes
// (IsGateWrite), and a digest whose scan failed for good (only an
// explicit rescan runs it again).
func (k *Keeper) ManifestPushed(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
	if IsGateWrite(ctx) || !imgref.IsQuarantine(repo) {
		return nil
	}
	d := desc.Digest.String()
	stored, body, err := k.reg.Manifest(ctx, repo, d)
	if err != nil {
		return err
	}
	if tag != "" {
		if ts, ok := imgref.TagSchemeArtifact(tag, stored.MediaType, body); ok {
			k.followerArrived(ctx, repo, ts.Subject)
			return nil
		}
	}
	if m, err := imgref.ParseManifest(stored.MediaType, body); err == nil && m.NonRunnable() {
		if m.Subject != nil {
			k.followerArrived(ctx, repo, m.Subject.Digest)
		}
		return nil
	}
	if sc, err := k.store.Scan(ctx, d); err == nil && sc.Permanent {
		k.log.Info("not scanned again: its scan failed for good; drydock rescan runs it again", "repository", repo, "digest", d, "error", sc.Error)
		return nil
	}
	if _, err := k.Enqueue(ctx, repo, tag, d, "arrival"); err != nil {
		return err
	}
	_, err = k.Reevaluate(ctx, repo, d)
	return err
}

// gateWriteKey marks the context of the gate's own writes to the registry.
type gateWriteKey struct{}

// WithGateWrite returns ctx marked as that of a write the gate makes
// itself to the in-process registry (a scan report, a promotion): the
// registry's listeners get it back (IsGateWrite). Only in-process callers
// can set it; no HTTP request carries it.
func WithGateWrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, gateWriteKey{}, true)
}

// IsGateWrite reports whether ctx is that of a write the gate made itself
// (a scan report attached to an image, a promotion): it is audited as the
// gate's (ActorGate) and never scanned.
func IsGateWrite(ctx context.Context) bool { v, _ := ctx.Value(gateWriteKey{}).(bool); return v }

// Enqueue queues a scan of digest in repo; while one is queued or running
// for the digest, its id is returned instead of a second job.
func (k *Keeper) Enqueue(ctx context.Context, repo, tag, digest, reason string) (int64, error) {
	id, err := k.queue.Enqueue(ctx, ScanArgs{Repository: repo, Tag: tag, Digest: digest, Reason: reason},
		jobs.EnqueueOptions{UniqueKey: digest})
	if err != nil {
		return 0, fmt.Errorf("queue scan of %s@%s: %w", repo, digest, err)
	}
	k.log.Info("scan queued", "repository", repo, "tag", tag, "digest", digest, "reason", reason, "job", id)
	return id, nil
}

// Status is what `drydock verdict` shows for one digest.
type Status struct {
	Repository string       `json:"repository"`
	Reference  string       `json:"reference,omitempty"`
	Digest     string       `json:"digest"`
	Verdict    gate.Verdict `json:"verdict"`
	Promoted   bool         `json:"promoted"`
	// Policy is the path of the policy file ("" for the built-in policy)
	// and PolicyHash the SHA-256 of its text.
	Policy     string `json:"policy"`
	PolicyHash string `json:"policyHash,omitempty"`
	// Scan summarises the latest scan.
	Scan ScanSummary `json:"scan"`
	// Database is how old the vulnerability data is now (absent when
	// there is no database); Database.Stale warns that findings published
	// since are missing.
	Database *vulndb.Freshness `json:"database,omitempty"`
}

// ScanSummary summarises a digest's latest scan.
type ScanSummary struct {
	ScannedAt time.Time         `json:"scannedAt,omitzero"`
	Source    string            `json:"source,omitempty"`
	Error     string            `json:"error,omitempty"`
	Platforms []PlatformSummary `json:"platforms,omitempty"`
}

// PlatformSummary is one image's scan result.
type PlatformSummary struct {
	Platform string         `json:"platform,omitempty"`
	Digest   string         `json:"digest"`
	OS       string         `json:"os,omitempty"`
	Status   scan.Status    `json:"status"`
	Findings int            `json:"findings"`
	Counts   map[string]int `json:"counts,omitempty"`
}

// Resolve resolves "quarantine/NAME:TAG", "quarantine/NAME@DIGEST" or a
// live/ reference to its repository and manifest digest.
func (k *Keeper) Resolve(ctx context.Context, ref string) (repo, reference, digest string, err error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", "", "", err
	}
	desc, _, err := k.reg.Manifest(ctx, r.Repository, r.Ref())
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return "", "", "", fmt.Errorf("%s: %w", ref, ErrUnknownImage)
		}
		return "", "", "", err
	}
	return r.Repository, r.Ref(), desc.Digest.String(), nil
}

// ErrUnknownImage is returned for a reference the registry does not have.
var ErrUnknownImage = errors.New("no such image in the registry")

// ParseRef reads a reference to an image on the server,
// NAMESPACE/NAME[:TAG][@DIGEST] (see imgref.Parse; the tag defaults to
// latest). An error wraps ErrInvalidRequest.
func ParseRef(ref string) (imgref.Reference, error) {
	r, err := imgref.Parse(ref)
	if err != nil {
		return imgref.Reference{}, fmt.Errorf("%w: %w (want NAMESPACE/NAME:TAG or NAMESPACE/NAME@DIGEST)", ErrInvalidRequest, err)
	}
	if !strings.Contains(r.Repository, "/") {
		return imgref.Reference{}, fmt.Errorf("%w: reference %q: name a namespace, e.g. quarantine/%s", ErrInvalidRequest, ref, strings.TrimSpace(ref))
	}
	return r, nil
}

// Verdict decides the verdict of ref again, at the current time, records
// it, and returns the status.
func (k *Keeper) Verdict(ctx context.Context, ref string) (*Status, error) {
	repo, reference, digest, err := k.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	st, err := k.status(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	st.Reference = reference
	return st, nil
}

func (k *Keeper) status(ctx context.Context, repo, digest string) (*Status, error) {
	// The verdict, its promoted flag and the scan summary all come from
	// the one decision, so they agree with each other.
	_, sc, im, err := k.reevaluate(ctx, repo, digest)
	if err != nil {
		return nil, err
	}
	st := &Status{Repository: repo, Digest: digest, Verdict: im.Verdict, Promoted: im.Promoted, Policy: k.policy.Path()}
	_, st.PolicyHash, _ = k.policy.Get()
	st.Database = k.freshness()
	if sc != nil {
		st.Scan = summarize(sc)
	}
	return st, nil
}

func summarize(sc *store.Scan) ScanSummary {
	s := ScanSummary{ScannedAt: sc.ScannedAt, Source: sc.Source, Error: sc.Error}
	for _, pr := range sc.Reports {
		ps := PlatformSummary{Platform: pr.Platform, Digest: pr.Digest}
		if r := pr.Report; r != nil {
			ps.OS = strings.TrimSpace(r.OS.ID + " " + r.OS.Version)
			ps.Status = r.Status
			ps.Findings = len(r.Findings)
			ps.Counts = map[string]int{}
			for sev, n := range r.Counts() {
				ps.Counts[string(sev)] = n
			}
		}
		s.Platforms = append(s.Platforms, ps)
	}
	return s
}

// Reevaluate decides the verdict of digest from its stored scan, the
// current policy and exceptions and the current time, records it (with
// the stability rules) and returns the effective verdict. It audits and
// announces a change.
func (k *Keeper) Reevaluate(ctx context.Context, repo, digest string) (gate.Verdict, error) {
	v, _, _, err := k.reevaluate(ctx, repo, digest)
	return v, err
}

// reevaluate is Reevaluate that also returns the scan the decision read
// (nil when none) and the stored image after the record. Decisions on a
// digest are made and recorded one at a time, by every process sharing
// the store (its decision lock), reading the scan inside the lock: a
// decision made from an older scan can never be recorded over one made
// from a newer scan, on this replica or another.
func (k *Keeper) reevaluate(ctx context.Context, repo, digest string) (v gate.Verdict, sc *store.Scan, after *store.Image, err error) {
	err = k.store.Serialize(ctx, digest, func(ctx context.Context) error {
		var err error
		v, sc, after, err = k.reevaluateLocked(ctx, repo, digest)
		return err
	})
	if err != nil {
		return gate.Verdict{}, nil, nil, err
	}
	return v, sc, after, nil
}

func (k *Keeper) reevaluateLocked(ctx context.Context, repo, digest string) (gate.Verdict, *store.Scan, *store.Image, error) {
	// The stored image is read once: it names the quarantine/ repository,
	// is the previous verdict, and (with the new verdict) the result.
	im, err := k.store.Image(ctx, digest)
	switch {
	case errors.Is(err, store.ErrNotFound):
		im = nil
	case err != nil:
		return gate.Verdict{}, nil, nil, err
	}
	repo = gateRepo(repo, im)
	stored, err := k.storedExceptions(ctx, repo, digest)
	if err != nil {
		return gate.Verdict{}, nil, nil, err
	}
	sc, err := k.store.Scan(ctx, digest)
	if errors.Is(err, store.ErrNotFound) {
		sc, err = nil, nil
	}
	next, grace := k.decide(ctx, repo, digest, sc, err, stored)
	var prev *gate.Verdict
	if im != nil {
		prev = &im.Verdict
	}
	v, err := k.record(ctx, repo, digest, prev, next, grace)
	if err != nil {
		return gate.Verdict{}, nil, nil, err
	}
	after := store.Image{Digest: digest, Repository: repo}
	if im != nil {
		after = *im // recording a verdict changes neither repository nor promoted
	}
	after.Verdict = v
	return v, sc, &after, nil
}

// gateRepo is the repository a digest's verdict is decided for: the
// quarantine/ repository it arrived in. A verdict asked for through live/
// (or a rescan of a live/ image) is the same digest's verdict, decided
// with the exceptions written for its quarantine/ repository.
func gateRepo(repo string, stored *store.Image) string {
	if !imgref.IsLive(repo) {
		return repo
	}
	if stored != nil && stored.Repository != "" {
		return stored.Repository
	}
	return imgref.Rebase(repo, imgref.Quarantine)
}

// decide computes a fresh verdict and the grace window to apply.
// sc is the stored scan (nil when there is none), scanErr why it could
// not be read, stored the exceptions of the store about the image.
func (k *Keeper) decide(ctx context.Context, repo, digest string, sc *store.Scan, scanErr error, stored []gate.Exception) (gate.Verdict, time.Duration) {
	now := k.now()
	pol, hash, perr := k.policy.Get()
	k.notePolicy(ctx, hash, perr)
	if perr != nil {
		return gate.Verdict{State: gate.StateFail, At: now, Reasons: []gate.Reason{{Rule: gate.RulePolicy,
			Message: "no usable policy, nothing is promotable: " + perr.Error()}}}, 0
	}
	ex, exErrs := k.exceptions.Get()
	k.noteExceptionErrors(exErrs)
	ex = append(slices.Clip(ex), stored...)
	in := gate.Input{Repository: repo, Digest: digest}
	if scanErr != nil {
		return gate.ScanFailed("reading the stored scan: "+scanErr.Error(), now), 0
	}
	if sc == nil {
		return gate.Evaluate(pol, nil, ex, in, now), pol.GraceWindow
	}
	in.SourceRef, in.ScannedAt = sc.Source, sc.ScannedAt
	switch {
	case sc.Error != "":
		return gate.ScanFailed(sc.Error, now), 0
	case sc.ScannedAt.IsZero() || len(sc.Reports) == 0:
		return gate.Evaluate(pol, nil, ex, in, now), pol.GraceWindow
	}
	var parts []gate.Verdict
	labels := reportLabels(sc.Reports)
	for i, pr := range sc.Reports {
		v := gate.Evaluate(pol, pr.Report, ex, in, now)
		if len(sc.Reports) > 1 {
			for j := range v.Reasons {
				v.Reasons[j].Message = labels[i] + ": " + v.Reasons[j].Message
			}
		}
		parts = append(parts, v)
	}
	return combine(parts, now), pol.GraceWindow
}

// reportLabels names each report of an index's scan in reasons: by its
// platform, and also by its digest when the platform does not tell it
// apart (none given, given twice as with a nested index, unknown/unknown).
func reportLabels(reports []store.PlatformReport) []string {
	seen := map[string]int{}
	for _, pr := range reports {
		seen[pr.Platform]++
	}
	out := make([]string, len(reports))
	for i, pr := range reports {
		switch {
		case pr.Platform == "":
			out[i] = pr.Digest
		case seen[pr.Platform] > 1 || strings.HasPrefix(pr.Platform, "unknown/"):
			out[i] = pr.Platform + " " + pr.Digest
		default:
			out[i] = pr.Platform
		}
	}
	return out
}

// severity orders verdict states for combining an index's platforms:
// the worst wins.
var stateOrder = map[gate.State]int{gate.StatePass: 0, gate.StateExempt: 1, gate.StatePending: 2, gate.StateFail: 3}

// combine merges the verdicts of an index's images into one: the worst
// state, all reasons, the union of applied and expired exceptions.
func combine(parts []gate.Verdict, now time.Time) gate.Verdict {
	if len(parts) == 1 {
		return parts[0]
	}
	out := gate.Verdict{State: gate.StatePass, At: now}
	for _, p := range parts {
		if stateOrder[p.State] > stateOrder[out.State] {
			out.State = p.State
		}
		out.Reasons = append(out.Reasons, p.Reasons...)
		out.Applied = append(out.Applied, p.Applied...)
		out.ExpiredExceptions = append(out.ExpiredExceptions, p.ExpiredExceptions...)
	}
	slices.SortFunc(out.Reasons, func(a, b gate.Reason) int {
		return cmp.Or(strings.Compare(a.Rule, b.Rule), strings.Compare(a.Message, b.Message))
	})
	slices.Sort(out.Applied)
	out.Applied = slices.Compact(out.Applied)
	slices.Sort(out.ExpiredExceptions)
	out.ExpiredExceptions = slices.Compact(out.ExpiredExceptions)
	return out
}

// record stores next through the stability rules and audits and
// announces a change of the effective verdict.
// prev is the stored verdict (nil when there is none), read by the caller
// under the decision lock, so it is the one recordVerdict replaces and a
// change is audited once.
func (k *Keeper) record(ctx context.Context, repo, digest string, prev *gate.Verdict, next gate.Verdict, grace time.Duration) (gate.Verdict, error) {
	eff, flip, err := recordVerdict(ctx, k.store, digest, repo, next, k.now(), grace)
	if err != nil {
		return gate.Verdict{}, fmt.Errorf("record verdict of %s: %w", digest, err)
	}
	if prev != nil && !verdictChanged(*prev, eff) {
		return eff, nil
	}
	from := ""
	if prev != nil {
		from = string(prev.State)
	}
	detail := map[string]any{"state": eff.State, "previous": from, "reasons": reasonSummary(eff.Reasons)}
	if flip != nil {
		detail["pendingFlip"] = flip
	}
	if len(eff.Applied) > 0 {
		detail["exceptions"] = eff.Applied
	}
	if len(eff.ExpiredExceptions) > 0 {
		detail["expiredExceptions"] = eff.ExpiredExceptions
	}
	k.auditEntry(ctx, audit.Entry{Actor: ActorGate, Action: audit.ActionVerdict, Repository: repo, Digest: digest, Outcome: audit.OutcomeOK}, detail)
	k.publish(events.Event{Type: events.TypeVerdict, Subject: repo + "@" + digest, Data: map[string]any{
		"repository": repo, "digest": digest, "state": eff.State, "previous": from, "verdict": eff}})
	k.metrics.VerdictChanged(string(eff.State))
	k.log.Info("verdict", "repository", repo, "digest", digest, "state", eff.State, "previous", from)
	return eff, nil
}

// verdictChanged reports whether the effective verdict changed in a way
// worth an audit entry: state, reasons, exceptions or a pending flip.
func verdictChanged(a, b gate.Verdict) bool {
	if a.State != b.State || (a.PendingFlip == nil) != (b.PendingFlip == nil) {
		return true
	}
	return !slices.Equal(reasonSummary(a.Reasons), reasonSummary(b.Reasons)) ||
		!slices.Equal(a.Applied, b.Applied) || !slices.Equal(a.ExpiredExceptions, b.ExpiredExceptions)
}

func reasonSummary(rs []gate.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Rule + ": " + r.Message
	}
	return out
}

// policyHashKey is the setting that keeps the hash of the policy last
// seen, across restarts.
const policyHashKey = "gate.policy.sha256"

// notePolicy audits a change of the policy text: one seen by this process
// for the first time is compared with the one recorded before, so a
// restart with the same policy is not a change.
func (k *Keeper) notePolicy(ctx context.Context, hash string, perr error) {
	k.mu.Lock()
	if k.policySeen && hash == k.policyHash {
		k.mu.Unlock()
		return
	}
	first := !k.policySeen
	k.policyHash, k.policySeen = hash, true
	k.mu.Unlock()
	// The hash last recorded is in the store, shared by every replica: of
	// the replicas that see a change, the one that swaps the recorded hash
	// audits it. A policy that does not load is audited by each process
	// at its first sight of it.
	prev, err := k.store.Setting(ctx, policyHashKey)
	if err != nil {
		k.log.Warn("reading the last policy hash", "err", err)
	}
	switch {
	case err == nil && prev == hash && (perr == nil || !first):
		return // recorded already: a restart, or another replica
	case err == nil && prev != hash:
		swapped, err := k.store.SwapSetting(ctx, policyHashKey, prev, hash)
		if err != nil {
			k.log.Warn("recording the policy hash", "err", err)
		} else if !swapped {
			return // another replica recorded the change first
		}
	}
	detail := map[string]any{"path": k.policy.Path(), "sha256": hash, "previous": prev}
	outcome := audit.OutcomeOK
	if perr != nil {
		detail["error"] = perr.Error()
		outcome = audit.OutcomeError
		k.log.Error("the policy does not load: every verdict fails until it is fixed", "err", perr)
	}
	k.auditEntry(ctx, audit.Entry{Actor: ActorGate, Action: audit.ActionPolicyChange, Reference: k.policy.Path(), Outcome: outcome}, detail)
}

func (k *Keeper) noteExceptionErrors(errs []error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, err := range errs {
		if !k.exErrs[err.Error()] {
			k.exErrs[err.Error()] = true
			k.log.Error("an exceptions file is left out", "err", err)
		}
	}
}

// auditEntry records e with detail; a failure is logged (the action it
// records has happened).
func (k *Keeper) auditEntry(ctx context.Context, e audit.Entry, detail any) {
	if detail != nil {
		d, err := audit.Detail(detail)
		if err != nil {
			k.log.Error("audit: encoding detail", "action", e.Action, "err", err)
		}
		e.Detail = d
	}
	if _, err := k.audits.Record(context.WithoutCancel(ctx), e); err != nil {
		k.log.Error("audit: recording failed", "action", e.Action, "digest", e.Digest, "err", err)
	}
}

func (k *Keeper) publish(e events.Event) {
	if k.events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = k.now()
	}
	if err := k.events.Publish(e); err != nil {
		k.log.Warn("event not published", "type", e.Type, "err", err)
	}
}
