package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

// Registry is what admission and rollouts read of drydock's registry, in
// process; *registry.Registry implements it.
type Registry interface {
	// Resolve resolves a tag or digest in repo to the stored manifest;
	// an unknown one is registry.ErrNotFound.
	Resolve(ctx context.Context, repo, ref string) (ocispec.Descriptor, error)
	// Tags lists the tags of repo, sorted.
	Tags(ctx context.Context, repo string) ([]string, error)
}

// Verdicts decides a digest's verdict at the current time;
// *gatekeeper.Keeper implements it.
type Verdicts interface {
	Reevaluate(ctx context.Context, repo, digest string) (gate.Verdict, error)
}

// Rules a container's image can break, as named in denials, warnings,
// metrics and the audit log.
const (
	// RuleReference: the image is not a reference a runtime can pull.
	RuleReference = "reference"
	// RuleRegistry: the image comes from another registry than this
	// drydock.
	RuleRegistry = "registry"
	// RuleNamespace: the image is in this drydock but not in live/.
	RuleNamespace = "live-namespace"
	// RuleNotFound: the repository, tag or digest is not in live/.
	RuleNotFound = "not-in-live"
	// RuleVerdict: the digest's verdict is not pass or exempt now.
	RuleVerdict = "verdict"
	// RulePromotion: the digest carries no valid promotion attestation
	// signed by drydock's key (copied into live/ storage by another
	// way than the gate's promotion, or its attestation removed).
	RulePromotion = "promotion-attestation"
)

// Container kinds.
const (
	KindContainer          = "container"
	KindInitContainer      = "initContainer"
	KindEphemeralContainer = "ephemeralContainer"
)

// Container is one container of a pod spec, as admission sees it.
type Container struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Image string `json:"image"`
	// Path is the JSON pointer of its image field in the reviewed object
	// (for the mutating webhook's patch).
	Path string `json:"-"`
}

// Label names the container for messages: `init container "setup"`.
func (c Container) Label() string {
	switch c.Kind {
	case KindInitContainer:
		return fmt.Sprintf("init container %q", c.Name)
	case KindEphemeralContainer:
		return fmt.Sprintf("ephemeral container %q", c.Name)
	}
	return fmt.Sprintf("container %q", c.Name)
}

// Violation is a container whose image breaks a rule.
type Violation struct {
	Container Container `json:"container"`
	Rule      string    `json:"rule"`
	Message   string    `json:"message"`
}

// String is the violation as a denial or warning shows it.
func (v Violation) String() string {
	return fmt.Sprintf("%s image %q: %s", v.Container.Label(), v.Container.Image, v.Message)
}

// Checked is the outcome for one container.
type Checked struct {
	Container Container
	// Ref is the parsed image (zero when it does not parse).
	Ref ImageRef
	// Digest is the manifest digest the image resolves to in live/ (set
	// when the image is this drydock's and found).
	Digest string
	// Violation is nil when the image may run.
	Violation *Violation
}

// AdmitterOptions configure an Admitter.
type AdmitterOptions struct {
	// Hosts are the registry hosts under which clusters pull from this
	// drydock (kube.registry); at least one.
	Hosts []string
	// Registry resolves tags and digests in live/; required.
	Registry Registry
	// Verdicts, when not nil, is asked for every digest: only pass and
	// exempt are admitted. Nil admits any digest found in live/.
	Verdicts Verdicts
	// VerdictTTL is how long a verdict is reused (default 500 ms);
	// negative disables the cache.
	VerdictTTL time.Duration
	// Now is the clock (default time.Now); verdicts are reused only
	// while it has moved less than VerdictTTL.
	Now func() time.Time
	// PromotionKey, when set, requires every digest to carry drydock's
	// promotion attestation signed by this key, about that digest, with
	// a pass or exempt verdict (attest.RequirePromotion). Attestations
	// reads it in process (drydock's registry: no network call); the
	// result is reused per digest for VerdictTTL, like verdicts.
	PromotionKey *attest.PublicKey
	Attestations attest.Reader
}

