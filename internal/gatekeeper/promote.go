package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/store"
)

// PromoteRequest asks for a promotion.
type PromoteRequest struct {
	// Source is quarantine/NAME:TAG or quarantine/NAME@DIGEST.
	Source string `json:"source"`
	// Target is live/NAME[:TAG]; empty means live/NAME with the source's
	// tag.
	Target string `json:"target,omitempty"`
	// Actor is who asks, for the audit log.
	Actor string `json:"-"`
}

// Promotion is a completed promotion.
type Promotion struct {
	Source  string              `json:"source"`
	Target  string              `json:"target"`
	Digest  string              `json:"digest"`
	Verdict gate.Verdict        `json:"verdict"`
	Copy    registry.CopyResult `json:"copy"`
	// Followed lists the followers (cosign's tag scheme among them)
	// copied after the promotion's own copy.
	Followed []Followed `json:"followed,omitempty"`
	// Signed lists what the gate's key attached to the live/ digest (its
	// signatures and the promotion attestation); SignError says why that
	// failed (the promotion itself stands).
	Signed    *attest.Written `json:"signed,omitempty"`
	SignError string          `json:"signError,omitempty"`
}

// RefusedError is a promotion the gate refused: the digest's verdict is
// not pass or exempt. Verdict carries the reasons.
type RefusedError struct {
	Source  string
	Digest  string
	Verdict gate.Verdict
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "promotion of %s (%s) refused: verdict is %s", e.Source, e.Digest, e.Verdict.State)
	for _, r := range e.Verdict.Reasons {
		fmt.Fprintf(&b, "; %s: %s", r.Rule, r.Message)
		if n := len(r.Findings); n > 0 {
			shown := r.Findings[:min(n, 5)]
			fmt.Fprintf(&b, " (%s", strings.Join(shown, ", "))
			if n > 5 {
				fmt.Fprintf(&b, ", and %d more", n-5)
			}
			b.WriteString(")")
		}
	}
	return b.String()
}

// ErrInvalidRequest wraps requests that name the wrong namespaces or are malformed.
var ErrInvalidRequest = errors.New("invalid request")

// PlanPromotion checks a request's names and returns the source
// repository and reference and the target repository and tag.
func PlanPromotion(req PromoteRequest) (srcRepo, srcRef, dstRepo, dstTag string, err error) {
	src, err := ParseRef(req.Source)
	if err != nil {
		return "", "", "", "", err
	}
	if !imgref.IsQuarantine(src.Repository) {
		return "", "", "", "", fmt.Errorf("%w: the source must be in quarantine/, not %s", ErrInvalidRequest, src.Repository)
	}
	byDigest := src.Digest != ""
	if req.Target == "" {
		dstRepo = imgref.Rebase(src.Repository, imgref.Live)
		if !byDigest {
			dstTag = src.Ref()
		}
	} else {
		t := strings.TrimSpace(req.Target)
		switch {
		case strings.Contains(t, "@"):
			return "", "", "", "", fmt.Errorf("%w: the target %q names a digest; promotion keeps the source's digest, give live/NAME[:TAG]", ErrInvalidRequest, t)
		case strings.HasSuffix(t, ":"):
			return "", "", "", "", fmt.Errorf("%w: the target %q has an empty tag", ErrInvalidRequest, t)
		}
		dst, perr := imgref.Parse(t)
		if perr != nil {
			return "", "", "", "", fmt.Errorf("%w: the target must be live/NAME[:TAG]: %w", ErrInvalidRequest, perr)
		}
		dstRepo, dstTag = dst.Repository, dst.Tag
		if dstTag == "" && !byDigest {
			dstTag = src.Ref()
		}
	}
	if !imgref.IsLive(dstRepo) || dstRepo == imgref.Live {
		return "", "", "", "", fmt.Errorf("%w: the target must be live/NAME, not %q", ErrInvalidRequest, dstRepo)
	}
	return src.Repository, src.Ref(), dstRepo, dstTag, nil
}

