// Package patch is drydock's patch engine: plan -> fetch -> build layer ->
// mutate image. It reads an image's OS and packages through a merged view
// of its layers, asks the distribution's backend (internal/patch/apt for
// Debian and Ubuntu) for the updates to install, and returns a new image
// with ONE added layer holding exactly what the package manager would have
// changed. Nothing of the image is executed unless a maintainer script
// needs it and a sandbox is allowed (see apt's script policy).
//
// Results are reproducible: the layer's entries are sorted, their times
// come from the packages (generated files get the newest package time),
// owners from the packages, so the same image and the same package
// versions give the same digest.
package patch

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Mode says which packages a patch updates.
type Mode string

// Modes.
const (
	// UpdateAll installs every update the release's suites offer.
	UpdateAll Mode = "update-all"
	// FromReport updates the packages with fixable findings of a report
	// (Trivy JSON, as Copa's -r reads, or drydock's own scan).
	FromReport Mode = "report"
)

// Annotations the patched image's manifest carries (lineage).
const (
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationPatched    = "dev.drydock.patch.packages"
	AnnotationTool       = "dev.drydock.patch.tool"
)

// ErrEndOfLife is wrapped by the refusal to patch a release whose support
// has ended (see Options.AllowEOL).
var ErrEndOfLife = errors.New("release is end-of-life")

// ErrUnsupported is wrapped when the image's OS has no patch backend.
var ErrUnsupported = errors.New("unsupported OS for patching")

// Clock supplies the time that decides end-of-life.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options configure a patch.
type Options struct {
	Mode Mode
	// Wanted is, for FromReport, the report's fixable packages: binary
	// package name -> the fixed version the report asks for.
	Wanted map[string]string
	// Releases is the distro-info data deciding end-of-life (from the
	// vulnerability DB or the host's distro-info-data).
	Releases []vulndb.Release
	AllowEOL bool
	Clock    Clock
	// Apt options: mirror, keyrings, cache, HTTP client.
	Apt []apt.Option
	// Sandbox allows running maintainer scripts drydock cannot handle
	// natively in a sandbox (images of the host's architecture only).
	Sandbox bool
	// TempDir holds spooled layer content (default os.TempDir()).
	TempDir string
	// BaseName names the input in the lineage annotations.
	BaseName string
	// Tool is the patch tool and version recorded in the image.
	Tool   string
	Logger *slog.Logger
	// Progress receives phase changes and download progress.
	Progress func(Event)
}

// Event is a progress report.
type Event struct {
	Platform string
	Phase    string // "read", "index", "resolve", "download", "unpack", "scripts", "layer", "done"
	Package  string
	Done     int64
	Total    int64
}

func (o *Options) defaults() {
	if o.Mode == "" {
		o.Mode = UpdateAll
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Progress == nil {
		o.Progress = func(Event) {}
	}
	if o.Tool == "" {
		o.Tool = "drydock"
	}
}

// Change is one package change of a plan.
type Change struct {
	Package   string `json:"package"`
	From      string `json:"from,omitempty"` // "" for a new package
	To        string `json:"to"`
	Suite     string `json:"suite"`
	Reason    string `json:"reason"`
	Size      int64  `json:"download_size"`
	URL       string `json:"url"`
	Requested bool   `json:"requested"`
}

// Unavailable is a wanted fix the repositories do not offer yet.
type Unavailable struct {
	Package   string `json:"package"`
	Installed string `json:"installed"`
	Wanted    string `json:"wanted"`
	Candidate string `json:"candidate,omitempty"` // the best version offered, if any
}

// Plan is what a patch of one platform would do.
type Plan struct {
	Platform    string        `json:"platform"`
	OS          string        `json:"os"`
	Support     string        `json:"support"`
	SupportEnd  string        `json:"support_end,omitempty"`
	Changes     []Change      `json:"changes"`
	Unavailable []Unavailable `json:"unavailable,omitempty"`
	// Reason says why nothing is to be done, when Changes is empty.
	Reason string `json:"reason,omitempty"`
}

// DownloadSize sums the plan's .deb sizes.
func (p *Plan) DownloadSize() int64 {
	var n int64
	for _, c := range p.Changes {
		n += c.Size
	}
	return n
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// debArch maps an OCI architecture to Debian's name.
func debArch(p *v1.Platform) (string, error) {
	if p == nil {
		return "", errors.New("image config has no architecture")
	}
	switch p.Architecture {
	case "amd64", "arm64", "s390x", "riscv64":
		return p.Architecture, nil
	case "ppc64le":
		return "ppc64el", nil
	case "mips64le":
		return "mips64el", nil
	case "386":
		return "i386", nil
	case "arm":
		switch p.Variant {
		case "v7", "":
			return "armhf", nil
		case "v5", "v6":
			return "armel", nil
		}
	}
	return "", fmt.Errorf("architecture %s is not a Debian architecture", platformString(p))
}

// checkSupport refuses end-of-life releases unless allowed.
func checkSupport(o *Options, osi osinfo.OS, plan *Plan) error {
	sup := osinfo.Lifecycle(osi, o.Releases, o.Clock.Now())
	plan.Support = string(sup.State)
	if !sup.Until.IsZero() {
		plan.SupportEnd = sup.Until.Format(time.DateOnly)
	}
	if !sup.Ended() {
		if sup.State == osinfo.StateUnknown && len(o.Releases) == 0 {
			o.Logger.Warn("patch: no distro-info data: cannot tell whether the release is end-of-life", "os", plan.OS)
		}
		return nil
	}
	// The end of public support: LTS for Debian, standard support for
	// Ubuntu (ELTS/ESM are not in the public archive).
	end := sup.Release.EOLLTS
	if end.IsZero() {
		end = sup.Release.EOL
	}
	if !end.IsZero() {
		plan.SupportEnd = end.Format(time.DateOnly)
	}
	if o.AllowEOL {
		o.Logger.Warn("patch: patching an end-of-life release (--allow-eol)", "os", plan.OS, "support_ended", plan.SupportEnd)
		return nil
	}
	return fmt.Errorf("%s: public security support ended on %s (%s); the archive receives no more fixes: %w (use --allow-eol to patch from what the mirror still has)",
		plan.OS, plan.SupportEnd, sup.State, ErrEndOfLife)
}

// wanted returns the packages to update: every candidate (UpdateAll) or
// those of the report whose candidate reaches the fixed version; the
// others are recorded as unavailable.
func wanted(o *Options, cands []apt.Update, installed map[string]string, plan *Plan) ([]string, map[string]bool) {
	byName := map[string]apt.Update{}
	for _, c := range cands {
		byName[c.Name] = c
	}
	var want []string
	requested := map[string]bool{}
	if o.Mode == UpdateAll {
		for _, c := range cands {
			want = append(want, c.Name)
			requested[c.Name] = true
		}
		return want, requested
	}
	for _, name := range slices.Sorted(maps.Keys(o.Wanted)) {
		inst, ok := installed[name]
		if !ok {
			continue // not installed on this platform
		}
		fixed := o.Wanted[name]
		c, ok := byName[name]
		if !ok || (fixed != "" && !apt.VersionAtLeast(c.Candidate.Version, fixed)) {
			u := Unavailable{Package: name, Installed: inst, Wanted: fixed}
			if ok {
				u.Candidate = c.Candidate.Version
			}
			plan.Unavailable = append(plan.Unavailable, u)
			if !ok {
				continue
			}
		}
		want = append(want, name)
		requested[name] = true
	}
	return want, requested
}

func joinChanges(cs []Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Package + "=" + c.To
	}
	return strings.Join(parts, ",")
}
