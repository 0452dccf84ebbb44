// Package server assembles one drydock server process: the embedded OCI
// registry under /v2/, health and readiness probes, Prometheus metrics, the
// access log and graceful shutdown, all on one listener.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	// The storage drivers a config file can name. Each registers itself with
	// distribution's driver factory.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/registry"
)

// Server is one drydock server process.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	driver   storagedriver.StorageDriver
	registry *registry.Registry
	metrics  *metrics.Metrics
	handler  http.Handler
	// audits is the append-only audit log (DATA/audit/audit.db).
	audits     *audit.Log
	closeAudit func() error
	// gate is scanning on arrival, verdicts and promotion.
	gate *gateParts
	// closeAuth closes the user and token store.
	closeAuth func() error
	// kube is the Kubernetes side: admission webhooks, inventory.
	kube *kubeParts
}

// Option configures a Server.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock sets the clock the gate decides with (verdicts, exception
// expiry, grace windows, stuck scans); the default is the system clock.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New opens the storage driver named in cfg and builds the HTTP handler.
// cfg must have passed Validate.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	driver, err := factory.Create(ctx, cfg.Storage.Driver, cfg.Storage.Parameters)
	if err != nil {
		return nil, fmt.Errorf("storage driver %q: %w", cfg.Storage.Driver, err)
	}
	m := metrics.New()
	audits, closeAudit, err := audit.OpenFile(audit.DefaultPath(cfg.Data))
	if err != nil {
		return nil, err
	}
	var keeper *gatekeeper.Keeper // set below; the listener needs the registry first
	reg, err := registry.New(ctx, driver,
		registry.WithLogger(log),
		registry.WithUploadObserver(m.ObserveUpload),
		registry.WithManifestListener(registry.ManifestListenerFunc(func(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
			if strings.HasPrefix(repo, liveNamespace) {
				return nil // only promotion writes to live/, and it audits itself
			}
			ref := tag
			if ref == "" {
				ref = desc.Digest.String()
			}
			detail, _ := audit.Detail(map[string]any{"mediaType": desc.MediaType, "size": desc.Size})
			if _, err := audits.Record(context.WithoutCancel(ctx), audit.Entry{Actor: auth.UserFrom(ctx), Action: audit.ActionPush,
				Repository: repo, Reference: ref, Digest: desc.Digest.String(), Outcome: audit.OutcomeOK, Detail: detail}); err != nil {
				log.Error("audit: recording a push failed", "repository", repo, "err", err)
			}
			if keeper != nil {
				return keeper.ManifestPushed(ctx, repo, tag, desc)
			}
			return nil
		})),
	)
	if err != nil {
		closeAudit()
		return nil, fmt.Errorf("start registry: %w", err)
	}
	gp, err := openGate(ctx, cfg, log, reg, audits, m, o.now)
	if err != nil {
		closeAudit()
		return nil, err
	}
	keeper = gp.keeper
	s := &Server{cfg: cfg, log: log, driver: driver, registry: reg, metrics: m, audits: audits, closeAudit: closeAudit, gate: gp}

	authn, authStore, err := openAuth(ctx, cfg, log, audits, o.now)
	if err != nil {
		gp.close(ctx)
		closeAudit()
		return nil, err
	}
	s.closeAuth = authStore.Close
	if s.kube, err = openKube(ctx, cfg, log, reg, gp, audits, m, o.now); err != nil {
		authStore.Close()
		gp.close(ctx)
		closeAudit()
		return nil, err
	}
	// Authentication, then the live/ guard (every write to live/ is a
	// refused bypass, whoever asks), then the roles, then the registry.
	v2 := authn.Middleware(guardLive(log, audits, gp.dispatcher, gp.metrics, authn.AuthorizeMiddleware(filterCatalog(reg))))
	apiHandler := authn.Middleware(api.Handler(api.Options{Gate: gp.keeper, Kube: s.kube.service, Authorize: apiAuthorizer,
		Actor: func(r *http.Request) string { return auth.UserFrom(r.Context()) }, Log: log}))
	mux := http.NewServeMux()
	mux.Handle("/v2/", v2)
	mux.Handle("/v2", http.RedirectHandler("/v2/", http.StatusMovedPermanently))
	mux.Handle("/auth/token", authn.TokenHandler())
	mux.Handle("/api/v1/", apiHandler)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", m.Handler())
	s.handler = m.Instrument(accessLog(log, serverHeader(mux)))
	return s, nil
}

