package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

// What follows a subject (#20): signatures, attestations, SBOMs and other
// non-runnable content that belongs to a digest rather than being an
// image, in both forms clients write it: OCI 1.1 referrers (imgref's
// NonRunnable rule) and cosign's tag scheme (imgref.TagSchemeArtifact).
// It is never scanned and never gets a verdict; it follows its subject
// into live/ at promotion, and when it arrives in quarantine/ for a
// digest already in live/, it is copied there too, as the gate's own
// write, audited. The policy's followers list can restrict which classes
// follow.

// Followed is one follower copied into live/.
type Followed struct {
	Repository string        `json:"repository"`
	Subject    digest.Digest `json:"subject"`
	Digest     digest.Digest `json:"digest"`
	Class      string        `json:"class"`
	// Form is attest.FormReferrer or attest.FormTag (then Tag is set).
	Form string `json:"form"`
	Tag  string `json:"tag,omitempty"`
}

// followAllowed reports whether the policy lets class follow; a policy
// that does not load lets nothing follow.
func (k *Keeper) followAllowed(class string) (bool, string) {
	pol, _, err := k.policy.Get()
	if err != nil || pol == nil {
		return false, "the policy does not load"
	}
	if !pol.Follows(class) {
		return false, fmt.Sprintf("the policy's followers do not list %q", class)
	}
	return true, ""
}

// followerArrived handles a non-runnable artifact pushed to quarantine/
// for subject: when the subject is in live/, it is copied there as well.
// It holds the subject's decision lock: a signature's two pushes (its
// manifest, then its .sig tag) each arrive here, and on one replica or
// several the second then finds the first's copies in place instead of
// copying and auditing them again.
func (k *Keeper) followerArrived(ctx context.Context, repo string, subject digest.Digest) {
	err := k.store.Serialize(ctx, subject.String(), func(ctx context.Context) error {
		targets, err := k.liveHolders(ctx, repo, subject)
		if err != nil {
			return fmt.Errorf("finding the live/ copies of its subject: %w", err)
		}
		for _, dst := range targets {
			if _, _, err := k.syncFollowers(ctx, repo, dst, []digest.Digest{subject}); err != nil {
				k.log.Warn("follower not copied to live/", "repository", repo, "live", dst, "subject", subject, "err", err)
			}
		}
		return nil
	})
	if err != nil {
		k.log.Warn("follower", "repository", repo, "subject", subject, "err", err)
	}
}

