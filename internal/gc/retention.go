package gc

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/imgref"
)

// Retention decides which tags to delete; the decision is a pure function
// of the tags, their activity, the policies and the time (Plan), so a dry
// run prints exactly what a run with the same inputs deletes.
//
// A tag is deleted only when a rule that is set selects it and nothing
// keeps it:
//   - keepPatchTags N selects the patch tags of an original beyond its N
//     newest and keeps the N newest (it says nothing about other tags);
//   - keepDays D selects the tags neither pushed nor pulled within D days
//     and keeps the others;
//   - keepTags keeps the tags matching its patterns.
//
// Never deleted, whatever the policy: a tag whose image a running workload
// uses (in live/, once the running-image inventory exists), the newest
// patch tag of each original, a tag whose image's verdict is pending, and
// the original tag a remaining patch derives from (by the patch tag
// grammar, TAG-N or TAG-patched of TAG, or by the patched image's
// org.opencontainers.image.base.digest annotation), in the repository and
// its counterpart in the other gate namespace.

// Policy is a retention policy (config.RetentionPolicy).
type Policy struct {
	Repositories []string
	// KeepPatchTags is the newest patch tags kept per original; -1 when
	// the rule is not set.
	KeepPatchTags int
	// KeepDays keeps tags pushed or pulled within so many days; 0 when
	// the rule is not set.
	KeepDays int
	KeepTags []string
}

// PoliciesFrom converts the serve config's policies.
func PoliciesFrom(ps []config.RetentionPolicy) []Policy {
	out := make([]Policy, len(ps))
	for i, p := range ps {
		out[i] = Policy{Repositories: p.Repositories, KeepPatchTags: -1, KeepTags: p.KeepTags}
		if p.KeepPatchTags != nil {
			out[i].KeepPatchTags = *p.KeepPatchTags
		}
		if p.KeepDays != nil {
			out[i].KeepDays = *p.KeepDays
		}
	}
	return out
}

// policyFor returns the first policy matching repo, or nil.
func policyFor(ps []Policy, repo string) *Policy {
	for i := range ps {
		for _, p := range ps[i].Repositories {
			if config.MatchRepository(p, repo) {
				return &ps[i]
			}
		}
	}
	return nil
}

// TagInfo is what retention knows of a tag.
type TagInfo struct {
	Repository string
	Tag        string
	Digest     digest.Digest
	// Children are an index's manifests: a workload runs one of them.
	Children []digest.Digest
	// Base is the manifest a patched image derives from (its
	// org.opencontainers.image.base.digest annotation).
	Base digest.Digest
	// PushedAt is when the tag was last pushed, PulledAt when its image
	// was last pulled (zero: never, as far as drydock recorded).
	PushedAt, PulledAt time.Time
}

// Guards answer the never-delete rules that other services know.
type Guards struct {
	// Running reports whether a running workload uses d (nil: no
	// inventory).
	Running func(d digest.Digest) bool
	// RunningDigests, when set, lists the manifest digests running
	// workloads use (the Kubernetes inventory: InventoryDigests). A run
	// reads it once, at its start, and keeps those digests in live/ as
	// Running does; a run that cannot read it fails rather than delete
	// what may be running.
	RunningDigests func(ctx context.Context) ([]digest.Digest, error)
	// Pending reports whether d's verdict is pending.
	Pending func(d digest.Digest) bool
}

// TagDecision is retention's decision on one tag.
type TagDecision struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	Delete     bool   `json:"delete"`
	// Reason says why the tag is deleted, or why a rule that selected it
	// did not delete it.
	Reason string `json:"reason"`
}

// RetentionReport is what retention did (or, dry, would do).
type RetentionReport struct {
	// Deleted are the tags deleted, sorted by repository and tag.
	Deleted []TagDecision `json:"deleted"`
	// Protected are the tags a rule selected that a never-delete rule or
	// a keep rule kept.
	Protected []TagDecision `json:"protected,omitempty"`
	// Skipped are deletions not done because the tag changed meanwhile.
	Skipped []TagDecision `json:"skipped,omitempty"`
}

// imageOf names a repository's image across the gate's namespaces:
// quarantine/nginx and live/nginx are one image.
func imageOf(repo string) string {
	switch imgref.Namespace(repo) {
	case imgref.Quarantine, imgref.Live:
		return imgref.Rebase(repo, "*")
	}
	return repo
}

