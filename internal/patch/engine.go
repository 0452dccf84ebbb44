package patch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/cache"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/version"
)

// engine is one Run's settings, shared by its platforms.
type engine struct {
	o       *options
	req     Request
	sandbox backend.Sandbox
	images  *cache.Dir // layer indexes and files, by layer digest; nil: none
}

// imageRun is the outcome of patching one platform image: its result,
// the new image (nil when nothing changed or in a dry run) and the
// changeset spooling the new layer, to be closed once written.
type imageRun struct {
	res   PlatformResult
	image v1.Image
	cs    *layer.Changeset
}

func (r *imageRun) close() {
	if r != nil && r.cs != nil {
		r.cs.Close()
	}
}

// osFiles are the files osinfo.Detect reads.
var osFiles = []string{"etc/os-release", "usr/lib/os-release", "etc/debian_version", "etc/alpine-release",
	"etc/centos-release", "etc/redhat-release"}

// keep picks the files kept while the layers are read: the OS identity
// and what any backend needs.
func (e *engine) keep(p string) bool {
	if slices.Contains(osFiles, p) {
		return true
	}
	for _, b := range e.o.backends {
		if b.Needs(p) {
			return true
		}
	}
	return false
}

// image plans and, unless a dry run, builds the patched image of img.
func (e *engine) image(ctx context.Context, img v1.Image) (_ *imageRun, err error) {
	run := &imageRun{}
	defer func() {
		if err != nil {
			run.close()
		}
	}()
	timings := map[string]time.Duration{}
	phase := func(name string, start time.Time) { timings[name] += time.Since(start) }
	defer func() {
		run.res.Seconds = map[string]float64{}
		for k, v := range timings {
			run.res.Seconds[k] = v.Seconds()
		}
	}()
	plan := &run.res.Plan
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	var plat v1.Platform
	if p := cf.Platform(); p != nil {
		plat = *p
	}
	plan.Platform = platformString(plat)
	report := func(ev Event) { ev.Platform = plan.Platform; e.o.progress(ev) }
	if e.sandbox.Mode() == SandboxAlways {
		if err := e.sandbox.Available(plat); err != nil {
			return nil, fmt.Errorf("--sandbox always: %w", err)
		}
	}

	start := time.Now()
	report(Event{Phase: "read"})
	// The layers the read decompresses are kept, uncompressed, for the
	// sandbox's tree when it is extracted ahead: decompressed once.
	preparer := e.preparesAhead(plat)
	fsys, lc, err := e.readImage(ctx, img, preparer != nil)
	if err != nil {
		return nil, refused(err)
	}
	defer fsys.Close()
	if lc != nil {
		defer lc.release()
	}
	snap, err := inspect(ctx, fsys, e.o.scanLimits)
	if err != nil {
		return nil, err
	}
	osi := snap.OS
	plan.OS = strings.TrimSpace(osi.PrettyName)
	if plan.OS == "" {
		plan.OS = osi.ID + " " + osi.VersionID
	}
	be := e.o.backends[osi.Family]
	if be == nil {
		return nil, fmt.Errorf("%s: %w (drydock patches Debian and Ubuntu images)", plan.OS, ErrUnsupported)
	}
	if err := e.checkSupport(osi, plan); err != nil {
		return nil, err
	}
	// The sandbox's tree needs only the image: with WithSandboxAhead it is
	// extracted while the indexes and packages download, and the scripts
	// wait for it only if they run in the sandbox.
	prep := e.prepareSandbox(ctx, preparer, spooledImage{Image: img, fsys: fsys})
	defer prep.stop()
	sess, err := be.Open(ctx, backend.Target{
		Image: img, FS: fsys, OS: osi, Platform: plat, Repositories: e.req.Repositories, Sandbox: e.sandbox,
		CacheDir: filepath.Join(e.o.cacheDir, be.Ecosystem()), CacheSize: e.o.limits.Packages, HTTP: e.o.http, TempDir: e.o.tempDir, Log: e.o.log, Progress: report,
	})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	cmp, err := version.For(be.Ecosystem())
	if err != nil {
		return nil, err
	}
	want := e.req.Packages
	if e.req.Mode == VulnerableOnly {
		if want, err = e.fixable(ctx, snap, cmp); err != nil {
			return nil, err
		}
	}
	phase("read", start)

	start = time.Now()
	report(Event{Phase: "index"})
	if err := sess.Refresh(ctx); err != nil {
		return nil, err
	}
	phase("index", start)

	start = time.Now()
	report(Event{Phase: "resolve"})
	names, requested := e.wanted(sess.Updates(), sess.Installed(), want, cmp, plan)
	changes, err := sess.Resolve(ctx, names)
	if err != nil {
		return nil, err
	}
	for i := range changes {
		changes[i].Requested = requested[changes[i].Package]
	}
	plan.Changes = changes
	phase("resolve", start)
	if len(plan.Changes) == 0 {
		plan.Reason = "every installed package is at the newest version the repositories offer"
		if e.req.Mode != UpdateAll {
			plan.Reason = "no package with a fixable finding has an update available"
			if len(want) == 0 {
				plan.Reason = "the report has no fixable OS-package findings"
				if e.req.Mode == VulnerableOnly {
					plan.Reason = "drydock's scan finds no fixable OS-package vulnerability"
				}
			}
		}
		return run, nil
	}
	if e.req.DryRun {
		return run, nil
	}

	if run.cs, err = layer.New(e.o.tempDir); err != nil {
		return nil, err
	}
	applied, err := sess.Apply(ctx, plan.Changes, run.cs)
	if applied != nil {
		run.res.Scripts = applied.Scripts
		maps.Copy(timings, applied.Timings)
	}
	if err != nil {
		return nil, err
	}

	start = time.Now()
	report(Event{Phase: "layer"})
	if err := e.appendLayer(img, run, applied.Mtime); err != nil {
		return nil, err
	}
	phase("layer", start)
	return run, nil
}