// liveHolders lists the live/ repositories a follower of subject pushed
// to srcRepo may go to: those holding subject that srcRepo feeds, by
// name (live/X for quarantine/X) or because subject arrived in srcRepo
// first (it was promoted from there, maybe under another name). Content
// pushed to one team's quarantine/ repository never reaches another
// team's live/ repository.
func (k *Keeper) liveHolders(ctx context.Context, srcRepo string, subject digest.Digest) ([]string, error) {
	origin := ""
	if im, err := k.store.Image(ctx, subject.String()); err == nil {
		origin = im.Repository
	}
	repos, err := k.reg.Repositories(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range repos {
		if !imgref.IsLive(r) || (imgref.Rebase(r, imgref.Quarantine) != srcRepo && origin != srcRepo) {
			continue
		}
		if _, err := k.reg.Resolve(ctx, r, subject.String()); err == nil {
			out = append(out, r)
		} else if !errors.Is(err, registry.ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// syncFollowers copies into dstRepo the followers of each subject in
// srcRepo that dstRepo lacks: non-runnable referrers (and, recursively,
// their own non-runnable referrers), and cosign tag-scheme content,
// merged into the destination's tag so nothing there is lost. What may
// not follow is returned as left behind. Each copy is audited as the
// gate's own write.
func (k *Keeper) syncFollowers(ctx context.Context, srcRepo, dstRepo string, subjects []digest.Digest) ([]Followed, []registry.LeftBehind, error) {
	ctx = WithGateWrite(ctx)
	var done []Followed
	var left []registry.LeftBehind
	for _, subject := range subjects {
		refs, err := k.reg.Referrers(ctx, srcRepo, subject, "")
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return done, left, err
		}
		for _, ref := range refs {
			if _, err := k.reg.Resolve(ctx, dstRepo, ref.Digest.String()); err == nil {
				continue
			}
			n, err := k.node(ctx, srcRepo, ref)
			if err != nil {
				return done, left, err
			}
			f, err := k.followRule(ctx, subject, n)
			if err != nil {
				return done, left, err
			}
			if !f.Copy {
				left = append(left, registry.LeftBehind{Referrer: ref, Subject: subject, Reason: f.Reason})
				continue
			}
			res, err := k.reg.Copy(ctx, srcRepo, dstRepo, ref.Digest, registry.CopyOptions{Check: artifactsOnly, Referrer: k.followRule})
			if err != nil {
				return done, left, fmt.Errorf("copying %s (follows %s) to %s: %w", ref.Digest, subject, dstRepo, err)
			}
			left = append(left, res.LeftBehind...)
			fl := Followed{Repository: dstRepo, Subject: subject, Digest: ref.Digest, Class: n.Manifest.Class(), Form: attest.FormReferrer}
			k.auditFollow(ctx, srcRepo, fl)
			done = append(done, fl)
		}
		for _, suffix := range []string{imgref.SuffixSignature, imgref.SuffixAttestation, imgref.SuffixSBOM} {
			fl, lb, err := k.followTag(ctx, srcRepo, dstRepo, subject, suffix)
			switch {
			case err != nil:
				return done, left, err
			case lb != nil:
				left = append(left, *lb)
			case fl != nil:
				k.auditFollow(ctx, srcRepo, *fl)
				done = append(done, *fl)
			}
		}
	}
	return done, left, nil
}

// followTag merges srcRepo's tag-scheme content of suffix for subject
// into dstRepo's.
func (k *Keeper) followTag(ctx context.Context, srcRepo, dstRepo string, subject digest.Digest, suffix string) (*Followed, *registry.LeftBehind, error) {
	tag := imgref.TagSchemeTag(subject, suffix)
	desc, body, err := k.reg.Manifest(ctx, srcRepo, tag)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if dd, err := k.reg.Resolve(ctx, dstRepo, tag); err == nil && dd.Digest == desc.Digest {
		return nil, nil, nil // already there
	}
	ts, ok := imgref.TagSchemeArtifact(tag, desc.MediaType, body)
	if !ok {
		return nil, &registry.LeftBehind{Referrer: desc, Subject: subject,
			Reason: fmt.Sprintf("tag %s is cosign's, but its content is not cosign's %s content (it holds an image layer or another kind)", tag, suffix)}, nil
	}
	if ok, why := k.followAllowed(ts.Class()); !ok {
		return nil, &registry.LeftBehind{Referrer: desc, Subject: subject, Reason: why}, nil
	}
	m, _ := imgref.ParseManifest(desc.MediaType, body)
	if _, err := k.reg.Resolve(ctx, dstRepo, tag); errors.Is(err, registry.ErrNotFound) {
		// First copy: the same manifest, same digest, tagged.
		if _, err := k.reg.Copy(ctx, srcRepo, dstRepo, desc.Digest, registry.CopyOptions{Tags: []string{tag},
			Check: tagSchemeOnly(desc.Digest), Referrer: k.followRule}); err != nil {
			return nil, nil, fmt.Errorf("copying %s:%s to %s: %w", srcRepo, tag, dstRepo, err)
		}
	} else {
		// The destination has its own (drydock's signatures, or earlier
		// ones): link the source's layers there and merge.
		if _, err := k.reg.Copy(ctx, srcRepo, dstRepo, desc.Digest, registry.CopyOptions{
			Check: tagSchemeOnly(desc.Digest), Referrer: k.followRule}); err != nil {
			return nil, nil, fmt.Errorf("copying %s:%s to %s: %w", srcRepo, tag, dstRepo, err)
		}
		if _, err := attest.AppendTagScheme(ctx, k.reg, dstRepo, subject, suffix, m.Layers); err != nil {
			return nil, nil, err
		}
	}
	dd, err := k.reg.Resolve(ctx, dstRepo, tag)
	if err != nil {
		return nil, nil, err
	}
	return &Followed{Repository: dstRepo, Subject: subject, Digest: dd.Digest, Class: ts.Class(), Form: attest.FormTag, Tag: tag}, nil, nil
}

// followRule is the referrer rule of what follows a subject without a
// verdict: a non-runnable artifact of a class the policy lets follow.
func (k *Keeper) followRule(_ context.Context, _ digest.Digest, n imgref.Node) (registry.Follow, error) {
	if n.Manifest.Kind() != imgref.KindArtifact {
		return registry.Follow{Reason: fmt.Sprintf("it is an %s, not a non-runnable artifact", n.Manifest.Kind())}, nil
	}
	if ok, why := k.followAllowed(n.Manifest.Class()); !ok {
		return registry.Follow{Reason: why}, nil
	}
	return registry.Follow{Copy: true}, nil
}

// artifactsOnly is the copy check of a follower: it holds only
// non-runnable artifacts.
func artifactsOnly(_ context.Context, root digest.Digest, n imgref.Node) error {
	if n.Manifest.Kind() != imgref.KindArtifact {
		return &UnjudgedError{Root: root, Manifest: n.Digest(), Why: "is not a non-runnable artifact"}
	}
	return nil
}

// tagSchemeOnly is the copy check of a tag-scheme manifest (checked by
// the caller with imgref.TagSchemeArtifact): that manifest alone.
func tagSchemeOnly(d digest.Digest) func(context.Context, digest.Digest, imgref.Node) error {
	return func(_ context.Context, root digest.Digest, n imgref.Node) error {
		if n.Digest() != d {
			return &UnjudgedError{Root: root, Manifest: n.Digest(), Why: "is not the tag-scheme manifest"}
		}
		return nil
	}
}

func (k *Keeper) node(ctx context.Context, repo string, desc ocispec.Descriptor) (imgref.Node, error) {
	stored, body, err := k.reg.Manifest(ctx, repo, desc.Digest.String())
	if err != nil {
		return imgref.Node{}, err
	}
	m, err := imgref.ParseManifest(stored.MediaType, body)
	if err != nil {
		return imgref.Node{}, err
	}
	return imgref.Node{Descriptor: desc, Body: body, Manifest: m}, nil
}

func (k *Keeper) auditFollow(ctx context.Context, srcRepo string, f Followed) {
	k.auditEntry(ctx, audit.Entry{Actor: ActorGate, Action: audit.ActionPromotion, Repository: f.Repository,
		Reference: f.Tag, Digest: f.Digest.String(), Outcome: audit.OutcomeOK}, map[string]any{
		"follows": f.Subject.String(), "class": f.Class, "form": f.Form, "source": srcRepo})
	k.log.Info("follower copied to live/", "repository", f.Repository, "subject", f.Subject, "digest", f.Digest,
		"class", f.Class, "form", f.Form, "tag", f.Tag)
}

// followersOf lists the manifests a promotion copied whose followers
// follow: the digest and every manifest reachable from it in dstRepo.
func (k *Keeper) followersOf(ctx context.Context, dstRepo string, root digest.Digest) ([]digest.Digest, error) {
	desc, err := k.reg.Resolve(ctx, dstRepo, root.String())
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	err = imgref.Walk(ctx, desc, func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		_, body, err := k.reg.Manifest(ctx, dstRepo, d.Digest.String())
		return body, err
	}, func(n imgref.Node) error {
		out = append(out, n.Digest())
		return nil
	})
	slices.Sort(out)
	return out, err
}
