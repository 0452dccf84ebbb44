package gatekeeper

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// ReportArtifactType is the artifact type of the scan reports the gate
// attaches to every scanned image as referrers (drydock's JSON report).
const ReportArtifactType = "application/vnd.drydock.scan.report.v1+json"

// ScanArgs is the scan job's input.
type ScanArgs struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	Digest     string `json:"digest"`
	// Reason is why the scan was queued: arrival, rescan, db-update.
	Reason string `json:"reason,omitempty"`
}

// Kind implements jobs.JobArgs.
func (ScanArgs) Kind() string { return "gate.scan" }

// errNoDB marks a scan that cannot run for want of a vulnerability
// database; retrying does not help until one is installed.
var errNoDB = errors.New("no vulnerability database")

// maxCutOff is how many attempts at scanning one digest may end with the
// server dying (killed, out of memory) before the digest fails for good:
// an image that kills the scanner must not be run again at every start.
const maxCutOff = 2

// CutOffError is a scan whose earlier attempts all ended with the server
// dying: it is not tried again.
type CutOffError struct{ Attempts int }

func (e *CutOffError) Error() string {
	return fmt.Sprintf("the scan was cut off %d times (the server died or was killed while scanning this image; it may exhaust memory): "+
		"not tried again; `drydock rescan` runs it once more", e.Attempts)
}

// Permanent reports that the gate does not retry it by itself.
func (e *CutOffError) Permanent() bool { return true }

// cutOff refuses to start an attempt after maxCutOff attempts of the job
// died with their process, or when it is the job's last attempt and one
// did: had the last attempt died too, the job would end with nothing
// recorded and be queued again at the next start.
func cutOff(info jobs.Info) error {
	last := info.MaxAttempts > 0 && info.Attempt >= info.MaxAttempts
	if info.Rescued >= maxCutOff || (info.Rescued > 0 && last) {
		return &CutOffError{Attempts: info.Rescued}
	}
	return nil
}

// runScan is the scan job: scan the digest, store the reports, decide and
// record the verdict, attach the report, auto-promote. It is idempotent:
// everything it writes is keyed by the digest.
func (k *Keeper) runScan(ctx context.Context, a ScanArgs) error {
	info, _ := jobs.JobInfo(ctx)
	log := k.log.With("repository", a.Repository, "digest", a.Digest, "job", info.ID, "attempt", info.Attempt)
	repo := a.Repository
	desc, body, err := k.reg.Manifest(ctx, repo, a.Digest)
	if errors.Is(err, registry.ErrNotFound) && imgref.IsQuarantine(repo) {
		// Deleted from quarantine/ after its promotion: the same digest
		// in live/ is what clusters run, and is rescanned there.
		repo = imgref.Rebase(repo, imgref.Live)
		desc, body, err = k.reg.Manifest(ctx, repo, a.Digest)
	}
	if errors.Is(err, registry.ErrNotFound) {
		log.Info("scan skipped: the manifest is gone")
		return nil
	}
	if err != nil {
		return err
	}
	if imgref.NonRunnableArtifact(desc.MediaType, body) {
		return nil // a signature, SBOM, report...: it follows its subject, see imgref.Manifest.NonRunnable
	}
	start := time.Now() // a measurement, not a decision: the real clock
	var reports []store.PlatformReport
	if err = cutOff(info); err == nil {
		reports, err = k.scanManifest(ctx, repo, desc)
	}
	if err != nil {
		last := info.MaxAttempts > 0 && info.Attempt >= info.MaxAttempts
		perm := refusal.IsPermanent(err)
		if !errors.Is(err, errNoDB) && !perm && !last {
			log.Warn("scan failed, will retry", "err", err)
			return err
		}
		log.Error("scan failed", "err", err, "permanent", perm)
		k.metrics.ScanDone("error", 0)
		if perr := k.store.PutScan(ctx, store.Scan{Digest: a.Digest, Repository: a.Repository, Error: err.Error(), Permanent: perm}); perr != nil {
			return perr
		}
		k.auditEntry(ctx, audit.Entry{Actor: ActorGate, Action: audit.ActionScan, Repository: a.Repository, Reference: a.Tag,
			Digest: a.Digest, Outcome: audit.OutcomeError}, map[string]any{"error": err.Error(), "reason": a.Reason, "permanent": perm,
			"attempt": info.Attempt, "cutOff": info.Rescued})
		if _, rerr := k.Reevaluate(ctx, a.Repository, a.Digest); rerr != nil {
			return rerr
		}
		return jobs.Permanent(err)
	}
	// The report is attached before the scan is recorded: once a verdict
	// shows the scan, a promotion finds its report to copy along.
	for _, pr := range reports {
		if err := k.attachReport(WithGateWrite(ctx), repo, desc, pr.Report); err != nil {
			log.Warn("attaching the scan report failed", "err", err)
		}
	}
	now := k.now()
	if err := k.store.PutScan(ctx, store.Scan{Digest: a.Digest, Repository: a.Repository, ScannedAt: now, Reports: reports}); err != nil {
		return err
	}
	took := time.Since(start)
	k.metrics.ScanDone("ok", took)
	counts := map[string]int{}
	for _, pr := range reports {
		for sev, n := range pr.Report.Counts() {
			counts[string(sev)] += n
		}
	}
	k.auditEntry(ctx, audit.Entry{Actor: ActorGate, Action: audit.ActionScan, Repository: a.Repository, Reference: a.Tag,
		Digest: a.Digest, Outcome: audit.OutcomeOK}, map[string]any{"reason": a.Reason, "platforms": len(reports),
		"findings": counts, "seconds": took.Seconds()})
	v, err := k.Reevaluate(ctx, a.Repository, a.Digest)
	if err != nil {
		return err
	}
	log.Info("scanned", "state", v.State, "platforms", len(reports), "seconds", took.Seconds())
	return k.autoPromote(ctx, a, v)
}

