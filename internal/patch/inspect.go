package patch

import (
	"context"
	"errors"
	"io/fs"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/scan"
)

// Inspect reads img's layers as Build does, through the layer cache of
// WithCacheDir (an image read before is replayed from its records, not
// decompressed again), validates them as the gate does (scan.Inspect
// within WithLimits) and calls fn with the merged root filesystem (the
// files the patcher keeps: the OS identity, the package database, the
// package sources) and the image's inventory. A caller that scans an
// image and then patches it (the workflow engine) reads its layers once.
// An OS drydock does not know is a snapshot with Unsupported set, as the
// scanner stores it; a refused image is ErrHostileImage or
// ErrUnsupported, as Build's refusal. fn must not keep fsys.
func Inspect(ctx context.Context, img v1.Image, fn func(fsys fs.FS, snap *scan.Snapshot) error, opts ...Option) error {
	if img == nil || fn == nil {
		return errors.New("patch.Inspect: no image or no function")
	}
	o, err := makeOptions(opts)
	if err != nil {
		return err
	}
	e := &engine{o: o}
	if e.images, err = o.imageCache(); err != nil {
		return err
	}
	fsys, lc, err := e.readImage(ctx, img, false)
	if err != nil {
		return refused(err)
	}
	defer fsys.Close()
	if lc != nil {
		defer lc.release()
	}
	snap, err := scan.Inspect(ctx, fsys, o.scanLimits)
	if err != nil {
		return refused(err)
	}
	return fn(fsys, snap)
}