// Promote copies a digest from quarantine/ to live/ when, decided again
// now, its verdict is pass or exempt. The copy keeps the digest, links
// the blobs (nothing is uploaded again) and copies exactly what was
// judged: the digest and every manifest reachable from it, each an index,
// an image its scan judged or a non-runnable artifact. Referrers follow
// by the referrer rule (copyPlan.referrer); the others stay behind and
// are audited. A refusal is a *RefusedError; both outcomes are audited
// and announced.
func (k *Keeper) Promote(ctx context.Context, req PromoteRequest) (*Promotion, error) {
	srcRepo, srcRef, dstRepo, dstTag, err := PlanPromotion(req)
	if err != nil {
		return nil, err
	}
	if req.Actor == "" {
		req.Actor = "unknown"
	}
	desc, _, err := k.reg.Manifest(ctx, srcRepo, srcRef)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", req.Source, ErrUnknownImage)
		}
		return nil, err
	}
	d := desc.Digest.String()
	target := dstRepo
	if dstTag != "" {
		target += ":" + dstTag
	}
	entry := audit.Entry{Actor: req.Actor, Action: audit.ActionPromotion, Repository: dstRepo, Reference: dstTag, Digest: d}
	v, err := k.Reevaluate(ctx, srcRepo, d)
	if err != nil {
		return nil, err
	}
	if !v.Promotable() {
		return nil, k.refuse(ctx, entry, req.Source, target, d, v)
	}
	if r, err := k.checkSignedBy(ctx, srcRepo, desc.Digest); err != nil {
		return nil, err
	} else if r != nil {
		rv := v
		rv.Reasons = append(slices.Clone(v.Reasons), *r)
		return nil, k.refuse(ctx, entry, req.Source, target, d, rv)
	}
	var tags []string
	if dstTag != "" {
		tags = []string{dstTag}
	}
	cp := k.newCopyPlan(srcRepo, d)
	res, err := k.reg.Copy(WithGateWrite(ctx), srcRepo, dstRepo, digest.Digest(d), registry.CopyOptions{
		Tags: tags, Check: cp.check, Referrer: cp.referrer, BeforeWrite: cp.mark,
	})
	var unjudged *UnjudgedError
	var mark *markError
	switch {
	case errors.As(err, &mark) && mark.digest == d:
		// The verdict changed between the decision and the mark.
		if im, ierr := k.store.Image(ctx, d); ierr == nil && !im.Verdict.Promotable() {
			return nil, k.refuse(ctx, entry, req.Source, target, d, im.Verdict)
		}
		return nil, fmt.Errorf("promote %s: %w", req.Source, err)
	case errors.As(err, &unjudged):
		// A verdict from a scan that did not judge everything the digest
		// holds (a scan from before the gate walked nested indexes):
		// refused, and scanned again.
		why := unjudged.Error() + ": the stored scan did not judge it"
		if id, qerr := k.Enqueue(ctx, srcRepo, "", unjudged.Root.String(), "rescan"); qerr == nil {
			why += fmt.Sprintf("; a new scan is queued (job %d)", id)
		}
		return nil, k.refuse(ctx, entry, req.Source, target, d, gate.Verdict{State: gate.StatePending, At: k.now(),
			Reasons: []gate.Reason{{Rule: gate.RuleScan, Message: why}}})
	case err != nil:
		entry.Outcome = audit.OutcomeError
		k.metrics.Promotion(audit.OutcomeError)
		k.auditEntry(ctx, entry, map[string]any{"source": req.Source, "target": target, "error": err.Error()})
		return nil, fmt.Errorf("promote %s -> %s: %w", req.Source, target, err)
	}
	// Followers that the copy could not see (cosign's tag scheme, and
	// referrers pushed while it ran: arrivals after the mark copy
	// themselves) follow now.
	var followed []Followed
	if subjects, ferr := k.followersOf(ctx, dstRepo, digest.Digest(d)); ferr != nil {
		k.log.Warn("promotion: listing what was copied", "target", target, "err", ferr)
	} else {
		fl, lb, ferr := k.syncFollowers(ctx, srcRepo, dstRepo, subjects)
		if ferr != nil {
			k.log.Warn("promotion: copying followers", "target", target, "err", ferr)
		}
		followed = fl
		for _, l := range lb {
			if !slices.ContainsFunc(res.LeftBehind, func(o registry.LeftBehind) bool { return o.Referrer.Digest == l.Referrer.Digest }) {
				res.LeftBehind = append(res.LeftBehind, l)
			}
		}
	}
	signed, serr := k.signPromotion(ctx, req, dstRepo, target, digest.Digest(d), v)
	if serr != nil {
		k.log.Error("promotion: signing the live/ digest failed", "target", target, "digest", d, "err", serr)
	}
	entry.Outcome = audit.OutcomeOK
	k.metrics.Promotion(audit.OutcomeOK)
	k.auditEntry(ctx, entry, map[string]any{"source": req.Source, "target": target, "state": v.State,
		"exceptions": v.Applied, "manifests": res.Manifests, "blobsLinked": res.BlobsLinked, "referrers": len(res.Referrers),
		"referrersLeftBehind": len(res.LeftBehind), "followed": len(followed), "signed": signed != nil})
	for _, lb := range res.LeftBehind {
		k.leftBehind(ctx, req, dstRepo, target, lb)
	}
	k.publish(events.Event{Type: events.TypePromotion, Subject: dstRepo + "@" + d, Data: map[string]any{
		"source": req.Source, "target": target, "digest": d, "state": v.State, "actor": req.Actor}})
	k.log.Info("promoted", "source", req.Source, "target", target, "digest", d, "actor", req.Actor,
		"referrers", len(res.Referrers), "leftBehind", len(res.LeftBehind))
	p := &Promotion{Source: req.Source, Target: target, Digest: d, Verdict: v, Copy: res, Followed: followed, Signed: signed}
	if serr != nil {
		p.SignError = serr.Error()
	}
	return p, nil
}

