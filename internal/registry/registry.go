package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

const (
	defaultMaxManifestSize = 4 << 20
	// maxListEntries bounds the n parameter of tag and catalog listings.
	maxListEntries = 1000
)

// Clock supplies the current time; it decides upload ages and durations.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// ManifestListener is told about every manifest after it is durably stored.
// Its errors are logged and never fail the push.
type ManifestListener interface {
	// ManifestPushed is called with the repository, the tag ("" for a push
	// by digest) and the manifest's descriptor.
	ManifestPushed(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error
}

// ManifestListenerFunc adapts a function to a ManifestListener.
type ManifestListenerFunc func(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error

// ManifestPushed calls f.
func (f ManifestListenerFunc) ManifestPushed(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
	return f(ctx, repo, tag, desc)
}

// ErrArrivalNotRecorded is the push refusal when a recorder
// (WithManifestRecorder) failed: the manifest is stored, and pushing it
// again records it.
var ErrArrivalNotRecorded = errors.New("the manifest is stored, but the server could not record its arrival")

// Option configures a Registry.
type Option func(*Registry) error

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) error {
		if l == nil {
			return errors.New("nil logger")
		}
		r.log = l
		return nil
	}
}

// WithUploadObserver registers fn, called after each completed blob upload
// with the repository, the blob size and the time since the upload started.
func WithUploadObserver(fn func(repo string, bytes int64, d time.Duration)) Option {
	return func(r *Registry) error {
		if fn == nil {
			return errors.New("nil upload observer")
		}
		r.uploadObserver = fn
		return nil
	}
}

// WithMaxManifestSize bounds the size of pushed manifests (default 4 MiB).
func WithMaxManifestSize(n int64) Option {
	return func(r *Registry) error {
		if n <= 0 {
			return fmt.Errorf("max manifest size must be positive, got %d", n)
		}
		r.maxManifestSize = n
		return nil
	}
}

// WithManifestRecorder adds a listener that must hear of every stored
// manifest: when it fails, the push is answered 503 (the manifest stays
// stored, and the client's retry tells the recorder again), so no stored
// manifest goes unrecorded without its pusher knowing. The gate records
// arrivals this way; plain listeners are told after the recorders.
func WithManifestRecorder(l ManifestListener) Option {
	return func(r *Registry) error {
		r.recorders = append(r.recorders, l)
		return nil
	}
}

// WithManifestListener adds a listener told about stored manifests.
func WithManifestListener(l ManifestListener) Option {
	return func(r *Registry) error {
		if l == nil {
			return errors.New("nil manifest listener")
		}
		r.listeners = append(r.listeners, l)
		return nil
	}
}

// WithClock sets the clock used for upload ages and durations.
func WithClock(c Clock) Option {
	return func(r *Registry) error {
		if c == nil {
			return errors.New("nil clock")
		}
		r.clock = c
		return nil
	}
}

// WithDirectDriver sets the driver writes check existence through after
// protecting (see Barrier): the storage without the caches in front of
// driver, which a collector on another process deletes behind. Default:
// driver itself.
func WithDirectDriver(d storagedriver.StorageDriver) Option {
	return func(r *Registry) error {
		if d == nil {
			return errors.New("nil direct driver")
		}
		r.direct = d
		return nil
	}
}

// WithStorageSync sets how the registry's storage writes its pending
// changes to stable storage (the filesystem driver: a syncfs of its
// root; see regstore.SyncFilesystem), which Writeback calls.
func WithStorageSync(sync func() error) Option {
	return func(r *Registry) error {
		if sync == nil {
			return errors.New("nil storage sync")
		}
		r.sync = sync
		return nil
	}
}

// Registry is an OCI distribution-spec v1.1 registry over a distribution
// storage driver. It is an http.Handler for /v2/ and below.
type Registry struct {
	driver          storagedriver.StorageDriver
	log             *slog.Logger
	clock           Clock
	uploadObserver  func(repo string, bytes int64, d time.Duration)
	maxManifestSize int64
	listeners       []ManifestListener
	recorders       []ManifestListener
	// barrier coordinates writes with an online collection (barrier.go).
	barrier Barrier
	// direct is the driver without caches: what a write checks after
	// protecting, so that it sees a collector's deletions.
	direct storagedriver.StorageDriver
	// quota, when set, decides whether a repository may grow (quota.go).
	quota Quota
	// pulls, when set, is told about manifests served by GET.
	pulls PullObserver
	// writes counts the writes in progress, which a collection's sweep
	// yields to (gc_pace.go).
	writes inflight
	// sync, when set, writes the storage's pending changes to stable
	// storage (WithStorageSync, Writeback), when writes.changed says
	// something changed; synced counts its runs.
	sync   func() error
	synced atomic.Int64
}

