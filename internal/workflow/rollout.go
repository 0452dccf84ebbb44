package workflow

import (
	"context"
	"slices"

	"github.com/drydock-project/drydock/internal/imgref"
)

// RolloutFor returns the names of the workflows with Rollout on that wrote
// (or could have written) patch tag tag of live repository repo: their
// config has an enabled entry for the image, and tag is a patch tag
// (TAG-N, TAG-patched) of one of the entry's tags, or of any tag under a
// wildcard. Sorted; none when tag is not a patch tag. The server calls it
// for each promotion into live/ and rolls out what it returns.
func (e *Engine) RolloutFor(ctx context.Context, repo, tag string) ([]string, error) {
	base, _, ok := imgref.PatchTag(tag)
	if !ok || !imgref.IsLive(repo) || repo == imgref.Live {
		return nil, nil
	}
	name := NameOf(repo)
	ws, err := e.o.Store.Workflows(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range ws {
		if w.Rollout && w.Config.covers(name, base) {
			out = append(out, w.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// covers reports whether an enabled entry of c names image name with tag
// base (explicitly or by the wildcard).
func (c *Config) covers(name, base string) bool {
	for _, r := range c.Repositories {
		if r.Enabled && NameOf(r.Repository) == name && (slices.Contains(r.Tags, Wildcard) || slices.Contains(r.Tags, base)) {
			return true
		}
	}
	return false
}