// Handler returns the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Registry returns the embedded registry.
func (s *Server) Registry() *registry.Registry { return s.registry }

// ListenAndServe listens on cfg.Addr and serves until ctx is cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting connections and lets in-flight requests (uploads among
// them) finish for up to cfg.ShutdownTimeout; requests still running then
// are cut off. An upload cut off this way stays in the registry's private
// upload area, is never visible, and is purged later.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(ctx)
	defer func() { stopBg(); wg.Wait() }()
	wg.Go(func() { s.purgeLoop(bgCtx) })
	if err := s.gate.start(bgCtx, time.Duration(s.cfg.Gate.SweepInterval), wg.Go); err != nil {
		_ = s.gate.close(context.Background())
		_ = s.closeAudit()
		s.kube.shutdown(context.Background())
		return err
	}
	s.kube.start(bgCtx, wg.Go)

	s.log.Info("drydock serving",
		"addr", ln.Addr().String(),
		"data", s.cfg.Data,
		"storage", s.cfg.Storage.Driver,
		"auth", authMode(s.cfg),
		"version", buildinfo.Get().Version)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.kube.shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: waiting for in-flight requests", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ShutdownTimeout))
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("in-flight requests cut off at shutdown timeout; unfinished uploads stay invisible and are purged later", "err", err)
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.kube.shutdown(sctx)
	stopBg()
	if err := s.gate.close(context.Background()); err != nil {
		s.log.Warn("stopping the gate", "err", err)
	}
	if err := s.closeAudit(); err != nil {
		s.log.Warn("closing the audit log", "err", err)
	}
	if err := s.closeAuth(); err != nil {
		s.log.Warn("closing the user store", "err", err)
	}
	s.log.Info("stopped")
	return nil
}

func authMode(cfg config.Config) string {
	mode := "users and tokens"
	if cfg.Auth.Htpasswd != "" {
		mode += " + htpasswd"
	}
	if len(cfg.Auth.Anonymous) > 0 {
		mode += " + anonymous " + strings.Join(cfg.Auth.Anonymous, ",")
	}
	return mode
}

// purgeLoop removes uploads abandoned for longer than cfg.Uploads.PurgeAfter,
// once at start and then every PurgeInterval.
func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(s.cfg.Uploads.PurgeInterval))
	defer t.Stop()
	for {
		n, err := s.registry.PurgeUploads(ctx, time.Duration(s.cfg.Uploads.PurgeAfter))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("purge abandoned uploads", "err", err)
		case n > 0:
			s.log.Info("purged abandoned uploads", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz reports ready when the storage driver answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	_, err := s.driver.Stat(ctx, "/")
	var notFound storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &notFound) {
		s.log.Warn("readiness check failed", "err", err)
		http.Error(w, "storage not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

func serverHeader(next http.Handler) http.Handler {
	ua := buildinfo.Get().UserAgent()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", ua)
		next.ServeHTTP(w, r)
	})
}

// accessLog logs one line per request: at debug level for probes and
// metrics scrapes, info otherwise, warn for server errors.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		switch {
		case rec.code >= 500:
			level = slog.LevelWarn
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics":
			level = slog.LevelDebug
		}
		log.Log(r.Context(), level, "request",
			"method", r.Method,
			"path", r.URL.Path,
			"status", rec.code,
			"duration_ms", time.Since(start).Milliseconds(),
			"remote", remoteHost(r.RemoteAddr),
			"user_agent", r.UserAgent())
	})
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.TrimSpace(addr)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
	set  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.set {
		r.code, r.set = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ReadFrom keeps the sendfile path of io.Copy for blob downloads.
func (r *statusRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.set = true
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
}
