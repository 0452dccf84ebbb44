package patch

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/oci"
)

// Built is a patch made in memory by Build: its result and the patched
// image or index, not written anywhere. Close it once the artifact has
// been written (or dropped): the new layers are spooled until then.
type Built struct {
	Result
	// Image or Index is the patched artifact; both nil when nothing
	// changed (and Force did not ask for a re-tagged copy) or in a dry run.
	Image v1.Image
	Index v1.ImageIndex

	closers []func()
}

// Close releases the spooled layers. It is safe to call twice.
func (b *Built) Close() {
	if b == nil {
		return
	}
	for _, c := range b.closers {
		c()
	}
	b.closers = nil
}

func (b *Built) artifact() *oci.Artifact {
	switch {
	case b.Index != nil:
		return &oci.Artifact{Index: b.Index}
	case b.Image != nil:
		return &oci.Artifact{Image: b.Image}
	}
	return nil
}

// Build is Run for an image or index the caller has already opened
// (exactly one of img and idx), returning the patched artifact instead of
// writing it: the same pipeline, for callers that scan or compare the
// result before choosing its tag (the workflow engine). req.Image, which
// may be empty, names the input in the lineage annotations and the
// result; req.Output and
// req.Tag are not used. Result.Digest is the patched artifact's digest;
// Result.Output stays empty.
func Build(ctx context.Context, img v1.Image, idx v1.ImageIndex, req Request, opts ...Option) (*Built, error) {
	start := time.Now()
	if (img == nil) == (idx == nil) {
		return nil, fmt.Errorf("%w: Build takes exactly one image or index", ErrInvalidRequest)
	}
	named := req.Image != ""
	if !named {
		req.Image = "(unnamed)" // no name in the annotations
	}
	e, only, err := prepare(ctx, &req, opts)
	if err != nil {
		return nil, err
	}
	if !named {
		e.req.Image = ""
	}
	b, err := e.build(ctx, img, idx, only)
	if err != nil {
		return nil, err
	}
	e.o.progress(Event{Phase: "done"})
	b.Seconds = time.Since(start).Seconds()
	return b, nil
}

// prepare checks req, fills its defaults and makes the engine of one Run
// or Build.
func prepare(ctx context.Context, req *Request, opts []Option) (*engine, *v1.Platform, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, nil, err
	}
	if err := req.normalize(); err != nil {
		return nil, nil, err
	}
	only, err := req.platform()
	if err != nil {
		return nil, nil, err
	}
	if len(o.releases) == 0 && o.db != nil {
		if o.releases, err = LoadReleases(ctx, o.db, ""); err != nil {
			return nil, nil, err
		}
	}
	sb, err := o.sandbox(req.Sandbox)
	if err != nil {
		return nil, nil, err
	}
	e := &engine{o: o, req: *req, sandbox: sb}
	if e.images, err = o.imageCache(); err != nil {
		return nil, nil, err
	}
	return e, only, nil
}

// build patches img or idx: every selected platform, then, with Force and
// nothing to patch, a re-tagged copy of a single image.
func (e *engine) build(ctx context.Context, img v1.Image, idx v1.ImageIndex, only *v1.Platform) (_ *Built, err error) {
	b := &Built{Result: Result{Image: e.req.Image, DryRun: e.req.DryRun}}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if idx != nil {
		r, err := e.index(ctx, idx, only)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, r.close)
		for _, p := range r.platforms {
			b.Platforms = append(b.Platforms, p.res)
		}
		b.Index = r.index
	} else {
		r, err := e.image(ctx, img)
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, r.close)
		b.Platforms = []PlatformResult{r.res}
		b.Image = r.image
	}
	if b.Image == nil && b.Index == nil && e.req.Force && !e.req.DryRun {
		if idx != nil {
			return nil, fmt.Errorf("%w: force with nothing to patch: only single images are re-tagged; copy the index with \"drydock import\"", ErrInvalidRequest)
		}
		if b.Image, err = e.retag(img); err != nil {
			return nil, err
		}
	}
	if out := b.artifact(); out != nil && !e.req.DryRun {
		d, err := out.Digest()
		if err != nil {
			return nil, fmt.Errorf("digest of the patched image: %w", err)
		}
		b.Digest = d.String()
	}
	return b, nil
}
