package config

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/imgref"
)

// GC configures garbage collection and retention.
//
//	gc:
//	  schedule: 24h        # how often a collection runs; 0s: only on demand
//	  grace: 1h            # untagged manifests and unreferenced blobs younger than this are kept
//	  pace: 0.5            # share of the time a collection works; it rests the rest, for the registry's requests
//	  yield: 100ms         # deletions wait for the registry's writes in progress, at most this long per batch; 0s: never
//	  retention:
//	    - repositories: ["quarantine/**"]
//	      keepPatchTags: 3  # per original tag, the 3 newest patch tags (TAG-N, TAG-patched)
//	      keepDays: 30      # tags pushed or pulled within 30 days
//	      keepTags: ["latest", "v*"]
//	  quotas:
//	    - namespace: quarantine
//	      limit: 500GiB
//	    - repository: "quarantine/team-a/**"   # each matching repository
//	      limit: 20GiB
//
// Upload sessions idle for longer than uploads.purgeAfter are collected.
type GC struct {
	// Schedule is how often a collection (with retention) runs; 0
	// disables the schedule.
	Schedule Duration `yaml:"schedule"`
	// Grace keeps untagged manifests and blob links younger than this,
	// so that a push between its layers and its manifest does not fail.
	Grace Duration `yaml:"grace"`
	// Pace is the share of the wall time a collection works (over 0, at
	// most 1): it rests between short slices of work, leaving the
	// machine to pushes and pulls meanwhile. 1 never rests.
	Pace float64 `yaml:"pace"`
	// Yield is how long at most a collection's sweep waits, before each
	// batch of deletions, for the registry's writes in progress to end:
	// deletions then go in the gaps between pushes instead of into their
	// disk syncs, and under pushes that never pause the sweep still
	// deletes a batch (64) per Yield. 0 never waits.
	Yield Duration `yaml:"yield"`
	// Retention are the retention policies, applied before each
	// collection; a repository follows the first policy matching it.
	Retention []RetentionPolicy `yaml:"retention"`
	// Quotas limit the bytes repositories and namespaces hold (quota.go).
	Quotas []QuotaRule `yaml:"quotas"`
}

// RetentionPolicy says which tags of some repositories to keep. A tag is
// deleted only when a rule that is set selects it (a patch tag beyond the
// KeepPatchTags newest of its original; a tag neither pushed nor pulled
// within KeepDays) and no rule keeps it; KeepTags alone deletes nothing.
// Whatever the rules, retention never deletes: an image a running
// workload uses, the newest patch of an original, an image whose verdict
// is pending, or the original a remaining patch derives from.
type RetentionPolicy struct {
	// Repositories are names or patterns: "quarantine/nginx",
	// "quarantine/*" (one level), "quarantine/**" (any depth), "**".
	Repositories []string `yaml:"repositories"`
	// KeepPatchTags keeps, per original tag, this many newest patch tags.
	KeepPatchTags *int `yaml:"keepPatchTags"`
	// KeepDays keeps tags pushed or pulled within this many days.
	KeepDays *int `yaml:"keepDays"`
	// KeepTags keeps the tags matching any of these patterns (path.Match).
	KeepTags []string `yaml:"keepTags"`
}

// DefaultGCPace is gc.pace's default (see BenchmarkPushDuringGC in
// internal/gc for what it costs pushes).
const DefaultGCPace = 0.5

// DefaultGCYield is gc.yield's default: under constant pushes a sweep still
// deletes 640 objects a second.
const DefaultGCYield = 100 * time.Millisecond

func (g GC) validate() []error {
	var errs []error
	if g.Schedule < 0 {
		errs = append(errs, errors.New("gc.schedule: must not be negative (0s turns the schedule off)"))
	} else if g.Schedule > 0 && g.Schedule < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("gc.schedule: %s is below a second", g.Schedule))
	}
	if g.Grace < 0 {
		errs = append(errs, errors.New("gc.grace: must not be negative"))
	}
	if !(g.Pace > 0 && g.Pace <= 1) {
		errs = append(errs, fmt.Errorf("gc.pace: %g is not over 0 and at most 1 (1: a collection never rests)", g.Pace))
	}
	if g.Yield < 0 {
		errs = append(errs, errors.New("gc.yield: must not be negative (0s: deletions never wait for writes)"))
	} else if g.Yield > Duration(10*time.Second) {
		errs = append(errs, fmt.Errorf("gc.yield: %s is over 10s: a collection under constant writes would take hours", g.Yield))
	}
	for i, p := range g.Retention {
		field := fmt.Sprintf("gc.retention[%d]", i)
		if len(p.Repositories) == 0 {
			errs = append(errs, fmt.Errorf("%s.repositories: name at least one repository or pattern", field))
		}
		for j, r := range p.Repositories {
			if err := CheckRepositoryPattern(r); err != nil {
				errs = append(errs, fmt.Errorf("%s.repositories[%d]: %w", field, j, err))
			}
		}
		if p.KeepPatchTags != nil && *p.KeepPatchTags < 0 {
			errs = append(errs, fmt.Errorf("%s.keepPatchTags: %d is negative", field, *p.KeepPatchTags))
		}
		if p.KeepDays != nil && *p.KeepDays < 1 {
			errs = append(errs, fmt.Errorf("%s.keepDays: %d, want at least 1", field, *p.KeepDays))
		}
		if p.KeepPatchTags == nil && p.KeepDays == nil {
			errs = append(errs, fmt.Errorf("%s: set keepPatchTags or keepDays (keepTags alone deletes nothing)", field))
		}
		for j, t := range p.KeepTags {
			if _, err := path.Match(t, ""); err != nil || t == "" {
				errs = append(errs, fmt.Errorf("%s.keepTags[%d]: %q is not a valid pattern", field, j, t))
			}
		}
	}
	return append(errs, validateQuotas(g.Quotas)...)
}

// CheckRepositoryPattern returns why p is neither a repository name nor a
// pattern of them ("ns/*", "ns/**", "**", path.Match syntax in a
// component).
func CheckRepositoryPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if !strings.ContainsAny(p, "*?[") {
		return imgref.CheckRepository(p)
	}
	for i, c := range strings.Split(p, "/") {
		if c == "**" {
			if i != strings.Count(p, "/") {
				return fmt.Errorf("%q: ** may only be the last component", p)
			}
			continue
		}
		if _, err := path.Match(c, ""); err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
	}
	return nil
}

// MatchRepository reports whether repository repo matches pattern p (see
// CheckRepositoryPattern).
func MatchRepository(p, repo string) bool {
	pc, rc := strings.Split(p, "/"), strings.Split(repo, "/")
	for i, c := range pc {
		if c == "**" {
			return len(rc) > i
		}
		if i >= len(rc) {
			return false
		}
		if ok, _ := path.Match(c, rc[i]); !ok {
			return false
		}
	}
	return len(pc) == len(rc)
}