// Plan decides, at now, which of tags the policies delete. Tags of
// repositories no policy matches are not decided on, nor are tags of
// cosign's tag scheme (sha256-HEX.sig, .att, .sbom): they follow their
// subject.
func Plan(now time.Time, policies []Policy, tags []TagInfo, g Guards) *RetentionReport {
	type tagState struct {
		TagInfo
		p       *Policy
		del     bool
		reason  string
		patchOf string // the original's tag, for a patch tag
		rank    int    // 0 for the newest patch of its original
	}
	var st []*tagState
	for _, t := range tags {
		if _, ok := imgref.ParseTagScheme(t.Tag); ok {
			continue // a signature, attestation or SBOM follows its subject
		}
		if p := policyFor(policies, t.Repository); p != nil {
			st = append(st, &tagState{TagInfo: t, p: p})
		}
	}
	// Rank each original's patch tags, newest first: the floating one
	// (TAG-patched, which the workflow engine moves to each new patch),
	// then the incremental ones by number.
	groups := map[string][]*tagState{}
	for _, t := range st {
		if orig, _, ok := imgref.PatchTag(t.Tag); ok {
			t.patchOf = orig
			k := t.Repository + ":" + orig
			groups[k] = append(groups[k], t)
		}
	}
	for _, grp := range groups {
		slices.SortFunc(grp, func(a, b *tagState) int {
			_, na, _ := imgref.PatchTag(a.Tag)
			_, nb, _ := imgref.PatchTag(b.Tag)
			switch {
			case na == nb:
				return strings.Compare(a.Tag, b.Tag)
			case na == 0:
				return -1
			case nb == 0:
				return 1
			}
			return nb - na
		})
		for i, t := range grp {
			t.rank = i
		}
	}
	rep := &RetentionReport{Deleted: []TagDecision{}}
	var protected []*tagState
	for _, t := range st {
		p := t.p
		recent := false
		if p.KeepDays > 0 {
			last := t.PushedAt
			if t.PulledAt.After(last) {
				last = t.PulledAt
			}
			recent = now.Sub(last) < time.Duration(p.KeepDays)*24*time.Hour
		}
		var selected string
		switch {
		case t.patchOf != "" && p.KeepPatchTags >= 0 && t.rank >= p.KeepPatchTags:
			selected = fmt.Sprintf("patch %d of %s, beyond the %d newest kept (keepPatchTags)", t.rank+1, t.patchOf, p.KeepPatchTags)
		case p.KeepDays > 0 && !recent:
			selected = fmt.Sprintf("neither pushed nor pulled within %d days (keepDays)", p.KeepDays)
		}
		if selected == "" {
			continue
		}
		keep := ""
		switch {
		case g.Running != nil && imgref.IsLive(t.Repository) && (g.Running(t.Digest) || slices.ContainsFunc(t.Children, g.Running)):
			keep = "a running workload uses it"
		case t.patchOf != "" && t.rank == 0:
			keep = "the newest patch of " + t.patchOf
		case g.Pending != nil && g.Pending(t.Digest):
			keep = "its verdict is pending"
		case p.KeepDays > 0 && recent:
			keep = fmt.Sprintf("pushed or pulled within %d days (keepDays)", p.KeepDays)
		case t.patchOf != "" && p.KeepPatchTags >= 0 && t.rank < p.KeepPatchTags:
			keep = fmt.Sprintf("one of the %d newest patches of %s (keepPatchTags)", p.KeepPatchTags, t.patchOf)
		default:
			for _, pat := range p.KeepTags {
				if ok, _ := path.Match(pat, t.Tag); ok {
					keep = "matches " + pat + " (keepTags)"
					break
				}
			}
		}
		if keep != "" {
			t.reason = keep + "; selected: " + selected
			protected = append(protected, t)
			continue
		}
		t.del, t.reason = true, selected
	}
	// The original a remaining patch derives from stays; keeping it may
	// keep the original it derives from in turn.
	for changed := true; changed; {
		changed = false
		byName, byDigest := map[string]string{}, map[string]string{}
		for _, t := range st {
			if t.del {
				continue
			}
			if t.patchOf != "" {
				byName[imageOf(t.Repository)+":"+t.patchOf] = t.Repository + ":" + t.Tag
			}
			if t.Base != "" {
				byDigest[imageOf(t.Repository)+"@"+t.Base.String()] = t.Repository + ":" + t.Tag
			}
		}
		for _, t := range st {
			if !t.del {
				continue
			}
			patch, ok := byDigest[imageOf(t.Repository)+"@"+t.Digest.String()]
			if !ok && t.patchOf == "" {
				patch, ok = byName[imageOf(t.Repository)+":"+t.Tag]
			}
			if ok {
				t.del, changed = false, true
				t.reason = "the original of " + patch + "; selected: " + t.reason
				protected = append(protected, t)
			}
		}
	}
	for _, t := range st {
		if t.del {
			rep.Deleted = append(rep.Deleted, TagDecision{Repository: t.Repository, Tag: t.Tag, Digest: t.Digest.String(), Delete: true, Reason: t.reason})
		}
	}
	for _, t := range protected {
		rep.Protected = append(rep.Protected, TagDecision{Repository: t.Repository, Tag: t.Tag, Digest: t.Digest.String(), Reason: t.reason})
	}
	sortDecisions(rep.Deleted)
	sortDecisions(rep.Protected)
	return rep
}

func sortDecisions(ds []TagDecision) {
	slices.SortFunc(ds, func(a, b TagDecision) int {
		return strings.Compare(a.Repository+"\x00"+a.Tag, b.Repository+"\x00"+b.Tag)
	})
}
