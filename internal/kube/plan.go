package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

// PlanRequest asks where the images of a repository should move.
type PlanRequest struct {
	// Repository is the repository in live/ ("nginx" or "live/nginx").
	Repository string `json:"repository"`
	// To is the tag to move to; empty means the newest passing patch tag
	// of each image's original tag.
	To string `json:"to,omitempty"`
	// Images are the references workloads run, as written in their pod
	// templates; those that are not the repository's are left out.
	Images []string `json:"images"`
}

// maxPlanImages bounds a plan request.
const maxPlanImages = 10000

// ImagePlan is the move of one image reference.
type ImagePlan struct {
	Image string `json:"image"`
	// FromDigest is the digest the image resolves to now ("" when its tag
	// is gone).
	FromDigest string `json:"fromDigest,omitempty"`
	// Original is the original tag the image's tag was patched from.
	Original string `json:"original,omitempty"`
	// ToTag, ToDigest and ToImage say where it moves: ToImage is the
	// reference by digest workloads get.
	ToTag    string `json:"toTag,omitempty"`
	ToDigest string `json:"toDigest,omitempty"`
	ToImage  string `json:"toImage,omitempty"`
	// Reason says why the image does not move (ToImage empty).
	Reason string `json:"reason,omitempty"`
}

// Moves reports whether the image moves.
func (p ImagePlan) Moves() bool { return p.ToImage != "" }

// Plan is the moves of the images of one repository.
type Plan struct {
	Repository string      `json:"repository"`
	Images     []ImagePlan `json:"images"`
}

// Planner decides where images move, from drydock's registry and
// verdicts, in process. It is the one place the target of a rollout is
// chosen; the CLI asks it through the JSON API.
type Planner struct {
	hosts    map[string]bool
	reg      Registry
	verdicts Verdicts
}

// NewPlanner returns a Planner for images under hosts.
func NewPlanner(hosts []string, reg Registry, verdicts Verdicts) (*Planner, error) {
	if reg == nil || verdicts == nil {
		return nil, errors.New("kube planner: registry and verdicts are required")
	}
	p := &Planner{hosts: map[string]bool{}, reg: reg, verdicts: verdicts}
	for _, h := range hosts {
		n, err := NormalizeHost(h)
		if err != nil {
			return nil, fmt.Errorf("kube planner: %w", err)
		}
		p.hosts[n] = true
	}
	if len(p.hosts) == 0 {
		return nil, fmt.Errorf("kube planner: %w: no registry host (kube.registry)", ErrNotConfigured)
	}
	return p, nil
}

// ErrInvalidPlan is wrapped by Plan's errors about the request.
var ErrInvalidPlan = errors.New("invalid rollout request")

// LiveRepository returns the live/ repository a user names: "nginx" and
// "live/nginx" are both live/nginx.
func LiveRepository(repo string) (string, error) {
	repo = strings.TrimSpace(repo)
	if !imgref.IsLive(repo) {
		repo = imgref.Live + "/" + repo
	}
	for c := range strings.SplitSeq(repo, "/") {
		if !imgref.ValidComponent(c) {
			return "", fmt.Errorf("%w: repository %q: want NAME or live/NAME", ErrInvalidPlan, repo)
		}
	}
	if strings.Count(repo, "/") < 1 || len(repo) > 255 {
		return "", fmt.Errorf("%w: repository %q: want NAME or live/NAME", ErrInvalidPlan, repo)
	}
	return repo, nil
}

