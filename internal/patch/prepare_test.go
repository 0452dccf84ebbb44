package patch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/testimage"
)

// preparer is a sandbox that records its preparations and holds each
// until its context ends; no script of the test needs it to run.
type preparer struct {
	mu       sync.Mutex
	prepared []v1.Hash
	ended    int // preparations whose context had ended when they returned
	spooled  int // layers served from the read's spool files
	bad      []string
}

func (p *preparer) Mode() backend.SandboxMode   { return SandboxAuto }
func (p *preparer) Available(v1.Platform) error { return nil }
func (p *preparer) Open(context.Context, v1.Image, *layer.Changeset) (backend.Tree, error) {
	return nil, errors.New("the test's scripts need no sandbox")
}

func (p *preparer) Prepare(ctx context.Context, img v1.Image) error {
	d, err := img.Digest()
	if err != nil {
		return err
	}
	// Read every layer's uncompressed stream as the sandbox's extraction
	// does, and check it is the layer's.
	spooled, bad := checkLayers(img)
	p.mu.Lock()
	p.prepared = append(p.prepared, d)
	p.spooled += spooled
	p.bad = append(p.bad, bad...)
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.ended++
	p.mu.Unlock()
	return ctx.Err()
}

// checkLayers reads each of img's layers uncompressed and returns how
// many came from spool files and what did not match the config's diff IDs.
func checkLayers(img v1.Image) (spooled int, bad []string) {
	ls, err := img.Layers()
	if err != nil {
		return 0, []string{err.Error()}
	}
	cf, err := img.ConfigFile()
	if err != nil || len(cf.RootFS.DiffIDs) != len(ls) {
		return 0, []string{fmt.Sprintf("config: %v", err)}
	}
	for i, l := range ls {
		if _, ok := l.(spooledLayer); ok {
			spooled++
		}
		rc, err := l.Uncompressed()
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || h != cf.RootFS.DiffIDs[i] {
			bad = append(bad, fmt.Sprintf("layer %d: uncompressed %v, want diff ID %v (%v)", i, h, cf.RootFS.DiffIDs[i], err))
		}
	}
	return spooled, bad
}

// TestPrepareSandboxAhead: a patch with WithSandboxAhead starts preparing
// the image for the sandbox (beside the downloads; without it, nothing
// is prepared ahead), and when no script needs it the
// preparation is cancelled and has ended by the time the patch returns;
// a dry run prepares nothing. With an empty layer cache, the layers the
// read decompressed reach the preparation from its spool files, each
// the layer's own (its diff ID), and none is decompressed again.
func TestPrepareSandboxAhead(t *testing.T) {
	_, base := openBase(t, testimage.BookwormNginx)
	base, err := testimage.Downgraded(base, "libssl3")
	if err != nil {
		t.Fatal(err)
	}
	want, err := base.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dry, ahead bool }{{true, true}, {false, true}, {false, false}} {
		dry := tc.dry
		p := &preparer{}
		withFake := func(o *options) error {
			o.sandbox = func(SandboxMode) (backend.Sandbox, error) { return p, nil }
			return nil
		}
		opts := []Option{withFake}
		if tc.ahead {
			// An empty cache: the read decompresses every layer.
			opts = append(opts, WithSandboxAhead(), WithCacheDir(t.TempDir()))
		}
		res := patchOf(t, base, Request{Mode: FromReport, DryRun: dry, Packages: map[string]string{"libssl3": ""}}, opts...)
		if len(res.res.Plan.Changes) != 1 {
			t.Fatalf("plan: %+v", res.res.Plan.Changes)
		}
		p.mu.Lock()
		prepared, ended, spooled, bad := p.prepared, p.ended, p.spooled, p.bad
		p.mu.Unlock()
		layers, err := base.Layers()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case dry && len(prepared) != 0:
			t.Errorf("a dry run prepared %v", prepared)
		case !tc.ahead && len(prepared) != 0:
			t.Errorf("prepared %v without WithSandboxAhead", prepared)
		case !dry && tc.ahead && (len(prepared) != 1 || prepared[0] != want):
			t.Errorf("prepared %v, want the image %s once", prepared, want)
		case ended != len(prepared):
			t.Errorf("%d of %d preparations still running when the patch returned", len(prepared)-ended, len(prepared))
		case len(bad) > 0:
			t.Errorf("the preparation read wrong layers: %v", bad)
		case len(prepared) == 1 && spooled != len(layers):
			t.Errorf("%d of the %d layers came from the read's spool files: the others were decompressed again", spooled, len(layers))
		}
	}
}
