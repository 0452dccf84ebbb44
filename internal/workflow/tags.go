package workflow

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/drydock-project/drydock/internal/imgref"
)

// MaxIncrement is the last incremental patch suffix (TAG-999).
const MaxIncrement = 999

// TagSet is what drydock's registry holds for one image name: the tags of
// live/NAME and of quarantine/NAME (nil when the repository does not
// exist).
type TagSet struct {
	Name       string
	Live       []string
	Quarantine []string
}

// TagLister reads the TagSet of an image name.
type TagLister func(ctx context.Context, name string) (TagSet, error)

// Match is one image a workflow patches: an original tag and its patches.
type Match struct {
	// Name is the image name ("nginx"), Tag the original tag.
	Name string `json:"name"`
	Tag  string `json:"tag"`
	// Entry is the config's repository the match comes from (NAME,
	// live/NAME or quarantine/NAME).
	Entry string `json:"entry"`
	// Source is the repository the original is read from: live/NAME when
	// it has been promoted (or live/ was named), else quarantine/NAME.
	Source string `json:"source"`
	// Latest is the newest patch tag ("" when there is none yet) and
	// LatestSource the repository it is read from (quarantine/NAME, where
	// patches are written, else live/NAME).
	Latest       string `json:"latest,omitempty"`
	LatestSource string `json:"latest_source,omitempty"`
	// Next is the tag a new patch gets, in quarantine/NAME; NextErr says
	// why there is none (the incremental suffix is used up).
	Next    string `json:"next,omitempty"`
	NextErr string `json:"next_error,omitempty"`
}

// Image is the ledger's key of a match: NAME:TAG.
func (m Match) Image() string { return m.Name + ":" + m.Tag }

// Target is the repository and tag a scan decides on: the latest patch,
// or the original when there is none.
func (m Match) Target() (repo, tag string) {
	if m.Latest != "" {
		return m.LatestSource, m.Latest
	}
	return m.Source, m.Tag
}

// IgnoredTag is a tag a wildcard saw but does not patch.
type IgnoredTag struct {
	Image  string `json:"image"`
	Reason string `json:"reason"`
}

// Selection is what a config matches in the registry.
type Selection struct {
	Convention TagConvention `json:"tag_convention"`
	Matches    []Match       `json:"matches"`
	// NotFound lists explicit NAME:TAG entries the registry does not hold
	// (they do not count toward MaxImages).
	NotFound []string     `json:"not_found,omitempty"`
	Ignored  []IgnoredTag `json:"ignored,omitempty"`
}

// Select resolves cfg against the registry: which original tags it
// matches, with their latest patch and next patch tag. It fails when more
// than MaxImages images match.
//
// Tags ending in -1 ... -999 or -patched are patch outputs, never inputs:
// a wildcard groups them under their base when the base exists, and
// ignores them (with a note) when it does not; an explicit tag matches
// exactly that tag.
func Select(ctx context.Context, cfg *Config, list TagLister) (*Selection, error) {
	sel := &Selection{Convention: cfg.TagConvention}
	seen := map[string]bool{} // NAME:TAG already matched
	cache := map[string]TagSet{}
	for i, r := range cfg.Repositories {
		if !r.Enabled {
			continue
		}
		name := NameOf(r.Repository)
		ts, ok := cache[name]
		if !ok {
			var err error
			if ts, err = list(ctx, name); err != nil {
				return nil, fmt.Errorf("repositories[%d] (%s): listing tags: %w", i, r.Repository, err)
			}
			cache[name] = ts
		}
		for _, m := range selectRepo(r, ts, cfg.TagConvention, sel) {
			if seen[m.Image()] {
				continue
			}
			seen[m.Image()] = true
			sel.Matches = append(sel.Matches, m)
		}
	}
	if len(sel.Matches) > MaxImages {
		return sel, fmt.Errorf("the config matches %d images, more than the limit of %d: narrow its tags", len(sel.Matches), MaxImages)
	}
	return sel, nil
}

// selectRepo matches one config entry against its image's tags.
func selectRepo(r Repository, ts TagSet, conv TagConvention, sel *Selection) []Match {
	name := NameOf(r.Repository)
	qRepo, lRepo := quarantineNS+name, liveNS+name
	inLive := setOf(ts.Live)
	inQuar := setOf(ts.Quarantine)
	// The originals' candidates: the named namespace, or both.
	var candidates []string
	switch {
	case r.Repository == lRepo:
		candidates = ts.Live
	case r.Repository == qRepo:
		candidates = ts.Quarantine
	default:
		candidates = union(ts.Live, ts.Quarantine)
	}
	sourceOf := func(tag string) string {
		switch {
		case r.Repository == qRepo:
			return qRepo
		case r.Repository == lRepo || inLive[tag]:
			return lRepo
		}
		return qRepo
	}
	originals := map[string]bool{}
	for _, t := range candidates {
		if _, _, ok := imgref.PatchTag(t); !ok {
			originals[t] = true
		}
	}
	// Patch outputs live in quarantine/ (where they are written) and
	// live/ (once promoted): both count for the latest and the next tag.
	outputs := map[string][]string{} // base -> patch tags of the convention
	for _, t := range union(ts.Live, ts.Quarantine) {
		base, n, ok := imgref.PatchTag(t)
		if !ok {
			continue
		}
		if (conv == Incremental) != (n > 0) {
			continue // the other convention's tag
		}
		outputs[base] = append(outputs[base], t)
	}
	var bases []string
	if len(r.Tags) == 1 && r.Tags[0] == Wildcard {
		for _, t := range candidates {
			if originals[t] {
				bases = append(bases, t)
				continue
			}
			if base, _, _ := imgref.PatchTag(t); !originals[base] && !inLive[base] && !inQuar[base] {
				sel.Ignored = append(sel.Ignored, IgnoredTag{Image: name + ":" + t,
					Reason: fmt.Sprintf("looks like a patch tag of %s:%s, which does not exist; patch tags are never patched", name, base)})
			}
		}
		slices.Sort(bases)
	} else {
		for _, t := range r.Tags {
			if originals[t] {
				bases = append(bases, t)
			} else {
				sel.NotFound = append(sel.NotFound, name+":"+t)
			}
		}
	}
	out := make([]Match, 0, len(bases))
	for _, b := range bases {
		m := Match{Name: name, Tag: b, Entry: r.Repository, Source: sourceOf(b)}
		latestN := 0
		for _, t := range outputs[b] {
			_, n, _ := imgref.PatchTag(t)
			if m.Latest == "" || n > latestN {
				m.Latest, latestN = t, n
			}
		}
		if m.Latest != "" {
			m.LatestSource = qRepo
			if !inQuar[m.Latest] {
				m.LatestSource = lRepo
			}
		}
		switch {
		case conv == Floating:
			m.Next = b + "-patched"
		case latestN >= MaxIncrement:
			m.NextErr = fmt.Sprintf("%s:%s is the last incremental patch tag (-%d): no further patch tag can be written; move to a new original tag", name, m.Latest, MaxIncrement)
		default:
			m.Next = b + "-" + strconv.Itoa(latestN+1)
		}
		if m.Next != "" && !imgref.ValidTag(m.Next) {
			m.NextErr = fmt.Sprintf("%s:%s: the patch tag %q would be longer than a tag may be (128 characters)", name, b, m.Next)
			m.Next = ""
		}
		out = append(out, m)
	}
	return out
}

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

// union returns the sorted union of a and b.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
