// Package backend is the contract between drydock's patch engine
// (internal/patch) and the package managers it drives: one Backend per OS
// family, chosen by the image's canonical OS (osinfo.Family), as Copa picks
// a package manager per distribution. internal/patch/apt serves Debian and
// Ubuntu; an Alpine or RPM backend is one new package implementing Backend.
//
// The engine owns everything that is the same for every distribution:
// opening the input, the merged view of each platform image, OS detection
// and end-of-life, choosing packages (update-all, a report's fixable
// packages, drydock's own scan), the one new layer and the image it makes,
// writing and tagging. A backend owns its package manager's world: its
// database, repositories and their trust, dependency resolution, unpacking
// and maintainer scripts. The types here speak in neutral terms —
// packages, versions, suites, changes, script actions — so neither side
// needs the other's vocabulary.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/layer"
)

// Backend is one OS family's package manager.
type Backend interface {
	// Ecosystem names the version order of the backend's packages, as
	// internal/version.For takes it ("deb", "apk", "rpm").
	Ecosystem() string
	// Needs reports whether the backend reads the image file at path (an
	// fs.FS path): the engine keeps those files' contents while it reads
	// the layers, and caches them. It must be cheap.
	Needs(path string) bool
	// Open prepares patching one image: it reads the installed packages
	// and the repositories the image's package manager would use. Nothing
	// is fetched yet.
	Open(ctx context.Context, t Target) (Session, error)
}

// Session patches one image. Its methods are called in order: Refresh,
// Updates, Resolve, then Apply (unless the engine stops at the plan), and
// Close at the end.
type Session interface {
	// Installed lists the image's installed packages.
	Installed() []inventory.Package
	// Refresh fetches and verifies the repositories' package indexes.
	Refresh(ctx context.Context) error
	// Updates lists the installed packages a newer version is offered
	// for, sorted by name.
	Updates() []Update
	// Resolve returns the changes that bring want (package names) to
	// their newest versions with every dependency met, sorted by package.
	Resolve(ctx context.Context, want []string) ([]Change, error)
	// Apply downloads, verifies, installs and configures changes into cs:
	// exactly what the package manager would change in the image.
	Apply(ctx context.Context, changes []Change, cs *layer.Changeset) (*Applied, error)
	// Close releases what the session holds.
	Close() error
}

// ImageFS is the read-only merged view of an image's layers the engine
// gives a backend (a *rootfs.FS).
type ImageFS = layer.ImageFS

// Target is the image a Session patches.
type Target struct {
	Image    v1.Image
	FS       ImageFS
	OS       osinfo.OS
	Platform v1.Platform
	// Repositories overrides where packages come from and how they are
	// trusted.
	Repositories Repositories
	// Sandbox runs image code (maintainer scripts) when the mode allows.
	Sandbox Sandbox
	// CacheDir holds the backend's downloads and parsed indexes, at most
	// CacheSize bytes (0: the backend's default).
	CacheDir  string
	CacheSize int64
	// HTTP fetches from the repositories (nil: http.DefaultClient).
	HTTP *http.Client
	// TempDir holds spooled files while the session lives.
	TempDir  string
	Log      *slog.Logger
	Progress func(Event)
}