// New returns a Registry storing everything through driver.
func New(ctx context.Context, driver storagedriver.StorageDriver, opts ...Option) (*Registry, error) {
	if driver == nil {
		return nil, errors.New("creating registry: nil storage driver")
	}
	r := &Registry{
		driver:          driver,
		log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		clock:           systemClock{},
		maxManifestSize: defaultMaxManifestSize,
		barrier:         noBarrier{},
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, fmt.Errorf("creating registry: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("creating registry: %w", err)
	}
	if r.direct == nil {
		r.direct = driver
	}
	return r, nil
}

// ServeHTTP serves the distribution API under /v2/.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		r.writes.begin()
		defer r.writes.end()
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			r.log.ErrorContext(req.Context(), "registry handler panicked", "method", req.Method, "path", req.URL.Path, "panic", v)
			r.writeError(w, req, fmt.Errorf("panic: %v", v))
		}
	}()
	if err := r.serve(w, req); err != nil {
		r.writeError(w, req, err)
	}
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) error {
	rt, ok := imgref.ParseRoute(req.URL.Path)
	if !ok {
		return newAPIError(http.StatusNotFound, codeNameUnknown, "unknown endpoint", map[string]string{"path": req.URL.Path})
	}
	if rt.Kind != imgref.RoutePing && rt.Kind != imgref.RouteCatalog && !imgref.ValidRepository(rt.Repository) {
		return newAPIError(http.StatusBadRequest, codeNameInvalid, "invalid repository name", map[string]string{"name": rt.Repository})
	}
	m := req.Method
	switch rt.Kind {
	case imgref.RoutePing:
		if m != http.MethodGet && m != http.MethodHead {
			return errUnsupported(nil)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if m == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
		return nil
	case imgref.RouteCatalog:
		if m != http.MethodGet {
			return errUnsupported(nil)
		}
		return r.serveCatalog(w, req)
	case imgref.RouteTags:
		if m != http.MethodGet {
			return errUnsupported(nil)
		}
		return r.serveTags(w, req, rt.Repository)
	case imgref.RouteReferrers:
		if m != http.MethodGet {
			return errUnsupported(nil)
		}
		return r.serveReferrers(w, req, rt.Repository, rt.Ref)
	case imgref.RouteManifest:
		switch m {
		case http.MethodGet, http.MethodHead:
			return r.getManifest(w, req, rt.Repository, rt.Ref)
		case http.MethodPut:
			return r.putManifest(w, req, rt.Repository, rt.Ref)
		case http.MethodDelete:
			return r.deleteManifest(w, req, rt.Repository, rt.Ref)
		}
	case imgref.RouteBlob:
		switch m {
		case http.MethodGet, http.MethodHead:
			return r.getBlob(w, req, rt.Repository, rt.Ref)
		case http.MethodDelete:
			return r.deleteBlob(w, req, rt.Repository, rt.Ref)
		}
	case imgref.RouteUpload:
		if rt.Ref == "" {
			if m == http.MethodPost {
				return r.startUpload(w, req, rt.Repository)
			}
			return errUnsupported(nil)
		}
		if !uploadIDRE.MatchString(rt.Ref) {
			return errUploadUnknown(rt.Ref)
		}
		switch m {
		case http.MethodGet:
			return r.uploadStatus(w, req, rt.Repository, rt.Ref)
		case http.MethodPatch:
			return r.patchUpload(w, req, rt.Repository, rt.Ref)
		case http.MethodPut:
			return r.putUpload(w, req, rt.Repository, rt.Ref)
		case http.MethodDelete:
			return r.cancelUpload(w, req, rt.Repository, rt.Ref)
		}
	}
	return errUnsupported(nil)
}