// sandboxPrep is the sandbox's preparation of an image (its tree
// extracted into the cache) running beside the rest of the patch.
type sandboxPrep struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// preparesAhead returns the sandbox to prepare images in ahead when the
// caller asked for it (WithSandboxAhead) and scripts may run in it: not
// in a dry run, nor with the sandbox off or unavailable for the image's
// platform; nil otherwise.
func (e *engine) preparesAhead(plat v1.Platform) backend.Preparer {
	p, ok := e.sandbox.(backend.Preparer)
	if !ok || !e.o.sandboxAhead || e.req.DryRun || e.sandbox.Mode() == SandboxNever || e.sandbox.Available(plat) != nil {
		return nil
	}
	return p
}

// prepareSandbox starts p (nil: nothing to do) preparing img for the
// sandbox. Its errors are not the patch's: a Sandbox.Open that needs the
// tree waits for the preparation, or prepares it itself when that failed,
// and reports its own error.
func (e *engine) prepareSandbox(ctx context.Context, p backend.Preparer, img v1.Image) *sandboxPrep {
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	sp := &sandboxPrep{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		if err := p.Prepare(ctx, img); err != nil && ctx.Err() == nil {
			e.o.log.Debug("patch: preparing the sandbox ahead failed; the scripts will if they need it", "error", err)
		}
	}()
	return sp
}

// spooledImage is an image whose layers' uncompressed streams come from
// the copies its read spooled (rootfs.WithSpoolDir), checked there
// against their diff IDs, where there are such copies: the sandbox's
// extraction does not decompress those layers a second time. Everything
// else, the digest its tree is cached under included, is the image's.
// It is valid while fsys is open.
type spooledImage struct {
	v1.Image
	fsys *rootfs.FS
}

func (s spooledImage) Layers() ([]v1.Layer, error) {
	ls, err := s.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = l
		if r := s.fsys.Spooled(i); r != nil {
			out[i] = spooledLayer{Layer: l, tar: r}
		}
	}
	return out, nil
}

type spooledLayer struct {
	v1.Layer
	tar *io.SectionReader
}

// Uncompressed reads the spool through a buffer: archive/tar reads each
// 512-byte header by itself, one pread each.
func (l spooledLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bufio.NewReaderSize(io.NewSectionReader(l.tar, 0, l.tar.Size()), 1<<20)), nil
}

// stop ends the preparation (when the scripts did not need it, it is
// cancelled and leaves nothing) and waits for it.
func (sp *sandboxPrep) stop() {
	if sp != nil {
		sp.cancel()
		<-sp.done
	}
}

// wanted returns the packages to update: every candidate (UpdateAll) or
// those of want (name -> fixed version) whose candidate reaches the fixed
// version; the others are recorded as unavailable. A package not
// installed on this platform is left out.
func (e *engine) wanted(cands []backend.Update, installed []inventory.Package, want map[string]string, cmp version.Comparer, plan *Plan) ([]string, map[string]bool) {
	byName := map[string]backend.Update{}
	for _, c := range cands {
		byName[c.Name] = c
	}
	var names []string
	requested := map[string]bool{}
	if e.req.Mode == UpdateAll {
		for _, c := range cands {
			names = append(names, c.Name)
			requested[c.Name] = true
		}
		return names, requested
	}
	inst := map[string]string{}
	for _, p := range installed {
		inst[p.Name] = p.Version
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		v, ok := inst[name]
		if !ok {
			continue
		}
		fixed := want[name]
		c, ok := byName[name]
		if !ok || (fixed != "" && !atLeast(cmp, c.Candidate, fixed)) {
			u := Unavailable{Package: name, Installed: v, Wanted: fixed}
			if ok {
				u.Candidate = c.Candidate
			}
			plan.Unavailable = append(plan.Unavailable, u)
			if !ok {
				continue
			}
		}
		names = append(names, name)
		requested[name] = true
	}
	return names, requested
}

