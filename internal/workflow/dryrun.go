package workflow

import (
	"context"
	"fmt"
	"strings"
)

// Dry-run actions.
const (
	ActionPatch = "patch"
	ActionSkip  = "skip"
	ActionFail  = "fail"
)

// DryRunImage is what a run would do to one image.
type DryRunImage struct {
	Image string `json:"image"`
	// Target is the REPO:TAG the decision is taken on (the latest patch,
	// or the original).
	Target string `json:"target,omitempty"`
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Tag is the tag a patch would write (NAME:TAG-N or NAME:TAG-patched).
	Tag             string          `json:"tag,omitempty"`
	Signals         []string        `json:"signals,omitempty"`
	Fixable         Counts          `json:"fixable,omitempty"`
	SecurityUpdates []PackageChange `json:"security_updates,omitempty"`
	OS              string          `json:"os,omitempty"`
}

// DryRunReport is what a run of a config would do now; nothing is written.
type DryRunReport struct {
	Convention TagConvention `json:"tag_convention"`
	Images     []DryRunImage `json:"images"`
	Matches    int           `json:"matches"`
	NotFound   []string      `json:"not_found,omitempty"`
	Ignored    []IgnoredTag  `json:"ignored,omitempty"`
	// Fetches counts what the dry run fetched from package archives.
	Fetches map[string]int `json:"fetches,omitempty"`
}

// DryRun evaluates each image a selection matched, as a run's scan tasks
// would, and writes nothing. sel is Select's result for cfg (nil: select
// now).
func (e *Engine) DryRun(ctx context.Context, cfg *Config, sel *Selection, security bool) (*DryRunReport, error) {
	if sel == nil {
		var err error
		if sel, err = Select(ctx, cfg, e.tagLister); err != nil {
			return nil, err
		}
	}
	rep := &DryRunReport{Convention: sel.Convention, Matches: len(sel.Matches), NotFound: sel.NotFound, Ignored: sel.Ignored, Images: []DryRunImage{}}
	cacheID := "dry-run:" + newID()
	cache := e.runClient(cacheID)
	defer e.dropRun(cacheID)
	env, err := e.openEnv(ctx, cache.client, nil)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	for _, m := range sel.Matches {
		res, _, err := env.evaluate(ctx, m, security)
		img := DryRunImage{Image: m.Image()}
		switch {
		case err != nil:
			img.Action, img.Reason = ActionFail, err.Error()
		case res.Patch && m.NextErr != "":
			img.Action, img.Reason = ActionFail, m.NextErr
		case res.Patch:
			img.Action, img.Tag = ActionPatch, m.Name+":"+m.Next
			var why []string
			if n := res.Fixable.Total(); n > 0 {
				why = append(why, fmt.Sprintf("%d fixable vulnerabilities %s", n, countsText(res.Fixable)))
			}
			if n := len(res.SecurityUpdates); n > 0 {
				why = append(why, fmt.Sprintf("%d updates pending from the security suite", n))
			}
			img.Reason = strings.Join(why, "; ")
		default:
			img.Action, img.Reason = ActionSkip, res.SkipReason
		}
		if res != nil {
			img.Target, img.Signals, img.Fixable, img.SecurityUpdates, img.OS = res.Target, res.Signals, res.Fixable, res.SecurityUpdates, res.OS
		}
		rep.Images = append(rep.Images, img)
	}
	for _, nf := range sel.NotFound {
		rep.Images = append(rep.Images, DryRunImage{Image: nf, Action: ActionSkip, Reason: "tag not found"})
	}
	rep.Fetches = cache.drain()
	return rep, nil
}
