// Package patch is drydock's patch engine: one call, Run, that the CLI,
// the JSON API and the workflow engine share. It opens the input (a
// registry reference, an image on the drydock server, an OCI layout or an
// archive), chooses the packages to update (every update, the fixable
// packages of a report, or those drydock's own scan finds fixable), patches
// every platform of an index, writes the result and tags it, reporting
// progress on the way.
//
// For each platform image it reads the OS and packages through a merged
// view of the layers, asks the OS family's backend (internal/patch/backend;
// internal/patch/apt for Debian and Ubuntu) for the updates, and returns a
// new image with ONE added layer holding exactly what the package manager
// would have changed. Nothing of the image is executed unless a maintainer
// script must run; then it runs in the sandbox (internal/patch/sandbox), as
// the request's sandbox mode allows.
//
// Results are reproducible: the layer's entries are sorted, their times
// come from the packages (generated files get the newest package time),
// owners from the packages, so the same image and the same package
// versions give the same digest.
package patch

import (
	"errors"
	"time"

	"github.com/drydock-project/drydock/internal/patch/backend"
)

// Mode says which packages a patch updates.
type Mode string

// Modes.
const (
	// UpdateAll installs every update the release's suites offer.
	UpdateAll Mode = "update-all"
	// FromReport updates the packages Request.Packages names (the fixable
	// packages of a Trivy or drydock report: see ParseReport).
	FromReport Mode = "report"
	// VulnerableOnly updates the packages drydock's own scan of the image
	// finds fixable vulnerabilities in (WithVulnDB).
	VulnerableOnly Mode = "vulnerable-only"
)

// Annotations the patched image's manifest carries (lineage).
const (
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationPatched    = "dev.drydock.patch.packages"
	AnnotationTool       = "dev.drydock.patch.tool"
)

// SandboxMode says when image code may run in the sandbox.
type SandboxMode = backend.SandboxMode

// Sandbox modes: auto (the default) runs in the sandbox the scripts that
// must run; always runs every script drydock does not reproduce natively
// there; never runs nothing of the image.
const (
	SandboxAuto   = backend.SandboxAuto
	SandboxAlways = backend.SandboxAlways
	SandboxNever  = backend.SandboxNever
)

// Repositories overrides where packages come from and how they are
// trusted.
type Repositories = backend.Repositories

// Request is one patch: what to read, what to update, where to write. It
// is plain data (JSON), as the API and the workflow engine store it.
type Request struct {
	// Image is the input: REF (a registry reference), quarantine/NAME[:TAG]
	// or live/NAME[:TAG] on the drydock server (WithServer),
	// oci:DIR[:TAG], oci-archive:FILE[:TAG] or
	// docker-archive:FILE[:NAME:TAG|:@N].
	Image string `json:"image"`
	// Output is where the result goes: REF, quarantine/NAME[:TAG],
	// oci:DIR[:TAG] or docker-archive:FILE. Empty: next to the input (the
	// same repository or layout; a live/ image goes to quarantine/).
	Output string `json:"output,omitempty"`
	// Tag is the result's tag; empty: the input's tag + "-patched".
	Tag string `json:"tag,omitempty"`
	// Platform limits an index to one platform: os/arch[/variant].
	Platform string `json:"platform,omitempty"`
	// Mode says what to update.
	Mode Mode `json:"mode"`
	// Packages is, for FromReport, the packages to update: name -> the
	// fixed version a finding asks for ("" for any newer version).
	Packages map[string]string `json:"packages,omitempty"`
	// DryRun plans and writes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Force writes the input, with lineage annotations, when there is
	// nothing to patch (single images only).
	Force bool `json:"force,omitempty"`
	// AllowEOL patches a release whose support has ended from what its
	// archive still has.
	AllowEOL bool `json:"allow_eol,omitempty"`
	// Sandbox says when maintainer scripts may run; "" is auto.
	Sandbox SandboxMode `json:"sandbox,omitempty"`
	// Repositories overrides the image's package sources and trust.
	Repositories Repositories `json:"repositories,omitzero"`
}

// Change is one package change of a plan.
type Change = backend.Change

// ScriptAction records how one maintainer script or trigger was handled.
type ScriptAction = backend.ScriptAction

// Event is a progress report.
type Event = backend.Event

// Unavailable is a wanted fix the repositories do not offer yet.
type Unavailable struct {
	Package   string `json:"package"`
	Installed string `json:"installed"`
	Wanted    string `json:"wanted"`
	Candidate string `json:"candidate,omitempty"` // the best version offered, if any
}

// Plan is what a patch of one platform does.
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

// DownloadSize sums the plan's package sizes.
func (p *Plan) DownloadSize() int64 {
	var n int64
	for _, c := range p.Changes {
		n += c.Size
	}
	return n
}

// PlatformResult is the outcome for one platform image.
type PlatformResult struct {
	Plan Plan `json:"plan"`
	// Digest is the patched image's digest; empty when nothing changed.
	Digest string `json:"digest,omitempty"`
	// LayerDigest and LayerSize describe the added layer (compressed).
	LayerDigest string         `json:"layer_digest,omitempty"`
	LayerSize   int64          `json:"layer_size,omitempty"`
	Scripts     []ScriptAction `json:"scripts,omitempty"`
	// Seconds is the time of each phase.
	Seconds map[string]float64 `json:"phase_seconds,omitempty"`
}

// Result is the outcome of a Run.
type Result struct {
	Image     string           `json:"image"`
	DryRun    bool             `json:"dry_run"`
	Platforms []PlatformResult `json:"platforms"`
	// Output and Digest name what was written; empty when nothing was.
	Output string `json:"output,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Seconds is the whole run's time.
	Seconds float64 `json:"seconds"`
}

// ErrEndOfLife is wrapped by the refusal to patch a release whose support
// has ended (see Request.AllowEOL).
var ErrEndOfLife = errors.New("release is end-of-life")

// ErrUnsupported is wrapped when the image's OS has no patch backend.
var ErrUnsupported = errors.New("unsupported OS for patching")

// ErrInvalidRequest is wrapped by the refusal of a request that is wrong
// in itself (a bad mode, tag, platform or output), before anything is
// read.
var ErrInvalidRequest = errors.New("invalid patch request")

// ErrScripts is wrapped by the refusal of a patch whose maintainer scripts
// must run and cannot (a *backend.ScriptError).
var ErrScripts = backend.ErrScripts

// ErrHostileImage is wrapped by the refusal to patch an image whose layers
// hold entries no honest image builder writes.
var ErrHostileImage = errors.New("image layers hold hostile entries")

// Clock supplies the time that decides end-of-life.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