// Admitter decides whether the images of a pod spec may run. It is safe
// for concurrent use.
type Admitter struct {
	hosts    map[string]bool
	hostList []string
	reg      Registry
	cache    *decisionCache[gate.Verdict]
	promo    *decisionCache[promotionResult]
}

// promotionResult is the promotion check's outcome for one digest: why it
// fails ("" when the attestation is there and valid).
type promotionResult struct{ why string }

// liveNamespace is the namespace admitted images must be in.
const liveNamespace = imgref.Live

// NewAdmitter validates o and returns an Admitter.
func NewAdmitter(o AdmitterOptions) (*Admitter, error) {
	if o.Registry == nil {
		return nil, errors.New("kube admission: no registry")
	}
	if len(o.Hosts) == 0 {
		return nil, errors.New("kube admission: no registry host (kube.registry) to admit live/ images from")
	}
	a := &Admitter{hosts: map[string]bool{}, reg: o.Registry}
	for _, h := range o.Hosts {
		n, err := NormalizeHost(h)
		if err != nil {
			return nil, fmt.Errorf("kube admission: %w", err)
		}
		if !a.hosts[n] {
			a.hosts[n] = true
			a.hostList = append(a.hostList, n)
		}
	}
	slices.Sort(a.hostList)
	ttl := o.VerdictTTL
	if ttl == 0 {
		ttl = 500 * time.Millisecond
	}
	if o.Verdicts != nil {
		a.cache = newDecisionCache(o.Verdicts.Reevaluate, ttl, o.Now)
	}
	if o.PromotionKey != nil {
		if o.Attestations == nil {
			return nil, errors.New("kube admission: the promotion check needs the registry's attestations")
		}
		key, reg := *o.PromotionKey, o.Attestations
		a.promo = newDecisionCache(func(ctx context.Context, repo, d string) (promotionResult, error) {
			dg, err := digest.Parse(d)
			if err != nil {
				return promotionResult{}, err
			}
			_, err = attest.RequirePromotion(ctx, reg, repo, dg, key)
			var pe *attest.PromotionError
			switch {
			case errors.As(err, &pe):
				return promotionResult{why: pe.Why}, nil
			case err != nil:
				return promotionResult{}, err
			}
			return promotionResult{}, nil
		}, ttl, o.Now)
	}
	return a, nil
}

// Hosts returns the registry hosts images are admitted from, sorted.
func (a *Admitter) Hosts() []string { return slices.Clone(a.hostList) }

// ChecksPromotion reports whether promotion attestations are required.
func (a *Admitter) ChecksPromotion() bool { return a.promo != nil }

// Check decides on each container. An image used by several containers
// is looked up once. The error is for lookups that failed (storage, the
// verdict store), not for images that break a rule.
func (a *Admitter) Check(ctx context.Context, cs []Container) ([]Checked, error) {
	out := make([]Checked, len(cs))
	type result struct {
		ref    ImageRef
		digest string
		rule   string
		msg    string
	}
	seen := map[string]result{}
	for i, c := range cs {
		r, ok := seen[c.Image]
		if !ok {
			var err error
			r.ref, r.digest, r.rule, r.msg, err = a.checkImage(ctx, c.Image, true)
			if err != nil {
				return nil, fmt.Errorf("%s image %q: %w", c.Label(), c.Image, err)
			}
			seen[c.Image] = r
		}
		out[i] = Checked{Container: c, Ref: r.ref, Digest: r.digest}
		if r.rule != "" {
			out[i].Violation = &Violation{Container: c, Rule: r.rule, Message: r.msg}
		}
	}
	return out, nil
}

