package patch

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydock-project/drydock/internal/imgref"
)

// indexRun is the outcome of patching a multi-platform index.
type indexRun struct {
	// index is the patched index: each platform patched, platforms with
	// nothing to do kept as they were (same digest). Nil when no platform
	// changed or in a dry run.
	index     v1.ImageIndex
	platforms []*imageRun
}

func (r *indexRun) close() {
	for _, p := range r.platforms {
		p.close()
	}
}

// index patches every image of idx (or those matching only, when set):
// nothing is executed unless a script must run, so platforms this machine
// cannot run are patched too. Entries that are not images (attestations,
// nested indexes) and platforms not selected are kept as they are.
func (e *engine) index(ctx context.Context, idx v1.ImageIndex, only *v1.Platform) (_ *indexRun, err error) {
	res := &indexRun{}
	defer func() {
		if err != nil {
			res.close()
		}
	}()
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	out := mutate.IndexMediaType(empty.Index, mt)
	changed := false
	for _, d := range m.Manifests {
		add := mutate.IndexAddendum{Descriptor: d}
		img, err := patchable(idx, d, only)
		if err != nil {
			return nil, err
		}
		if img == nil {
			child, err := childOf(idx, d)
			if err != nil {
				return nil, err
			}
			add.Add = child
			out = mutate.AppendManifests(out, add)
			continue
		}
		r, err := e.image(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Platform, err)
		}
		res.platforms = append(res.platforms, r)
		if r.image != nil {
			changed = true
			add.Add = r.image
			nd := v1.Descriptor{Platform: d.Platform, Annotations: d.Annotations}
			if nd.MediaType, err = r.image.MediaType(); err != nil {
				return nil, err
			}
			add.Descriptor = nd
		} else {
			add.Add = img
		}
		out = mutate.AppendManifests(out, add)
	}
	if len(res.platforms) == 0 {
		return nil, errors.New("index has no image for the selected platform")
	}
	if changed && !e.req.DryRun {
		if len(m.Annotations) > 0 {
			if ann, ok := mutate.Annotations(out, m.Annotations).(v1.ImageIndex); ok {
				out = ann
			}
		}
		res.index = out
	}
	return res, nil
}

// PlatformImages returns the images of idx that a patch of it patches, in
// the index's order (only: of that platform; nil: all of them). The
// workflow engine scans exactly these before and after a patch.
func PlatformImages(idx v1.ImageIndex, only *v1.Platform) ([]v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var out []v1.Image
	for _, d := range m.Manifests {
		img, err := patchable(idx, d, only)
		if err != nil {
			return nil, err
		}
		if img != nil {
			out = append(out, img)
		}
	}
	return out, nil
}

// patchable returns the image d names when it is one to patch: a
// runnable image (imgref's rule: not a signature, SBOM or other artifact;
// not a build attestation under platform unknown/unknown) of the selected
// platform. Nil means: keep the entry as it is.
func patchable(idx v1.ImageIndex, d v1.Descriptor, only *v1.Platform) (v1.Image, error) {
	if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" || (only != nil && !d.Platform.Satisfies(*only)) {
		return nil, nil
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("read %s image: %w", d.Platform, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("read %s image: %w", d.Platform, err)
	}
	m, err := imgref.ParseManifest(string(d.MediaType), raw)
	if err != nil {
		return nil, fmt.Errorf("%s image: %w", d.Platform, err)
	}
	if m.Kind() != imgref.KindImage {
		return nil, nil
	}
	return img, nil
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
