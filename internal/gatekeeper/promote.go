package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
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
// the blobs (nothing is uploaded again) and brings the referrers along.
// A refusal is a *RefusedError; both outcomes are audited and announced.
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
	if err := k.store.MarkPromoted(ctx, d, k.now()); err != nil {
		// The verdict changed between the decision and the mark.
		if im, ierr := k.store.Image(ctx, d); ierr == nil && !im.Verdict.Promotable() {
			return nil, k.refuse(ctx, entry, req.Source, target, d, im.Verdict)
		}
		return nil, fmt.Errorf("promote %s: %w", req.Source, err)
	}
	var tags []string
	if dstTag != "" {
		tags = []string{dstTag}
	}
	res, err := k.reg.Copy(ctx, srcRepo, dstRepo, digest.Digest(d), registry.CopyOptions{Tags: tags})
	if err != nil {
		entry.Outcome = audit.OutcomeError
		k.metrics.Promotion(audit.OutcomeError)
		k.auditEntry(ctx, entry, map[string]any{"source": req.Source, "target": target, "error": err.Error()})
		return nil, fmt.Errorf("promote %s -> %s: %w", req.Source, target, err)
	}
	entry.Outcome = audit.OutcomeOK
	k.metrics.Promotion(audit.OutcomeOK)
	k.auditEntry(ctx, entry, map[string]any{"source": req.Source, "target": target, "state": v.State,
		"exceptions": v.Applied, "manifests": res.Manifests, "blobsLinked": res.BlobsLinked, "referrers": len(res.Referrers)})
	k.publish(events.Event{Type: events.TypePromotion, Subject: dstRepo + "@" + d, Data: map[string]any{
		"source": req.Source, "target": target, "digest": d, "state": v.State, "actor": req.Actor}})
	k.log.Info("promoted", "source", req.Source, "target", target, "digest", d, "actor", req.Actor, "referrers", len(res.Referrers))
	return &Promotion{Source: req.Source, Target: target, Digest: d, Verdict: v, Copy: res}, nil
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
