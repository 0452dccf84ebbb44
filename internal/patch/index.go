package patch

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// IndexResult is the outcome of patching a multi-platform index.
type IndexResult struct {
	// Index is the patched index: each platform patched, platforms with
	// nothing to do kept as they were (same digest). Nil when no platform
	// changed or in a dry run.
	Index     v1.ImageIndex
	Platforms []*ImageResult
}

// Index patches every image of idx (or those matching only, when set):
// nothing is executed, so platforms this machine cannot run are patched
// too. Entries that are not images (attestations, nested indexes) and
// platforms not selected are kept as they are.
func Index(ctx context.Context, idx v1.ImageIndex, only *v1.Platform, dryRun bool, o Options) (_ *IndexResult, cleanup func(), err error) {
	var cleanups []func()
	cleanup = func() {
		for _, c := range cleanups {
			c()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
			cleanup = func() {}
		}
	}()
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, cleanup, fmt.Errorf("read index: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, cleanup, err
	}
	res := &IndexResult{}
	out := mutate.IndexMediaType(empty.Index, mt)
	changed := false
	for _, d := range m.Manifests {
		add := mutate.IndexAddendum{Descriptor: d}
		if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" || (only != nil && !d.Platform.Satisfies(*only)) {
			child, err := childOf(idx, d)
			if err != nil {
				return nil, cleanup, err
			}
			add.Add = child
			out = mutate.AppendManifests(out, add)
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, cleanup, fmt.Errorf("read %s image: %w", platformString(d.Platform), err)
		}
		r, c, err := Image(ctx, img, dryRun, o)
		if err != nil {
			return nil, cleanup, fmt.Errorf("%s: %w", platformString(d.Platform), err)
		}
		cleanups = append(cleanups, c)
		res.Platforms = append(res.Platforms, r)
		if r.Image != nil {
			changed = true
			add.Add = r.Image
			nd := v1.Descriptor{Platform: d.Platform, Annotations: d.Annotations}
			if nd.MediaType, err = r.Image.MediaType(); err != nil {
				return nil, cleanup, err
			}
			add.Descriptor = nd
		} else {
			add.Add = img
		}
		out = mutate.AppendManifests(out, add)
	}
	if len(res.Platforms) == 0 {
		return nil, cleanup, fmt.Errorf("index has no image for the selected platform")
	}
	if changed && !dryRun {
		if len(m.Annotations) > 0 {
			ann, ok := mutate.Annotations(out, m.Annotations).(v1.ImageIndex)
			if ok {
				out = ann
			}
		}
		res.Index = out
	}
	return res, cleanup, nil
}

func childOf(idx v1.ImageIndex, d v1.Descriptor) (mutate.Appendable, error) {
	switch {
	case d.MediaType.IsIndex():
		return idx.ImageIndex(d.Digest)
	case d.MediaType.IsImage(), d.MediaType == types.OCIManifestSchema1:
		return idx.Image(d.Digest)
	}
	return nil, fmt.Errorf("index entry %s has media type %s, which drydock does not copy", d.Digest, d.MediaType)
}