// copyPlan decides, for one promotion, what the copy may take: exactly
// what was judged. It lives for one Promote call.
type copyPlan struct {
	k       *Keeper
	srcRepo string
	digest  string
	// judged holds, per root (the promoted digest, or a referrer that
	// follows on its own verdict), the image digests its stored scan
	// judged.
	judged map[digest.Digest]map[string]bool
	// byVerdict are the referrers that follow because they passed the
	// gate themselves; they are marked promoted with the digest.
	byVerdict []string
}

func (k *Keeper) newCopyPlan(srcRepo, d string) *copyPlan {
	return &copyPlan{k: k, srcRepo: srcRepo, digest: d, judged: map[digest.Digest]map[string]bool{}}
}

// check lets into the copy a manifest of root's content only if root's
// verdict judged it: an index (judged by its content), a non-runnable
// artifact, or an image that root's stored scan scanned.
func (p *copyPlan) check(ctx context.Context, root digest.Digest, n imgref.Node) error {
	switch n.Manifest.Kind() {
	case imgref.KindIndex, imgref.KindArtifact:
		return nil
	case imgref.KindImage:
		set, ok := p.judged[root]
		if !ok {
			set = map[string]bool{}
			sc, err := p.k.store.Scan(ctx, root.String())
			switch {
			case err == nil && sc.Error == "":
				for _, pr := range sc.Reports {
					set[pr.Digest] = true
				}
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
			p.judged[root] = set
		}
		if set[n.Digest().String()] {
			return nil
		}
		return &UnjudgedError{Root: root, Manifest: n.Digest(), Parent: n.Parent, Platform: n.Platform(), Why: "is an image"}
	}
	return &UnjudgedError{Root: root, Manifest: n.Digest(), Parent: n.Parent, Platform: n.Platform(),
		Why: fmt.Sprintf("is neither an image nor a non-runnable artifact (media type %q)", n.Manifest.MediaType)}
}

// referrer is the referrer rule (#12, hole 3; the same rule lets
// signatures follow a digest): a referrer follows its subject into
// live/ only if it is a non-runnable artifact (imgref.Manifest.NonRunnable)
// or if its own verdict, decided again now, is pass or exempt. Anything
// else is left behind, and audited by Promote.
func (p *copyPlan) referrer(ctx context.Context, _ digest.Digest, n imgref.Node) (registry.Follow, error) {
	kind := n.Manifest.Kind()
	switch kind {
	case imgref.KindArtifact:
		if ok, why := p.k.followAllowed(n.Manifest.Class()); !ok {
			return registry.Follow{Reason: why}, nil
		}
		return registry.Follow{Copy: true}, nil
	case imgref.KindImage, imgref.KindIndex:
		v, err := p.k.Reevaluate(ctx, p.srcRepo, n.Digest().String())
		if err != nil {
			return registry.Follow{}, err
		}
		if v.Promotable() {
			p.byVerdict = append(p.byVerdict, n.Digest().String())
			return registry.Follow{Copy: true}, nil
		}
		why := fmt.Sprintf("it is an %s, not a non-runnable artifact, and its own verdict is %s", kind, v.State)
		if rs := reasonSummary(v.Reasons); len(rs) > 0 {
			why += ": " + strings.Join(rs, "; ")
		}
		return registry.Follow{Reason: why}, nil
	}
	return registry.Follow{Reason: fmt.Sprintf("its media type %q is neither an image nor a non-runnable artifact", n.Manifest.MediaType)}, nil
}

// markError is a digest that could not be marked promoted.
type markError struct {
	digest string
	err    error
}

func (e *markError) Error() string { return fmt.Sprintf("marking %s promoted: %v", e.digest, e.err) }
func (e *markError) Unwrap() error { return e.err }

// mark records the promotion of the digest, then of the referrers that
// follow on their own verdict, just before the copy writes: each mark
// fails unless the stored verdict is still promotable.
func (p *copyPlan) mark(ctx context.Context, _ []ocispec.Descriptor) error {
	for _, d := range append([]string{p.digest}, p.byVerdict...) {
		if err := p.k.store.MarkPromoted(ctx, d, p.k.now()); err != nil {
			return &markError{digest: d, err: err}
		}
	}
	return nil
}

// leftBehind audits and announces a referrer a promotion did not copy.
func (k *Keeper) leftBehind(ctx context.Context, req PromoteRequest, dstRepo, target string, lb registry.LeftBehind) {
	d := lb.Referrer.Digest.String()
	k.auditEntry(ctx, audit.Entry{Actor: req.Actor, Action: audit.ActionPromotion, Repository: dstRepo, Digest: d,
		Outcome: audit.OutcomeRefused}, map[string]any{"referrerOf": lb.Subject.String(), "source": req.Source, "target": target,
		"artifactType": lb.Referrer.ArtifactType, "reason": "referrer left behind: " + lb.Reason})
	k.publish(events.Event{Type: events.TypeBypassRefused, Subject: dstRepo + "@" + d, Data: map[string]any{
		"kind": "referrer", "source": req.Source, "target": target, "digest": d, "subject": lb.Subject.String(),
		"actor": req.Actor, "reason": lb.Reason}})
	k.log.Warn("referrer left behind", "source", req.Source, "target", target, "referrer", d, "subject", lb.Subject, "reason", lb.Reason)
}

func (k *Keeper) refuse(ctx context.Context, entry audit.Entry, source, target, d string, v gate.Verdict) error {
	entry.Outcome = audit.OutcomeRefused
	k.metrics.Promotion(audit.OutcomeRefused)
	k.auditEntry(ctx, entry, map[string]any{"source": source, "target": target, "state": v.State, "reasons": reasonSummary(v.Reasons)})
	k.publish(events.Event{Type: events.TypeBypassRefused, Subject: entry.Repository + "@" + d, Data: map[string]any{
		"kind": "promotion", "source": source, "target": target, "digest": d, "state": v.State, "actor": entry.Actor, "reasons": v.Reasons}})
	k.log.Warn("promotion refused", "source", source, "target", target, "digest", d, "state", v.State, "actor", entry.Actor)
	return &RefusedError{Source: source, Digest: d, Verdict: v}
}
