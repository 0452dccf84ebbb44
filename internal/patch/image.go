package patch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/rootfs"
)

// ImageResult is the outcome of patching one image (one platform).
type ImageResult struct {
	Plan Plan
	// Image is the patched image; nil when there was nothing to do or in
	// a dry run.
	Image v1.Image
	// Installed reports each package unpacked; Scripts how maintainer
	// scripts were handled.
	Installed []*apt.Installed
	Scripts   []apt.ScriptAction
	// LayerSize is the compressed size of the added layer.
	LayerSize int64
	Timings   map[string]time.Duration
}

// keepInMemory picks the files the patch reads from the image: package
// database, apt configuration and keys, OS identity, configuration files,
// CA certificates (a few hundred KB).
func keepInMemory(p string) bool {
	for _, pre := range []string{"var/lib/dpkg/", "etc/", "usr/share/keyrings/", "usr/lib/os-release",
		"usr/share/ca-certificates/", "usr/local/share/ca-certificates/", "usr/sbin/update-ca-certificates",
		"var/cache/debconf/config.dat"} {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// Image plans and, unless dryRun, builds the patched image of img.
// The returned cleanup must be called once the result image has been
// written: the new layer is read from a spool until then.
func Image(ctx context.Context, img v1.Image, dryRun bool, o Options) (_ *ImageResult, cleanup func(), err error) {
	o.defaults()
	cleanup = func() {}
	res := &ImageResult{Timings: map[string]time.Duration{}}
	phase := func(name string, start time.Time) { res.Timings[name] += time.Since(start) }
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, cleanup, fmt.Errorf("read image config: %w", err)
	}
	plat := cf.Platform()
	res.Plan.Platform = platformString(plat)
	arch, err := debArch(plat)
	if err != nil {
		return nil, cleanup, err
	}
	report := func(e Event) { e.Platform = res.Plan.Platform; o.Progress(e) }

	start := time.Now()
	report(Event{Phase: "read"})
	fsys, err := rootfs.New(ctx, img, rootfs.WithContents(keepInMemory))
	if err != nil {
		return nil, cleanup, fmt.Errorf("read image layers: %w", err)
	}
	defer fsys.Close()
	if err := checkHostile(fsys); err != nil {
		return nil, cleanup, err
	}
	osi, err := osinfo.Detect(fsys)
	if err != nil {
		return nil, cleanup, fmt.Errorf("identify the image's OS: %w", err)
	}
	res.Plan.OS = strings.TrimSpace(osi.PrettyName)
	if res.Plan.OS == "" {
		res.Plan.OS = osi.ID + " " + osi.VersionID
	}
	if osi.Family != osinfo.FamilyDebian {
		return nil, cleanup, fmt.Errorf("%s: %w (drydock patches Debian and Ubuntu images)", res.Plan.OS, ErrUnsupported)
	}
	if err := checkSupport(&o, osi, &res.Plan); err != nil {
		return nil, cleanup, err
	}
	dpkg, err := inventory.NewDpkg()
	if err != nil {
		return nil, cleanup, err
	}
	installed, err := dpkg.Analyze(ctx, fsys)
	if err != nil {
		return nil, cleanup, fmt.Errorf("read the dpkg database: %w", err)
	}
	phase("read", start)

	start = time.Now()
	report(Event{Phase: "index"})
	repo, err := apt.Open(ctx, fsys, osi, arch, o.Apt...)
	if err != nil {
		return nil, cleanup, err
	}
	if err := repo.Update(ctx); err != nil {
		return nil, cleanup, err
	}
	phase("index", start)

	start = time.Now()
	report(Event{Phase: "resolve"})
	inst := map[string]string{}
	for _, p := range installed {
		inst[p.Name] = p.Version
	}
	want, requested := wanted(&o, repo.Candidates(installed), inst, &res.Plan)
	resol, err := repo.Resolve(installed, want)
	if err != nil {
		return nil, cleanup, err
	}
	for _, s := range resol.Steps {
		res.Plan.Changes = append(res.Plan.Changes, Change{
			Package: s.Package, From: s.From, To: s.To, Suite: s.Suite, Reason: s.Reason,
			Size: s.Candidate.Size, URL: s.Candidate.URL(), Requested: requested[s.Package],
		})
	}
	phase("resolve", start)
	if len(res.Plan.Changes) == 0 {
		res.Plan.Reason = "every installed package is at the newest version the repositories offer"
		if o.Mode == FromReport {
			res.Plan.Reason = "no package with a fixable finding has an update available"
			if len(o.Wanted) == 0 {
				res.Plan.Reason = "the report has no fixable OS-package findings"
			}
		}
		return res, cleanup, nil
	}
	if dryRun {
		return res, cleanup, nil
	}

	start = time.Now()
	debs := make([]string, len(resol.Steps))
	var total, done int64
	for _, s := range resol.Steps {
		total += s.Candidate.Size
	}
	for i := range resol.Steps {
		s := &resol.Steps[i]
		report(Event{Phase: "download", Package: s.Package, Done: done, Total: total})
		if debs[i], err = repo.FetchDeb(ctx, &s.Candidate); err != nil {
			return nil, cleanup, err
		}
		done += s.Candidate.Size
	}
	report(Event{Phase: "download", Done: done, Total: total})
	phase("download", start)

	start = time.Now()
	report(Event{Phase: "unpack"})
	mtime, err := newestMtime(debs)
	if err != nil {
		return nil, cleanup, err
	}
	cs, err := layer.New(o.TempDir)
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = func() { cs.Close() }
	defer func() {
		if err != nil {
			cs.Close()
			cleanup = func() {}
		}
	}()
	u, err := apt.NewUnpacker(fsys, arch, cs, mtime)
	if err != nil {
		return nil, cleanup, err
	}
	for i, s := range resol.Steps {
		in, err := u.Install(ctx, apt.Install{Name: s.Package, Version: s.To, From: s.From, Deb: debs[i]})
		if err != nil {
			return nil, cleanup, err
		}
		res.Installed = append(res.Installed, in)
	}
	if err := u.Finish(); err != nil {
		return nil, cleanup, err
	}
	phase("unpack", start)

	start = time.Now()
	report(Event{Phase: "scripts"})
	actions, err := apt.RunScripts(ctx, apt.ScriptInput{
		Image: img, FS: fsys, Arch: arch, Changes: cs, Installed: res.Installed, Distroless: u.Distroless(), Mtime: mtime, TempDir: o.TempDir,
		Sandbox: o.Sandbox, Log: o.Logger,
	})
	res.Scripts = actions
	if err != nil {
		return nil, cleanup, err
	}
	phase("scripts", start)

	start = time.Now()
	report(Event{Phase: "layer"})
	res.Image, res.LayerSize, err = appendLayer(img, cs, &res.Plan, mtime, o)
	if err != nil {
		return nil, cleanup, err
	}
	phase("layer", start)
	report(Event{Phase: "done"})
	return res, cleanup, nil
}

// Retag returns img unchanged but for lineage annotations naming it as the
// base (no package changed): what --force writes when there is nothing to
// patch, so that a tag convention can still be followed.
func Retag(img v1.Image, o Options) (v1.Image, error) {
	o.defaults()
	base, err := img.Digest()
	if err != nil {
		return nil, err
	}
	ann := map[string]string{AnnotationBaseDigest: base.String(), AnnotationPatched: "", AnnotationTool: o.Tool}
	if o.BaseName != "" {
		ann[AnnotationBaseName] = o.BaseName
	}
	out, ok := mutate.Annotations(img, ann).(v1.Image)
	if !ok {
		return nil, errors.New("annotate image: unexpected type")
	}
	return out, nil
}

// ErrHostileImage is wrapped by the refusal to patch an image whose layers
// hold entries no honest image builder writes.
var ErrHostileImage = errors.New("image layers hold hostile entries")

// checkHostile refuses images whose layers try to escape the root (names
// climbing out with "..", NUL bytes): runtimes refuse such layers, and a
// patch must not bless them with a new digest.
func checkHostile(fsys *rootfs.FS) error {
	var bad []string
	for _, w := range fsys.Warnings() {
		if w.Hostile {
			bad = append(bad, w.String())
		}
	}
	if len(bad) == 0 {
		return nil
	}
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
	}
	return fmt.Errorf("%w: %s", ErrHostileImage, strings.Join(bad, "; "))
}

