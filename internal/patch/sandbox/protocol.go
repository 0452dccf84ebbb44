package sandbox

import (
	"fmt"
	"io/fs"

	"github.com/drydock-project/drydock/internal/patch/backend"
)

// Operations of a sandbox process.
const (
	opExtract = "extract" // extract the tar on fdData into Dir (an image tree)
	opSession = "session" // set up the image's root, then run commands
	opDiff    = "diff"    // write what commands changed, as a tar on fdData
	opRemove  = "remove"  // remove Dirs (trees whose owners are mapped ids)
)

// config is the first message a sandbox process reads.
type config struct {
	Op string `json:"op"`
	// Dir is where to extract (extract), or where to try overlayfs first
	// (session).
	Dir string `json:"dir,omitempty"`
	// Dirs are removed by remove.
	Dirs []string `json:"dirs,omitempty"`
	// Lower is the cached image tree; Upper and Work are overlayfs's
	// directories; Root is where the image's root is mounted (session);
	// with Overlay false, Lower is copied into Root instead.
	Lower   string `json:"lower,omitempty"`
	Upper   string `json:"upper,omitempty"`
	Work    string `json:"work,omitempty"`
	Root    string `json:"root,omitempty"`
	Overlay bool   `json:"overlay,omitempty"`
	// Snapshot is what Upper (or Root) held before any command ran (diff).
	Snapshot map[string]snapEntry `json:"snapshot,omitempty"`
	// Manifest is the cached tree's manifest file, checked before use
	// (session) or written (extract).
	Manifest string `json:"manifest,omitempty"`
	// MaxBytes bounds what extract writes and what diff reads.
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// request is a command to a session.
type request struct {
	Op   string   `json:"op"` // "run", "stage" or "exit"
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	Name string   `json:"name,omitempty"`
	Data []byte   `json:"data,omitempty"`
}

// reply answers a config or a request.
type reply struct {
	Error       string `json:"error,omitempty"`
	Unavailable bool   `json:"unavailable,omitempty"`
	// NoOverlay reports (session) that overlayfs does not work here: the
	// session must copy the tree instead.
	NoOverlay bool `json:"no_overlay,omitempty"`
	// Snapshot (session) is what the writable tree holds once the
	// changes are applied, before any command.
	Snapshot map[string]snapEntry `json:"snapshot,omitempty"`
	// Output and Exit are a command's (run).
	Output []byte `json:"output,omitempty"`
	Exit   int    `json:"exit"`
	// Bytes counts what extract wrote.
	Bytes int64 `json:"bytes,omitempty"`
}

// snapEntry is what a path of a writable tree was: enough to tell that a
// command changed it.
type snapEntry struct {
	Mode     fs.FileMode `json:"m"`
	UID      int         `json:"u,omitempty"`
	GID      int         `json:"g,omitempty"`
	Size     int64       `json:"s,omitempty"`
	MtimeNs  int64       `json:"t,omitempty"`
	Ino      uint64      `json:"i,omitempty"`
	Target   string      `json:"l,omitempty"` // symlink target
	SHA256   string      `json:"h,omitempty"` // regular files, when known
	Whiteout bool        `json:"w,omitempty"` // overlayfs whiteout
	Opaque   bool        `json:"o,omitempty"` // overlayfs opaque directory
}

// ErrUnavailable is wrapped by *UnavailableError.
var ErrUnavailable = backend.ErrSandboxUnavailable

// UnavailableError says why the sandbox cannot run here, and what to
// configure.
type UnavailableError struct{ Reason string }

func (e *UnavailableError) Error() string { return "no sandbox: " + e.Reason }

// Is makes errors.Is(err, ErrUnavailable) hold.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

func unavailable(format string, args ...any) error {
	return &UnavailableError{Reason: fmt.Sprintf(format, args...)}
}
