package gc

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

var planNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func dg(s string) digest.Digest { return digest.FromString(s) }

// tagAt is a tag pushed days ago, pointing at the digest of its name.
func tagAt(repo, tag string, days int) TagInfo {
	return TagInfo{Repository: repo, Tag: tag, Digest: dg(repo + ":" + tag), PushedAt: planNow.Add(-time.Duration(days) * 24 * time.Hour)}
}

func deletedTags(rep *RetentionReport) []string {
	out := []string{}
	for _, d := range rep.Deleted {
		out = append(out, d.Repository+":"+d.Tag)
	}
	return out
}

func protectedReason(rep *RetentionReport, ref string) string {
	for _, d := range rep.Protected {
		if d.Repository+":"+d.Tag == ref {
			return d.Reason
		}
	}
	return ""
}

func intp(n int) *int { return &n }

// TestPlanRules: each keep rule and each never-delete rule, with the
// tags it must keep and delete; every case also has a tag the same rule
// would delete without the protection, so that a rule that keeps
// everything fails the test too.
func TestPlanRules(t *testing.T) {
	const q, l = "quarantine/app", "live/app"
	patches := func(repo string) []TagInfo {
		return []TagInfo{tagAt(repo, "1.0", 90), tagAt(repo, "1.0-1", 60), tagAt(repo, "1.0-2", 40),
			tagAt(repo, "1.0-3", 20), tagAt(repo, "1.0-patched", 20)}
	}
	for _, tc := range []struct {
		name      string
		policy    Policy
		tags      []TagInfo
		guards    Guards
		deleted   []string
		protected map[string]string // tag -> part of the reason
	}{{
		name:   "keepPatchTags keeps the N newest patches per original",
		policy: Policy{Repositories: []string{"quarantine/**"}, KeepPatchTags: 2},
		tags:   patches(q),
		// The floating 1.0-patched is the newest, then 1.0-3.
		deleted: []string{q + ":1.0-1", q + ":1.0-2"},
	}, {
		name:    "keepPatchTags 0 still keeps the newest patch of each original",
		policy:  Policy{Repositories: []string{"quarantine/**"}, KeepPatchTags: 0},
		tags:    patches(q),
		deleted: []string{q + ":1.0-1", q + ":1.0-2", q + ":1.0-3"},
		protected: map[string]string{
			q + ":1.0-patched": "the newest patch of 1.0",
		},
	}, {
		name:    "without a floating tag the highest number is the newest patch",
		policy:  Policy{Repositories: []string{"quarantine/**"}, KeepPatchTags: 0},
		tags:    patches(q)[:4],
		deleted: []string{q + ":1.0-1", q + ":1.0-2"},
		protected: map[string]string{
			q + ":1.0-3": "the newest patch of 1.0",
		},
	}, {
		name:   "keepDays deletes tags neither pushed nor pulled within D days",
		policy: Policy{Repositories: []string{"quarantine/**"}, KeepPatchTags: -1, KeepDays: 30},
		tags: []TagInfo{tagAt(q, "old", 40), tagAt(q, "new", 3),
			func() TagInfo { ti := tagAt(q, "pulled", 40); ti.PulledAt = planNow.Add(-24 * time.Hour); return ti }()},
		deleted: []string{q + ":old"},
	}, {
		name:      "keepTags keeps what matches",
		policy:    Policy{Repositories: []string{"quarantine/**"}, KeepPatchTags: -1, KeepDays: 30, KeepTags: []string{"v*"}},
		tags:      []TagInfo{tagAt(q, "old", 40), tagAt(q, "v1", 400)},
		deleted:   []string{q + ":old"},
		protected: map[string]string{q + ":v1": "matches v* (keepTags)"},
	}, {
		name:   "never: an image a running workload uses in live/",
		policy: Policy{Repositories: []string{"**"}, KeepPatchTags: -1, KeepDays: 30},
		tags: []TagInfo{tagAt(l, "running", 40), tagAt(l, "idle", 40),
			func() TagInfo { ti := tagAt(l, "index", 40); ti.Children = []digest.Digest{dg("child")}; return ti }()},
		guards: Guards{Running: func(d digest.Digest) bool {
			return d == dg(l+":running") || d == dg("child")
		}},
		deleted:   []string{l + ":idle"},
		protected: map[string]string{l + ":running": "a running workload uses it", l + ":index": "a running workload uses it"},
	}, {
		name:    "never: an image whose verdict is pending",
		policy:  Policy{Repositories: []string{"**"}, KeepPatchTags: -1, KeepDays: 30},
		tags:    []TagInfo{tagAt(q, "pending", 40), tagAt(q, "done", 40)},
		guards:  Guards{Pending: func(d digest.Digest) bool { return d == dg(q+":pending") }},
		deleted: []string{q + ":done"},
		protected: map[string]string{
			q + ":pending": "its verdict is pending",
		},
	}, {
		name:   "never: the original a remaining patch derives from (by tag)",
		policy: Policy{Repositories: []string{"**"}, KeepPatchTags: 1, KeepDays: 30},
		// 1.0 is old; its patch 1.0-3 is recent and stays, so 1.0 stays.
		tags:    []TagInfo{tagAt(q, "1.0", 90), tagAt(q, "1.0-3", 1), tagAt(q, "2.0", 90)},
		deleted: []string{q + ":2.0"},
		protected: map[string]string{
			q + ":1.0": "the original of " + q + ":1.0-3",
		},
	}, {
		name:   "never: the original a patch in the other namespace derives from (by base digest)",
		policy: Policy{Repositories: []string{"**"}, KeepPatchTags: -1, KeepDays: 30},
		tags: []TagInfo{tagAt(q, "orig", 90), tagAt(q, "other", 90),
			func() TagInfo { ti := tagAt(l, "rebuilt", 1); ti.Base = dg(q + ":orig"); return ti }()},
		deleted:   []string{q + ":other"},
		protected: map[string]string{q + ":orig": "the original of " + l + ":rebuilt"},
	}, {
		name:    "signature, attestation and SBOM tags follow their subject",
		policy:  Policy{Repositories: []string{"**"}, KeepPatchTags: -1, KeepDays: 30},
		tags:    []TagInfo{tagAt(q, "sha256-"+dg("x").Encoded()+".sig", 90), tagAt(q, "old", 90)},
		deleted: []string{q + ":old"},
	}, {
		name:    "repositories no policy matches are left alone",
		policy:  Policy{Repositories: []string{"live/*"}, KeepPatchTags: -1, KeepDays: 30},
		tags:    []TagInfo{tagAt(q, "old", 90), tagAt(l, "old", 90)},
		deleted: []string{l + ":old"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Plan(planNow, []Policy{tc.policy}, tc.tags, tc.guards)
			got := deletedTags(rep)
			slices.Sort(tc.deleted)
			if !slices.Equal(got, tc.deleted) {
				t.Errorf("deleted %v, want %v\nprotected: %+v", got, tc.deleted, rep.Protected)
			}
			for ref, why := range tc.protected {
				if r := protectedReason(rep, ref); !strings.Contains(r, why) {
					t.Errorf("%s: protected for %q, want %q", ref, r, why)
				}
			}
			// Deterministic: the same inputs in another order give the same plan.
			rev := slices.Clone(tc.tags)
			slices.Reverse(rev)
			if again := deletedTags(Plan(planNow, []Policy{tc.policy}, rev, tc.guards)); !slices.Equal(again, got) {
				t.Errorf("plan depends on input order: %v vs %v", again, got)
			}
		})
	}
}

// TestPlanSharedDigest: tags sharing a digest are decided one by one
// (harbor#8717): deleting one tag leaves the other, which still keeps
// the image.
func TestPlanSharedDigest(t *testing.T) {
	old, recent := tagAt("quarantine/app", "old", 90), tagAt("quarantine/app", "recent", 1)
	old.Digest = recent.Digest
	rep := Plan(planNow, []Policy{{Repositories: []string{"**"}, KeepPatchTags: -1, KeepDays: 30}}, []TagInfo{old, recent}, Guards{})
	if got := deletedTags(rep); !slices.Equal(got, []string{"quarantine/app:old"}) {
		t.Errorf("deleted %v", got)
	}
}