// newestMtime is the time given to generated files and the history entry:
// the newest file time of the installed packages, so that it depends only
// on the inputs.
func newestMtime(debs []string) (time.Time, error) {
	var t time.Time
	for _, d := range debs {
		m, err := apt.DebMtime(d)
		if err != nil {
			return t, err
		}
		if m.After(t) {
			t = m
		}
	}
	return t.UTC().Truncate(time.Second), nil
}

// appendLayer adds the changeset as one layer with a history entry and
// lineage annotations.
func appendLayer(img v1.Image, cs *layer.Changeset, plan *Plan, mtime time.Time, o Options) (v1.Image, int64, error) {
	l, err := cs.Layer()
	if err != nil {
		return nil, 0, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("build layer: %w", err)
	}
	base, err := img.Digest()
	if err != nil {
		return nil, 0, err
	}
	desc := fmt.Sprintf("drydock patch: %d packages updated: %s", len(plan.Changes), joinChanges(plan.Changes))
	out, err := mutate.Append(img, mutate.Addendum{
		Layer: l,
		History: v1.History{
			Created:   v1.Time{Time: mtime},
			CreatedBy: o.Tool + " patch",
			Comment:   desc,
		},
		Annotations: map[string]string{"dev.drydock.patch.layer": "true"},
	})
	if err != nil {
		return nil, 0, err
	}
	ann := map[string]string{
		AnnotationBaseDigest: base.String(),
		AnnotationPatched:    joinChanges(plan.Changes),
		AnnotationTool:       o.Tool,
	}
	if o.BaseName != "" {
		ann[AnnotationBaseName] = o.BaseName
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
		return nil, 0, errors.New("annotate image: unexpected type")
	}
	return res, size, nil
}