// checkImage decides on one image: the rule it breaks and why (empty when
// it may run), and its digest in live/ when it is there. Without full, it
// stops once the digest is found (the mutating webhook's pinning).
func (a *Admitter) checkImage(ctx context.Context, image string, full bool) (ref ImageRef, digest, rule, msg string, err error) {
	ref, perr := ParseImage(image)
	if perr != nil {
		return ImageRef{}, "", RuleReference, perr.Error(), nil
	}
	if !a.hosts[ref.Host] {
		return ref, "", RuleRegistry, fmt.Sprintf("registry %s is not this drydock: images must come from %s", ref.Host, a.liveHint()), nil
	}
	if ref.Namespace() != liveNamespace || !strings.Contains(ref.Repository, "/") {
		return ref, "", RuleNamespace, fmt.Sprintf("repository %s is not in live/: only promoted images run (%s)", ref.Repository, a.liveHint()), nil
	}
	desc, rerr := a.reg.Resolve(ctx, ref.Repository, ref.Reference())
	switch {
	case errors.Is(rerr, registry.ErrNotFound):
		return ref, "", RuleNotFound, fmt.Sprintf("%s:%s is not in this drydock's live/ namespace", ref.Repository, ref.Reference()), nil
	case rerr != nil:
		return ref, "", "", "", fmt.Errorf("resolving %s: %w", ref.Repository, rerr)
	}
	digest = desc.Digest.String()
	if !full {
		return ref, digest, "", "", nil
	}
	if a.cache != nil {
		v, verr := a.cache.get(ctx, ref.Repository, digest)
		if verr != nil {
			return ref, digest, "", "", fmt.Errorf("verdict of %s@%s: %w", ref.Repository, digest, verr)
		}
		if !v.Promotable() {
			return ref, digest, RuleVerdict, fmt.Sprintf("digest %s has verdict %s now: %s", digest, v.State, verdictReasons(v)), nil
		}
	}
	if a.promo != nil {
		p, perr := a.promo.get(ctx, ref.Repository, digest)
		if perr != nil {
			return ref, digest, "", "", fmt.Errorf("promotion attestation of %s@%s: %w", ref.Repository, digest, perr)
		}
		if p.why != "" {
			return ref, digest, RulePromotion, fmt.Sprintf("digest %s was not promoted by this drydock: no valid promotion attestation signed by its key (%s)",
				digest, truncate(p.why, 200)), nil
		}
	}
	return ref, digest, "", "", nil
}

// Pin is an image to replace by its digest.
type Pin struct {
	Container Container
	// Image is the reference by digest: HOST/live/NAME@sha256:….
	Image string
}

// Pin returns, for each container whose image is this drydock's live/
// image named by tag, the same image by the digest the tag resolves to
// now. Other images (by digest already, or breaking a rule) are not
// pinned: the validating webhook decides on them.
func (a *Admitter) Pin(ctx context.Context, cs []Container) ([]Pin, error) {
	var out []Pin
	done := map[string]string{} // image -> pinned ("" when not)
	for _, c := range cs {
		pinned, ok := done[c.Image]
		if !ok {
			ref, digest, rule, _, err := a.checkImage(ctx, c.Image, false)
			if err != nil {
				return nil, fmt.Errorf("%s image %q: %w", c.Label(), c.Image, err)
			}
			if rule == "" && ref.Digest == "" {
				pinned = ref.Pinned(digest)
			}
			done[c.Image] = pinned
		}
		if pinned != "" {
			out = append(out, Pin{Container: c, Image: pinned})
		}
	}
	return out, nil
}

func (a *Admitter) liveHint() string {
	hs := make([]string, len(a.hostList))
	for i, h := range a.hostList {
		hs[i] = h + "/" + liveNamespace + "/"
	}
	return strings.Join(hs, " or ")
}

// verdictReasons summarises a verdict's reasons for a denial.
func verdictReasons(v gate.Verdict) string {
	if len(v.Reasons) == 0 {
		return "no reason recorded"
	}
	var parts []string
	for _, r := range v.Reasons {
		parts = append(parts, r.Rule+": "+truncate(r.Message, 160))
		if len(parts) == 3 {
			break
		}
	}
	s := strings.Join(parts, "; ")
	if n := len(v.Reasons) - len(parts); n > 0 {
		s += fmt.Sprintf("; and %d more", n)
	}
	return s
}
