package patch

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"

	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Option configures Run.
type Option func(*options) error

type options struct {
	backends map[osinfo.Family]backend.Backend
	server   *oci.Server
	regOpts  []oci.Option // for every registry the run reads or writes
	srvOpts  []oci.Option // for the drydock server
	releases []vulndb.Release
	db       *vulndb.DB
	clock    Clock
	log      *slog.Logger
	progress func(Event)
	tempDir  string
	cacheDir string
	tool     string
	http     *http.Client
	limits   CacheLimits
	// scanLimits bound what reading the image may cost: the gate's
	// limits (scan.Limits), so that what the gate refuses to judge the
	// patcher refuses to patch.
	scanLimits scan.Limits
	sandbox    func(mode SandboxMode) (backend.Sandbox, error)
	// sandboxAhead: extract the sandbox's tree while the indexes and
	// packages download (WithSandboxAhead).
	sandboxAhead bool
}

// CacheLimits bound the engine's caches under the cache directory, in
// bytes; 0 keeps a default. Each cache evicts its least recently used
// entries past its bound.
type CacheLimits struct {
	// Trees holds extracted image trees the sandbox runs in.
	Trees int64 `json:"trees,omitempty"`
	// Images holds image layer indexes and the files the patcher read,
	// by layer digest.
	Images int64 `json:"images,omitempty"`
	// Packages holds each backend's downloads and parsed indexes.
	Packages int64 `json:"packages,omitempty"`
}

// Default cache bounds.
const (
	DefaultImageCacheSize = 2 << 30
)

// WithCacheLimits bounds the caches.
func WithCacheLimits(l CacheLimits) Option {
	return func(o *options) error {
		if l.Trees < 0 || l.Images < 0 || l.Packages < 0 {
			return errors.New("patch.WithCacheLimits: negative limit")
		}
		o.limits = l
		return nil
	}
}

// WithLimits bounds what reading an image may cost with the limits the
// gate and the scanner apply (scan.DefaultLimits otherwise): layer
// entries and sizes, package counts and database sizes.
func WithLimits(l scan.Limits) Option {
	return func(o *options) error {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("patch.WithLimits: %w", err)
		}
		o.scanLimits = l.WithDefaults()
		return nil
	}
}

// defaultBackends is the table of backends by OS family; each Run clones
// it (WithBackend overrides an entry).
func defaultBackends() map[osinfo.Family]backend.Backend {
	return map[osinfo.Family]backend.Backend{osinfo.FamilyDebian: apt.NewBackend()}
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		backends: maps.Clone(defaultBackends()),
		clock:    realClock{},
		log:      slog.New(slog.DiscardHandler),
		progress: func(Event) {},
		tempDir:  os.TempDir(),
		tool:     "drydock " + buildinfo.Get().Version,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.cacheDir == "" {
		d, err := config.DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.cacheDir = filepath.Join(d, "patch")
	}
	if o.sandbox == nil {
		o.sandbox = defaultSandbox(o)
	}
	return o, nil
}

// WithServer names the drydock server that quarantine/NAME and live/NAME
// images live on, and how to reach it (its scheme, credentials, or an
// in-process transport: oci.WithTransport).
func WithServer(s oci.Server, opts ...oci.Option) Option {
	return func(o *options) error {
		if s.Registry.RegistryStr() == "" {
			return errors.New("patch.WithServer: no registry")
		}
		o.server = &s
		o.srvOpts = append(s.Options(), opts...)
		return nil
	}
}

// WithRegistryOptions applies opts (credentials, transport) to every
// registry the run reads from or writes to that is not the server.
func WithRegistryOptions(opts ...oci.Option) Option {
	return func(o *options) error { o.regOpts = append(o.regOpts, opts...); return nil }
}

// WithReleases sets the distro-info data deciding end-of-life (see
// LoadReleases). Without it, and without WithVulnDB, end-of-life is not
// checked (a warning is logged).
func WithReleases(rels []vulndb.Release) Option {
	return func(o *options) error { o.releases = rels; return nil }
}

// WithVulnDB gives the vulnerability database VulnerableOnly scans with
// (and end-of-life data, unless WithReleases is given).
func WithVulnDB(db *vulndb.DB) Option {
	return func(o *options) error {
		if db == nil {
			return errors.New("patch.WithVulnDB: nil database")
		}
		o.db = db
		return nil
	}
}

// WithClock sets the clock deciding end-of-life (default: the system's).
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("patch.WithClock: nil clock")
		}
		o.clock = c
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("patch.WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithProgress receives phase changes and download progress.
func WithProgress(fn func(Event)) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("patch.WithProgress: nil function")
		}
		o.progress = fn
		return nil
	}
}

// WithSandboxAhead extracts the image's tree for the sandbox while the
// indexes and packages download, instead of when the first maintainer
// script needs it: a cold patch whose scripts need the sandbox finishes
// sooner (the bench image: 9.7 -> 7.6 s), at the price of reading and
// extracting the image's layers a second time when no script needs it.
// The CLI, which patches one image, turns it on; a caller patching many
// images (the workflow engine, most of whose images need no sandbox)
// leaves it off.
func WithSandboxAhead() Option {
	return func(o *options) error {
		o.sandboxAhead = true
		return nil
	}
}

// WithTempDir spools layer contents under dir (default os.TempDir()).
func WithTempDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("patch.WithTempDir: empty directory")
		}
		o.tempDir = dir
		return nil
	}
}

// WithCacheDir keeps downloads, parsed indexes and image caches under dir
// (default: $DRYDOCK_CACHE/patch).
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("patch.WithCacheDir: empty directory")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithTool sets the tool name and version recorded in the image (default
// "drydock VERSION").
func WithTool(tool string) Option {
	return func(o *options) error {
		if tool == "" {
			return errors.New("patch.WithTool: empty name")
		}
		o.tool = tool
		return nil
	}
}

// WithBackend serves OS family f with b instead of the built-in backend.
func WithBackend(f osinfo.Family, b backend.Backend) Option {
	return func(o *options) error {
		if b == nil {
			return errors.New("patch.WithBackend: nil backend")
		}
		o.backends[f] = b
		return nil
	}
}

// WithHTTPClient fetches packages and indexes with c (default:
// http.DefaultClient).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("patch.WithHTTPClient: nil client")
		}
		o.http = c
		return nil
	}
}