// atLeast reports a >= b; malformed versions compare as not reached.
func atLeast(cmp version.Comparer, a, b string) bool {
	c, err := cmp.Compare(a, b)
	return err == nil && c >= 0
}

// inspect is the validation the gate and the scanner run (scan.Inspect),
// within the same limits: an image whose layers try to escape the root
// (names climbing out with "..", NUL bytes), whose package database is
// missing or removed, or that is over a limit, is refused with the
// gate's words. Runtimes refuse hostile layers, and a patch must not
// bless such an image with a new digest; a hostile refusal is also
// ErrHostileImage, any other ErrUnsupported.
func inspect(ctx context.Context, fsys *rootfs.FS, limits scan.Limits) (*scan.Snapshot, error) {
	snap, err := scan.Inspect(ctx, fsys, limits)
	if err != nil {
		return nil, refused(err)
	}
	if snap.Unsupported != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, snap.Unsupported)
	}
	return snap, nil
}

// refused gives a refusal of the image (a *refusal.Error, from reading
// its layers or from inspect) the patcher's sentinel, which callers
// classify by: ErrHostileImage for a hostile image, ErrUnsupported for
// any other kind. Other errors (I/O, a cancelled context) stay as they
// are: retrying may mend them.
func refused(err error) error {
	kind, ok := refusal.KindOf(err)
	switch {
	case !ok:
		return err
	case kind == refusal.Hostile:
		return fmt.Errorf("%w: %w", ErrHostileImage, err)
	default:
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
}

// appendLayer adds the changeset as one layer with a history entry and
// lineage annotations.
func (e *engine) appendLayer(img v1.Image, run *imageRun, mtime time.Time) error {
	plan := &run.res.Plan
	l, err := run.cs.Layer()
	if err != nil {
		return err
	}
	if run.res.LayerSize, err = l.Size(); err != nil {
		return fmt.Errorf("build layer: %w", err)
	}
	ld, err := l.Digest()
	if err != nil {
		return fmt.Errorf("build layer: %w", err)
	}
	run.res.LayerDigest = ld.String()
	base, err := img.Digest()
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("drydock patch: %d packages updated: %s", len(plan.Changes), joinChanges(plan.Changes))
	out, err := mutate.Append(img, mutate.Addendum{
		Layer: l,
		History: v1.History{
			Created:   v1.Time{Time: mtime},
			CreatedBy: e.o.tool + " patch",
			Comment:   desc,
		},
		Annotations: map[string]string{"dev.drydock.patch.layer": "true"},
	})
	if err != nil {
		return err
	}
	ann := map[string]string{
		AnnotationBaseDigest: base.String(),
		AnnotationPatched:    joinChanges(plan.Changes),
		AnnotationTool:       e.o.tool,
	}
	if e.req.Image != "" {
		ann[AnnotationBaseName] = e.req.Image
	}
	if m, err := img.Manifest(); err == nil {
		for k, v := range m.Annotations {
			if _, ok := ann[k]; !ok {
				ann[k] = v
			}
		}
	}
	res, ok := mutate.Annotations(out, ann).(v1.Image)
	if !ok {
		return errors.New("annotate image: unexpected type")
	}
	d, err := res.Digest()
	if err != nil {
		return err
	}
	run.image, run.res.Digest = res, d.String()
	return nil
}

// retag returns img unchanged but for lineage annotations naming it as the
// base (no package changed): what Force writes when there is nothing to
// patch, so that a tag convention can still be followed.
func (e *engine) retag(img v1.Image) (v1.Image, error) {
	base, err := img.Digest()
	if err != nil {
		return nil, err
	}
	ann := map[string]string{AnnotationBaseDigest: base.String(), AnnotationPatched: "", AnnotationTool: e.o.tool}
	if e.req.Image != "" {
		ann[AnnotationBaseName] = e.req.Image
	}
	out, ok := mutate.Annotations(img, ann).(v1.Image)
	if !ok {
		return nil, errors.New("annotate image: unexpected type")
	}
	return out, nil
}

func joinChanges(cs []Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Package + "=" + c.To
	}
	return strings.Join(parts, ",")
}

func platformString(p v1.Platform) string {
	if p.OS == "" && p.Architecture == "" {
		return ""
	}
	return p.String()
}