// UnjudgedError is a manifest the gate cannot judge: reachable from the
// scanned digest (an index's child, at any depth), it is neither an
// image the gate scans nor a non-runnable artifact, or it is missing. It
// fails the digest, naming the manifest; it is permanent, and a refusal
// of Kind (refusal.KindOf).
type UnjudgedError struct {
	Root     digest.Digest // the scanned digest
	Manifest digest.Digest // the manifest that cannot be judged
	Parent   digest.Digest // the index that lists it
	Platform string
	Why      string
	// Kind is refusal.Unsupported, or refusal.Corrupt for a child the
	// index lists that is not there.
	Kind refusal.Kind
}

func (e *UnjudgedError) Error() string {
	where := ""
	if e.Parent != "" && e.Parent != e.Root {
		where = " in nested index " + e.Parent.String()
	}
	plat := ""
	if e.Platform != "" {
		plat = " (platform " + e.Platform + ")"
	}
	return fmt.Sprintf("index %s: manifest %s%s%s %s", e.Root, e.Manifest, plat, where, e.Why)
}

// Permanent reports that scanning again cannot help.
func (e *UnjudgedError) Permanent() bool { return true }

// Unwrap returns the refusal, so that refusal.KindOf names its kind.
func (e *UnjudgedError) Unwrap() error {
	return &refusal.Error{Kind: cmp.Or(e.Kind, refusal.Unsupported), Reason: e.Error(), Digest: e.Manifest.String()}
}

// scanManifest judges a manifest and everything reachable from it: it
// scans the image, or every image reachable from an index (nested
// indexes and platforms such as unknown/unknown included); children that
// are non-runnable artifacts need no scan; anything else fails the whole
// digest (UnjudgedError).
func (k *Keeper) scanManifest(ctx context.Context, repo string, desc ocispec.Descriptor) ([]store.PlatformReport, error) {
	scanner, done, err := k.scanner()
	if err != nil {
		return nil, err
	}
	defer done()
	root := desc.Digest
	fetch := func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		_, body, err := k.reg.Manifest(ctx, repo, d.Digest.String())
		if errors.Is(err, registry.ErrNotFound) {
			return nil, &UnjudgedError{Root: root, Manifest: d.Digest, Why: "is missing from " + repo, Kind: refusal.Corrupt}
		}
		return body, err
	}
	var out []store.PlatformReport
	err = imgref.Walk(ctx, desc, fetch, func(n imgref.Node) error {
		switch n.Manifest.Kind() {
		case imgref.KindIndex, imgref.KindArtifact:
			return nil
		case imgref.KindImage:
			rep, err := k.scanImage(ctx, scanner, repo, n.Digest())
			if err != nil {
				if n.Depth > 0 {
					return fmt.Errorf("image %s (platform %q) of index %s: %w", n.Digest(), n.Platform(), root, err)
				}
				return err
			}
			out = append(out, store.PlatformReport{Platform: n.Platform(), Digest: n.Digest().String(), Report: rep})
			return nil
		}
		return &UnjudgedError{Root: root, Manifest: n.Digest(), Parent: n.Parent, Platform: n.Platform(),
			Why: fmt.Sprintf("is neither an image nor a non-runnable artifact (media type %q)", n.Manifest.MediaType)}
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, &UnjudgedError{Root: root, Manifest: root, Why: "holds no image to scan"}
	}
	return out, nil
}

