package workflow

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Patcher is the patch pipeline as the engine uses it: the library's one
// pipeline (internal/patch), never a second one. Its errors wrap
// patch.ErrEndOfLife and patch.ErrUnsupported where those apply.
type Patcher interface {
	Patch(ctx context.Context, req PatchRequest) (*PatchOutcome, error)
	// Inspect reads one platform image's inventory as the patcher reads
	// the image (patch.Inspect): the engine's scans read layers the
	// patch then replays instead of reading them again.
	Inspect(ctx context.Context, img v1.Image) (*scan.Snapshot, error)
}

// PatchRequest asks for the patch (or, with DryRun, the plan) of one
// image or of every platform of an index.
type PatchRequest struct {
	// Image or Index is the input.
	Image v1.Image
	Index v1.ImageIndex
	// Wanted maps the packages to update to the version each must reach
	// ("" for any update); nil means every update the release offers.
	Wanted map[string]string
	DryRun bool
	// BaseName names the original in the lineage annotations.
	BaseName string
	// Releases is the distro-info data that decides end-of-life.
	Releases []vulndb.Release
	// HTTPClient fetches from the archive: the run's client, so that
	// images of one release share its Release files.
	HTTPClient *http.Client
	// Log receives progress lines for the task's log.
	Log func(string)
}