// Plan decides, for each image of req.Repository among req.Images, the
// tag and digest it moves to: req.To, or the newest patch tag of its
// original tag whose verdict passes now. An image already there, or with
// no passing patch tag, stays (with the reason).
func (p *Planner) Plan(ctx context.Context, req PlanRequest) (*Plan, error) {
	repo, err := LiveRepository(req.Repository)
	if err != nil {
		return nil, err
	}
	if len(req.Images) > maxPlanImages {
		return nil, fmt.Errorf("%w: %d images, at most %d", ErrInvalidPlan, len(req.Images), maxPlanImages)
	}
	tags, err := p.reg.Tags(ctx, repo)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s is not in this drydock", ErrInvalidPlan, repo)
	}
	if err != nil {
		return nil, err
	}
	out := &Plan{Repository: repo, Images: []ImagePlan{}}
	var to *target
	if req.To != "" {
		t, reason, err := p.tagTarget(ctx, repo, req.To)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			return nil, fmt.Errorf("%w: --to %s: %s", ErrInvalidPlan, req.To, reason)
		}
		to = t
	}
	seen := map[string]bool{}
	images := slices.Clone(req.Images)
	slices.Sort(images)
	for _, image := range images {
		if seen[image] {
			continue
		}
		seen[image] = true
		ref, err := ParseImage(image)
		if err != nil || !p.hosts[ref.Host] || ref.Repository != repo {
			continue
		}
		ip, err := p.planImage(ctx, repo, ref, tags, to)
		if err != nil {
			return nil, err
		}
		ip.Image = image
		out.Images = append(out.Images, ip)
	}
	return out, nil
}

// target is a tag to move to and its digest.
type target struct{ tag, digest string }

// tagTarget resolves a tag of repo and checks its verdict now: the reason
// is why it cannot be a target ("" when it can).
func (p *Planner) tagTarget(ctx context.Context, repo, tag string) (*target, string, error) {
	desc, err := p.reg.Resolve(ctx, repo, tag)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Sprintf("%s:%s is not in this drydock", repo, tag), nil
	}
	if err != nil {
		return nil, "", err
	}
	d := desc.Digest.String()
	v, err := p.verdicts.Reevaluate(ctx, repo, d)
	if err != nil {
		return nil, "", fmt.Errorf("verdict of %s:%s: %w", repo, tag, err)
	}
	if !v.Promotable() {
		return nil, fmt.Sprintf("%s:%s (%s) has verdict %s now", repo, tag, d, v.State), nil
	}
	return &target{tag: tag, digest: d}, "", nil
}

func (p *Planner) planImage(ctx context.Context, repo string, ref ImageRef, tags []string, to *target) (ImagePlan, error) {
	var ip ImagePlan
	if desc, err := p.reg.Resolve(ctx, repo, ref.Reference()); err == nil {
		ip.FromDigest = desc.Digest.String()
	} else if !errors.Is(err, registry.ErrNotFound) {
		return ip, err
	}
	// The original tag: the image's own tag (a digest-pinned image's
	// tags are looked up by its digest).
	switch {
	case ref.Digest == "":
		ip.Original = OriginalTag(ref.Tag)
	case ip.FromDigest != "":
		for _, t := range tags {
			if d, err := p.reg.Resolve(ctx, repo, t); err == nil && d.Digest.String() == ip.FromDigest {
				ip.Original = OriginalTag(t)
				if ip.Original == t {
					break // an original tag beats a patch tag of the same digest
				}
			}
		}
	}
	if to == nil {
		if ip.Original == "" {
			ip.Reason = "no tag of " + repo + " names this digest: give the tag to move to"
			return ip, nil
		}
		var reasons []string
		for _, pt := range PatchTagsOf(ip.Original, tags) {
			t, reason, err := p.tagTarget(ctx, repo, pt.Tag)
			if err != nil {
				return ip, err
			}
			if reason != "" {
				reasons = append(reasons, reason)
				continue
			}
			to = t
			break
		}
		if to == nil {
			ip.Reason = "no patch tag of " + ip.Original + " passes the gate"
			if len(reasons) > 0 {
				ip.Reason += ": " + strings.Join(reasons, "; ")
			}
			return ip, nil
		}
	}
	ip.ToTag, ip.ToDigest = to.tag, to.digest
	if ip.FromDigest == to.digest {
		ip.Reason = fmt.Sprintf("already at %s (%s)", to.tag, to.digest)
		return ip, nil
	}
	ip.ToImage = ref.Pinned(to.digest)
	return ip, nil
}
