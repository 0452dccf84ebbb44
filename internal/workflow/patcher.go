package workflow

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Patcher is the patch pipeline as the engine uses it: the library's one
// pipeline (internal/patch), never a second one. Its errors wrap
// patch.ErrEndOfLife and patch.ErrUnsupported where those apply.
type Patcher interface {
	Patch(ctx context.Context, req PatchRequest) (*PatchOutcome, error)
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
	// SecuritySuites are the InRelease URLs of the release's security
	// suites as the image's apt would fetch them (dry runs only).
	SecuritySuites []string `json:"security_suites,omitempty"`
}

// PatchOutcome is a patch's result. Image or Index is the patched
// artifact, nil when nothing changed or in a dry run; Cleanup must be
// called once it has been written.
type PatchOutcome struct {
	Platforms []PlatformOutcome
	Image     v1.Image
	Index     v1.ImageIndex
	Cleanup   func()
}

// LibraryPatcher is the Patcher over internal/patch's Image and Index.
type LibraryPatcher struct {
	// Apt options every patch uses (cache directory, host keyring).
	Apt []apt.Option
	// Mirror and SecurityMirror replace the images' archives (for images
	// without apt sources, such as distroless ones, or an offline mirror).
	Mirror, SecurityMirror string
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
	o := patch.Options{Mode: patch.UpdateAll, Releases: req.Releases, Sandbox: p.Sandbox, BaseName: req.BaseName,
		Tool: p.Tool, Logger: p.Logger, Clock: p.Clock}
	if req.Wanted != nil {
		o.Mode, o.Wanted = patch.FromReport, req.Wanted
	}
	o.Apt = append(o.Apt, p.Apt...)
	if p.Mirror != "" {
		o.Apt = append(o.Apt, apt.WithMirror(p.Mirror))
	}
	if p.SecurityMirror != "" {
		o.Apt = append(o.Apt, apt.WithSecurityMirror(p.SecurityMirror))
	}
	if req.HTTPClient != nil {
		o.Apt = append(o.Apt, apt.WithHTTPClient(req.HTTPClient))
	}
	last := ""
	o.Progress = func(e patch.Event) {
		if e.Phase == "download" {
			return // one line per package would drown the log
		}
		if line := strings.TrimSpace(e.Platform + ": " + e.Phase); line != last {
			last = line
			log(line)
		}
	}
	out := &PatchOutcome{Cleanup: func() {}}
	var results []*patch.ImageResult
	var images []v1.Image
	switch {
	case req.Index != nil:
		r, cleanup, err := patch.Index(ctx, req.Index, nil, req.DryRun, o)
		if err != nil {
			cleanup()
			return nil, err
		}
		out.Cleanup, results = cleanup, r.Platforms
		if r.Index != nil {
			out.Index = r.Index
		}
		if req.DryRun {
			if images, err = platformImages(req.Index); err != nil {
				return nil, err
			}
		}
	case req.Image != nil:
		r, cleanup, err := patch.Image(ctx, req.Image, req.DryRun, o)
		if err != nil {
			cleanup()
			return nil, err
		}
		out.Cleanup, results = cleanup, []*patch.ImageResult{r}
		if r.Image != nil {
			out.Image = r.Image
		}
		images = []v1.Image{req.Image}
	default:
		return nil, fmt.Errorf("patch request without an image")
	}
	for i, r := range results {
		po := PlatformOutcome{Platform: r.Plan.Platform, OS: r.Plan.OS, Support: r.Plan.Support, SupportEnd: r.Plan.SupportEnd, Reason: r.Plan.Reason}
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
		if req.DryRun && i < len(images) {
			suites, err := p.securitySuites(ctx, images[i])
			if err != nil {
				return nil, err
			}
			po.SecuritySuites = suites
		}
		out.Platforms = append(out.Platforms, po)
	}
	return out, nil
}

// platformImages returns the images patch.Index plans, in its order.
func platformImages(idx v1.ImageIndex) ([]v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var out []v1.Image
	for _, d := range m.Manifests {
		if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("read %s image: %w", d.Platform, err)
		}
		out = append(out, img)
	}
	return out, nil
}

// securitySuites lists the InRelease URLs of the security suites the
// image's apt (completed as the patcher completes it) updates from.
func (p *LibraryPatcher) securitySuites(ctx context.Context, img v1.Image) ([]string, error) {
	fsys, err := rootfs.New(ctx, img, rootfs.WithContents(func(name string) bool {
		return strings.HasPrefix(name, "etc/") || name == "usr/lib/os-release"
	}))
	if err != nil {
		return nil, fmt.Errorf("read image layers: %w", err)
	}
	defer fsys.Close()
	osi, err := osinfo.Detect(fsys)
	if err != nil || osi.Family != osinfo.FamilyDebian {
		return nil, nil //nolint:nilerr // the plan already said why this OS is not patched
	}
	srcs, err := apt.ReadSources(ctx, fsys)
	if err != nil {
		return nil, err
	}
	srcs, err = apt.CompleteSuites(srcs, osi.VersionCodename, apt.Archives{Mirror: p.Mirror, SecurityMirror: p.SecurityMirror, SameArchiveSecurity: osi.ID == "ubuntu"})
	if err != nil {
		return nil, nil //nolint:nilerr // no source: the plan says so
	}
	var out []string
	for _, s := range srcs {
		if IsSecuritySuite(s.Suite) && len(s.Components) > 0 {
			out = append(out, s.URI+"/dists/"+s.Suite+"/InRelease")
		}
	}
	return out, nil
}

// IsSecuritySuite reports a release's security suite: "bookworm-security"
// (Debian and Ubuntu), or "buster/updates" (Debian 10 and older).
func IsSecuritySuite(suite string) bool {
	return strings.HasSuffix(suite, "-security") || strings.HasSuffix(suite, "/updates")
}