// PlatformOutcome is the plan (and, unless a dry run, what was done) for
// one platform.
type PlatformOutcome struct {
	Platform    string          `json:"platform"`
	OS          string          `json:"os"`
	Support     string          `json:"support,omitempty"`
	SupportEnd  string          `json:"support_end,omitempty"`
	Changes     []PackageChange `json:"changes,omitempty"`
	Unavailable []string        `json:"unavailable,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	// Sandboxed lists the maintainer scripts that ran in the sandbox
	// ("PACKAGE SCRIPT").
	Sandboxed []string `json:"sandboxed,omitempty"`
	// SecuritySuites are the InRelease URLs of the release's security
	// suites as the image's apt would fetch them (dry runs only).
	SecuritySuites []string `json:"security_suites,omitempty"`
	// Seconds is the time of each of the patcher's phases.
	Seconds map[string]float64 `json:"phase_seconds,omitempty"`
}

// PatchOutcome is a patch's result. Image or Index is the patched
// artifact, nil when nothing changed or in a dry run; Cleanup must be
// called once it has been written.
type PatchOutcome struct {
	Platforms []PlatformOutcome
	Image     v1.Image
	Index     v1.ImageIndex
	Cleanup   func()
	// Plans are the engine's plans, one per platform (what the patch's
	// provenance lists).
	Plans []patch.Plan
}

// LibraryPatcher is the Patcher over internal/patch's Build: patch.Run's
// pipeline, returning the patched artifact for the engine to scan and tag.
type LibraryPatcher struct {
	// Options every patch uses (cache directory and bounds, logger).
	Options []patch.Option
	// Mirror and SecurityMirror replace the images' archives (for images
	// without apt sources, such as distroless ones, or an offline mirror).
	Mirror, SecurityMirror string
	// HostKeyring is trusted for archives an image has no key for.
	HostKeyring string
	// Sandbox lets maintainer scripts drydock cannot apply natively run in
	// the sandbox.
	Sandbox bool
	Tool    string
	// Clock decides end-of-life, as the engine's scans do. Archive
	// signatures and Valid-Until dates are judged by the real time: they
	// are facts of the archive, not decisions.
	Clock  Clock
	Logger *slog.Logger
}

var _ Patcher = (*LibraryPatcher)(nil)

// Patch implements Patcher.
func (p *LibraryPatcher) Patch(ctx context.Context, req PatchRequest) (*PatchOutcome, error) {
	log := req.Log
	if log == nil {
		log = func(string) {}
	}
	r := patch.Request{Image: req.BaseName, Mode: patch.UpdateAll, DryRun: req.DryRun, Sandbox: patch.SandboxNever,
		Repositories: patch.Repositories{Mirror: p.Mirror, SecurityMirror: p.SecurityMirror, HostKeyring: p.HostKeyring}}
	if p.Sandbox {
		r.Sandbox = patch.SandboxAuto
	}
	if req.Wanted != nil {
		r.Mode, r.Packages = patch.FromReport, req.Wanted
	}
	opts := append([]patch.Option{patch.WithReleases(req.Releases)}, p.options()...)
	if req.HTTPClient != nil {
		opts = append(opts, patch.WithHTTPClient(req.HTTPClient))
	}
	last := ""
	opts = append(opts, patch.WithProgress(func(e patch.Event) {
		if e.Phase == "download" {
			return // one line per package would drown the log
		}
		line := e.Phase
		if e.Platform != "" {
			line = e.Platform + ": " + e.Phase
		}
		if line != last {
			last = line
			log(line)
		}
	}))
	if req.Image == nil && req.Index == nil {
		return nil, fmt.Errorf("patch request without an image")
	}
	b, err := patch.Build(ctx, req.Image, req.Index, r, opts...)
	if err != nil {
		return nil, err
	}
	out := &PatchOutcome{Image: b.Image, Index: b.Index, Cleanup: b.Close}
	var images []v1.Image
	if req.DryRun {
		if req.Index != nil {
			if images, err = patch.PlatformImages(req.Index, nil); err != nil {
				b.Close()
				return nil, err
			}
		} else {
			images = []v1.Image{req.Image}
		}
	}
	for i, r := range b.Platforms {
		out.Plans = append(out.Plans, r.Plan)
		po := PlatformOutcome{Platform: r.Plan.Platform, OS: r.Plan.OS, Support: r.Plan.Support, SupportEnd: r.Plan.SupportEnd, Reason: r.Plan.Reason,
			Seconds: r.Seconds}
		for _, c := range r.Plan.Changes {
			po.Changes = append(po.Changes, PackageChange{Package: c.Package, From: c.From, To: c.To, Suite: c.Suite})
		}
		for _, u := range r.Plan.Unavailable {
			cand := u.Candidate
			if cand == "" {
				cand = "none"
			}
			po.Unavailable = append(po.Unavailable, fmt.Sprintf("%s %s needs %s (the archive offers %s)", u.Package, u.Installed, u.Wanted, cand))
		}
		for _, s := range r.Scripts {
			if s.Action == "sandbox" {
				po.Sandboxed = append(po.Sandboxed, s.Package+" "+s.Script)
			}
		}
		if req.DryRun && i < len(images) {
			suites, err := p.securitySuites(ctx, images[i])
			if err != nil {
				b.Close()
				return nil, err
			}
			po.SecuritySuites = suites
		}
		out.Platforms = append(out.Platforms, po)
	}
	return out, nil
}

// options are the patch options every call of p uses.
func (p *LibraryPatcher) options() []patch.Option {
	opts := slices.Clone(p.Options)
	if p.Tool != "" {
		opts = append(opts, patch.WithTool(p.Tool))
	}
	if p.Logger != nil {
		opts = append(opts, patch.WithLogger(p.Logger))
	}
	if p.Clock != nil {
		opts = append(opts, patch.WithClock(p.Clock))
	}
	return opts
}

// Inspect implements Patcher.
func (p *LibraryPatcher) Inspect(ctx context.Context, img v1.Image) (*scan.Snapshot, error) {
	var out *scan.Snapshot
	err := patch.Inspect(ctx, img, func(_ fs.FS, snap *scan.Snapshot) error {
		out = snap
		return nil
	}, p.options()...)
	return out, err
}

// securitySuites lists the InRelease URLs of the security suites the
// image's apt (completed as the patcher completes it) updates from. The
// layers are replayed from the patcher's layer cache: the plan has just
// read them.
func (p *LibraryPatcher) securitySuites(ctx context.Context, img v1.Image) (out []string, err error) {
	err = patch.Inspect(ctx, img, func(fsys fs.FS, _ *scan.Snapshot) error {
		out, err = suitesOf(ctx, fsys, archive.Archives{Mirror: p.Mirror, SecurityMirror: p.SecurityMirror})
		return err
	}, p.options()...)
	if err != nil {
		return nil, fmt.Errorf("read image layers: %w", err)
	}
	return out, nil
}

// suitesOf lists the InRelease URLs of the security suites of the image
// whose files fsys holds.
func suitesOf(ctx context.Context, fsys fs.FS, arch archive.Archives) ([]string, error) {
	osi, err := osinfo.Detect(fsys)
	if err != nil || osi.Family != osinfo.FamilyDebian {
		return nil, nil //nolint:nilerr // the plan already said why this OS is not patched
	}
	srcs, err := archive.ReadSources(ctx, fsys)
	if err != nil {
		return nil, err
	}
	arch.SameArchiveSecurity = osi.ID == "ubuntu"
	srcs, err = archive.CompleteSuites(srcs, osi.VersionCodename, arch)
	if err != nil {
		return nil, nil //nolint:nilerr // no source: the plan says so
	}
	var out []string
	for _, s := range srcs {
		if archive.IsSecuritySuite(s.Suite) && len(s.Components) > 0 {
			out = append(out, s.URI+"/dists/"+s.Suite+"/InRelease")
		}
	}
	return out, nil
}