// scanner opens the vulnerability database and returns the gate's
// scanner over it, and the function that closes it.
func (k *Keeper) scanner() (*scan.Scanner, func(), error) {
	if _, err := os.Stat(k.dbPath); err != nil {
		return nil, nil, fmt.Errorf("%w at %s: run `drydock db update` (or `drydock db pull`) on the server", errNoDB, k.dbPath)
	}
	db, err := vulndb.Open(k.dbPath)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the vulnerability database: %w", err)
	}
	opts := []scan.Option{scan.WithClock(k.now), scan.WithDBPath(k.dbPath)}
	if k.cache != nil {
		opts = append(opts, scan.WithInventoryCache(k.cache))
	}
	opts = append(opts, k.scanOpts...)
	scanner, err := scan.New(db, opts...)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return scanner, func() { db.Close() }, nil
}

// readImage reads the image d of repo, in process.
func (k *Keeper) readImage(ctx context.Context, repo string, d digest.Digest) (v1.Image, error) {
	at := repo + "@" + d.String()
	ref, err := name.NewDigest(registry.InternalHost+"/"+at, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("reference %s: %w", at, err)
	}
	img, err := remote.Image(ref, remote.WithTransport(k.reg.Transport()), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", at, err)
	}
	return img, nil
}

// scanImage scans the image d of repo, read in process.
func (k *Keeper) scanImage(ctx context.Context, scanner *scan.Scanner, repo string, d digest.Digest) (*scan.Report, error) {
	img, err := k.readImage(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	rep, err := scanner.Image(ctx, img)
	if err != nil {
		return nil, err
	}
	rep.Artifact.Name = repo + "@" + d.String()
	return rep, nil
}

// attachReport stores rep as an OCI artifact whose subject is the scanned
// manifest, so that the report travels with the image (promotion copies
// referrers along).
func (k *Keeper) attachReport(ctx context.Context, repo string, subject ocispec.Descriptor, rep *scan.Report) error {
	var buf bytes.Buffer
	if err := scan.WriteJSON(&buf, rep); err != nil {
		return err
	}
	layer, err := k.reg.PutBlob(ctx, repo, buf.Bytes())
	if err != nil {
		return err
	}
	layer.MediaType = ReportArtifactType
	empty := []byte("{}")
	cfg, err := k.reg.PutBlob(ctx, repo, empty)
	if err != nil {
		return err
	}
	cfg.MediaType = ocispec.MediaTypeEmptyJSON
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ReportArtifactType,
		Config:       cfg,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &subj,
		Annotations: map[string]string{
			ocispec.AnnotationCreated:         rep.ScannedAt.UTC().Format("2006-01-02T15:04:05Z"),
			"dev.drydock.scan.status":         string(rep.Status),
			"dev.drydock.scan.findings":       fmt.Sprint(len(rep.Findings)),
			"dev.drydock.scan.artifactDigest": rep.Artifact.Digest,
		},
	}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err = k.reg.PutManifest(ctx, repo, ocispec.MediaTypeImageManifest, body); err != nil {
		return err
	}
	return k.pruneReports(ctx, repo, subject.Digest)
}

// keepReports is how many scan reports are kept attached to an image: a
// rescan a day would otherwise grow the list without end.
const keepReports = 3

// pruneReports deletes all but the newest keepReports scan reports of
// subject in repo (their blobs go with garbage collection).
func (k *Keeper) pruneReports(ctx context.Context, repo string, subject digest.Digest) error {
	refs, err := k.reg.Referrers(ctx, repo, subject, ReportArtifactType)
	if err != nil || len(refs) <= keepReports {
		return err
	}
	slices.SortFunc(refs, func(a, b ocispec.Descriptor) int {
		return cmp.Or(strings.Compare(b.Annotations[ocispec.AnnotationCreated], a.Annotations[ocispec.AnnotationCreated]),
			strings.Compare(b.Digest.String(), a.Digest.String()))
	})
	var errs []error
	for _, old := range refs[keepReports:] {
		if err := k.reg.DeleteManifest(ctx, repo, old.Digest); err != nil && !errors.Is(err, registry.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// autoPromote promotes a passing digest when the policy says so, to
// live/NAME:TAG for the tag it arrived with (if the tag still points at it).
func (k *Keeper) autoPromote(ctx context.Context, a ScanArgs, v gate.Verdict) error {
	pol, _, err := k.policy.Get()
	if err != nil || pol == nil || !pol.AutoPromote || !v.Promotable() {
		return nil
	}
	src := a.Repository + "@" + a.Digest
	dst := imgref.Rebase(a.Repository, imgref.Live)
	if a.Tag != "" {
		if desc, _, err := k.reg.Manifest(ctx, a.Repository, a.Tag); err == nil && desc.Digest == digest.Digest(a.Digest) {
			dst += ":" + a.Tag
		}
	}
	_, err = k.Promote(ctx, PromoteRequest{Source: src, Target: dst, Actor: ActorGate + " (autoPromote)"})
	var refused *RefusedError
	if errors.As(err, &refused) {
		return nil // raced with a change of verdict; audited
	}
	return err
}