// Repositories overrides the image's own package sources and trust.
type Repositories struct {
	// Mirror replaces the URL of the release's own archive.
	Mirror string `json:"mirror,omitempty"`
	// SecurityMirror replaces the URL of the release's security archive.
	SecurityMirror string `json:"security_mirror,omitempty"`
	// HostKeyring is a keyring file on the host trusted for sources the
	// image has no key for (distroless images).
	HostKeyring string `json:"host_keyring,omitempty"`
	// InsecureSkipVerify accepts unsigned or badly signed repository
	// metadata (hashes are still checked).
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Update is an installed package a newer version is offered for.
type Update struct {
	Name      string
	Arch      string
	Installed string
	Candidate string
	Suite     string
}

// Change is one package change: an upgrade, or a new package a change
// depends on.
type Change struct {
	Package string `json:"package"`
	From    string `json:"from,omitempty"` // "" for a new package
	To      string `json:"to"`
	Suite   string `json:"suite"`
	// Reason is "requested", "dependency of X", "breaks fix for X"...
	Reason    string `json:"reason"`
	Size      int64  `json:"download_size"`
	URL       string `json:"url"`
	Requested bool   `json:"requested"`
}

// ScriptAction records how one maintainer script or trigger was handled.
type ScriptAction struct {
	Package string `json:"package"`
	Script  string `json:"script"`           // "postinst", "prerm (old)", "trigger ldconfig", ...
	Action  string `json:"action"`           // "no-op", "native", "sandbox", "skipped-distroless"
	Detail  string `json:"detail,omitempty"` // what was recognized or done
}

// Applied is what Apply did.
type Applied struct {
	Scripts []ScriptAction
	// Mtime is the time the backend gave generated files: the newest
	// build time of the installed packages, so that it depends only on
	// the inputs. The engine dates the layer's history entry with it.
	Mtime time.Time
	// Timings holds the time of each phase Apply went through
	// ("download", "unpack", "scripts").
	Timings map[string]time.Duration
}

// Event is a progress report.
type Event struct {
	Platform string `json:"platform,omitempty"`
	// Phase is "read", "index", "resolve", "download", "unpack",
	// "scripts", "layer", "write" or "done".
	Phase   string `json:"phase"`
	Package string `json:"package,omitempty"`
	Done    int64  `json:"done,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// SandboxMode says when image code may run in a sandbox.
type SandboxMode string

// Sandbox modes.
const (
	// SandboxAuto runs in the sandbox the scripts drydock cannot apply
	// natively, when there are any; it is the default.
	SandboxAuto SandboxMode = "auto"
	// SandboxAlways requires the sandbox and runs in it every script
	// drydock does not reproduce natively, also those it would judge to
	// do nothing.
	SandboxAlways SandboxMode = "always"
	// SandboxNever runs no image code: a script that must run stops the
	// patch.
	SandboxNever SandboxMode = "never"
)

// ParseSandboxMode reads a mode; "" is SandboxAuto.
func ParseSandboxMode(s string) (SandboxMode, error) {
	switch m := SandboxMode(s); m {
	case "":
		return SandboxAuto, nil
	case SandboxAuto, SandboxAlways, SandboxNever:
		return m, nil
	}
	return "", fmt.Errorf("sandbox mode %q: want auto, always or never", s)
}

// Sandbox runs commands of an image, isolated from the host
// (internal/patch/sandbox implements it).
type Sandbox interface {
	// Mode is the mode the engine was asked for.
	Mode() SandboxMode
	// Available reports why commands of an image of platform p cannot
	// run here: nil when they can.
	Available(p v1.Platform) error
	// Open makes the image with cs applied on top ready to run commands
	// in.
	Open(ctx context.Context, img v1.Image, cs *layer.Changeset) (Tree, error)
}

// Preparer is a Sandbox that can make an image ready ahead of Open (its
// tree extracted), so the engine overlaps that with the downloads. A
// failed or cancelled Prepare leaves nothing behind: Open then does the
// work itself and reports its own error.
type Preparer interface {
	Prepare(ctx context.Context, img v1.Image) error
}

// Tree is an image ready to run commands in.
type Tree interface {
	// Stage makes data readable inside the sandbox at StagePath(name)
	// for the commands that follow; it is not part of the image.
	Stage(name string, data []byte) error
	// Run runs argv with env (added to a minimal environment) as root
	// inside the image, and returns its combined output.
	Run(ctx context.Context, env []string, argv ...string) ([]byte, error)
	// Diff adds to cs what the commands changed, dated mtime.
	Diff(cs *layer.Changeset, mtime time.Time) error
	Close() error
}

// StagePath is where Tree.Stage puts name inside the sandbox.
func StagePath(name string) string { return "/run/drydock/" + name }

// ErrSandboxUnavailable is wrapped by a Sandbox's errors that say it
// cannot run here (and what to configure).
var ErrSandboxUnavailable = errors.New("no sandbox available")

// ErrScripts is wrapped by *ScriptError.
var ErrScripts = errors.New("unhandled maintainer scripts")

// ScriptError is the refusal of a patch whose maintainer scripts must run
// and cannot: the sandbox is off (mode never) or unavailable.
type ScriptError struct {
	Unhandled []ScriptAction // Detail holds the reason each must run
	// Sandbox says why the sandbox could not run them: what to
	// configure, or that the mode was never.
	Sandbox error
}

func (e *ScriptError) Error() string {
	var b strings.Builder
	b.WriteString("maintainer scripts drydock cannot apply without running them:")
	for _, a := range e.Unhandled {
		fmt.Fprintf(&b, "\n  %s %s: %s", a.Package, a.Script, a.Detail)
	}
	if e.Sandbox != nil {
		b.WriteString("\nand they cannot run in a sandbox: ")
		b.WriteString(e.Sandbox.Error())
	} else {
		b.WriteString("\n(run them in the sandbox with --sandbox auto, or patch only other packages with --report)")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrScripts) hold.
func (e *ScriptError) Is(target error) bool { return target == ErrScripts }

// Unwrap gives the sandbox's reason.
func (e *ScriptError) Unwrap() error { return e.Sandbox }
