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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/health"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/regstore"
	"github.com/drydock-project/drydock/internal/web"
)

// Server is one drydock server process.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	storage  *regstore.Storage
	dbs      *database.Opener
	health   *health.Checker
	registry *registry.Registry
	metrics  *metrics.Metrics
	handler  http.Handler
	// audits is the append-only audit log.
	audits     *audit.Log
	closeAudit func() error
	// gate is scanning on arrival, verdicts and promotion.
	gate *gateParts
	// closeAuth closes the user and token store.
	closeAuth func() error
	// logins aggregates refused logins into audit records.
	logins *auth.FailureBursts
	// metricsAddr is where metrics.addr listens, once it does.
	metricsAddr atomic.Value // string
	// workflows is continuous patching.
	workflows *workflowParts
	// gc is garbage collection and retention.
	gc *gcParts
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
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (_ *Server, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	// undo closes what New opened, newest first, when it fails.
	var undo []func()
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(undo) {
				f()
			}
		}
	}()
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	dbs, err := database.NewOpener(cfg.Database, cfg.Data)
	if err != nil {
		return nil, err
	}
	storage, err := regstore.Open(ctx, cfg, dbs)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = storage.Close() })
	m := metrics.New()
	audits, closeAudit, err := audit.Open(ctx, dbs)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = closeAudit() })
	gcp, err := joinGC(ctx, dbs, log, m)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = gcp.close() })
	var keeper *gatekeeper.Keeper // set below; the listener needs the registry first
	regOpts := gcp.registryOptions(cfg, audits, log, o.now)
	if storage.Sync != nil {
		regOpts = append(regOpts, registry.WithStorageSync(m.TimeWriteback(storage.Sync))) // storage.writeback
	}
	reg, err := registry.New(ctx, storage.Driver, append(regOpts,
		// The barrier's existence checks must see another replica's
		// collection: through the storage without this process's cache.
		registry.WithDirectDriver(storage.Uncached()),
		registry.WithLogger(log),
		registry.WithUploadObserver(m.ObserveUpload),
		registry.WithManifestRecorder(registry.ManifestListenerFunc(func(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
			gcp.manifestPushed(ctx, log, repo, tag, desc.Digest)
			if imgref.IsLive(repo) {
				return nil // only promotion writes to live/, and it audits itself
			}
			ref := tag
			if ref == "" {
				ref = desc.Digest.String()
			}
			detail, _ := audit.Detail(map[string]any{"mediaType": desc.MediaType, "size": desc.Size})
			actor := auth.UserFrom(ctx)
			if gatekeeper.IsGateWrite(ctx) {
				actor = gatekeeper.ActorGate // a scan report the gate attached
			}
			if _, err := audits.Record(context.WithoutCancel(ctx), audit.Entry{Actor: actor, Action: audit.ActionPush,
				Repository: repo, Reference: ref, Digest: desc.Digest.String(), Outcome: audit.OutcomeOK, Detail: detail}); err != nil {
				log.Error("audit: recording a push failed", "repository", repo, "err", err)
			}
			if keeper != nil {
				return keeper.ManifestPushed(ctx, repo, tag, desc)
			}
			return nil
		})),
	)...)
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	gp, err := openGate(ctx, cfg, dbs, log, reg, audits, m, o.now)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = gp.close(ctx) })
	if err := gcp.start(cfg, log, reg, gp, audits, o.now); err != nil {
		return nil, err
	}
	keeper = gp.keeper
	wf, err := openWorkflows(ctx, cfg, dbs, log, reg, gp, o.now)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = wf.close() })
	s := &Server{cfg: cfg, log: log, storage: storage, dbs: dbs, registry: reg, metrics: m, audits: audits, closeAudit: closeAudit, gate: gp, workflows: wf, gc: gcp}
	s.health = health.NewChecker(time.Second,
		health.Probe{Name: "database", Check: dbs.Ping},
		health.Probe{Name: "storage", Check: s.storageReady})

	authn, authStore, logins, err := openAuth(ctx, cfg, dbs, log, audits, o.now)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = authStore.Close() })
	s.closeAuth, s.logins = authStore.Close, logins
	if s.kube, err = openKube(ctx, cfg, dbs, log, reg, gp, wf, audits, m, o.now); err != nil {
		return nil, err
	}
	if s.kube.inventory != nil {
		gcp.useInventory(s.kube.inventory)
	}
	// Authentication, then the live/ guard (every write to live/ is a
	// refused bypass, whoever asks), then the roles, then the registry.
	v2 := authn.Middleware(guardLive(log, audits, gp.dispatcher, gp.metrics, authn.AuthorizeMiddleware(filterCatalog(reg))))
	apiInner := api.Handler(api.Options{Gate: gp.keeper, Attest: gp.keeper, Patches: gp.patches, Kube: s.kube.service, Authorize: apiAuthorizer,
		Actor: func(r *http.Request) string { return auth.UserFrom(r.Context()) }, Log: log, Workflows: wf.engine, Exceptions: gp.keeper, Database: gp.keeper, GC: gcp.service, Scans: gp.store, Audit: audits,
		Policy: gp.keeper, Index: gp.store, Tags: reg, Dashboard: gp.store, Manifests: reg, Inventories: gp.keeper})
	apiHandler := authn.Middleware(apiInner)
	ui, err := web.New(web.Options{Auth: authn, API: apiInner, Log: log.With("component", "web"), SessionTTL: time.Duration(cfg.Web.SessionTTL)})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", v2)
	mux.Handle("/v2", http.RedirectHandler("/v2/", http.StatusMovedPermanently))
	mux.Handle("/auth/token", authn.TokenHandler())
	mux.Handle("/api/v1/", apiHandler)
	mux.Handle("GET /api/v1/openapi.json", api.OpenAPIHandler()) // no credentials: it describes, it discloses nothing
	// The web UI signs in with sessions of its own and calls the API
	// in-process as the signed-in user.
	mux.Handle(web.Prefix, ui)
	mux.Handle("GET /{$}", http.RedirectHandler(web.Prefix, http.StatusFound))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	// Metrics tell what the gate refused and who is pushing: they need a
	// credential with the metrics role here (metrics.addr serves them
	// without one, on an address of their own).
	mux.Handle("GET /metrics", authn.Require(auth.RoleMetrics, m.Handler()))
	// While the database or the storage is down, requests are answered 503
	// (liveness, readiness and metrics excepted).
	gated := s.health.Gate(mux, func(r *http.Request) bool {
		return r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics"
	})
	s.handler = m.Instrument(accessLog(log, serverHeader(sweepLogins(logins, gated))))
	return s, nil
}

// MetricsAddr is the address metrics.addr listens on once Serve runs
// ("" when it is not set).
func (s *Server) MetricsAddr() string {
	a, _ := s.metricsAddr.Load().(string)
	return a
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
	wg.Go(func() { s.health.Run(bgCtx) })
	wg.Go(func() { s.gc.run(bgCtx) })
	wg.Go(func() { s.registry.Writeback(bgCtx, time.Duration(s.cfg.Storage.Writeback)) })
	if err := s.gate.start(bgCtx); err != nil {
		s.shutdown(context.Background(), stopBg, &wg)
		return err
	}
	s.kube.start(bgCtx, wg.Go)

	var ms *http.Server
	if s.cfg.Metrics.Addr != "" {
		mln, err := net.Listen("tcp", s.cfg.Metrics.Addr)
		if err != nil {
			s.shutdown(context.Background(), stopBg, &wg)
			return fmt.Errorf("metrics.addr: listen on %s: %w", s.cfg.Metrics.Addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.Handler())
		ms = &http.Server{Handler: accessLog(s.log, serverHeader(mux)), ReadHeaderTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		s.metricsAddr.Store(mln.Addr().String())
		defer ms.Close() // on every way out; after a clean shutdown, a no-op
		wg.Go(func() {
			if err := ms.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics listener stopped", "err", err)
			}
		})
		s.log.Info("metrics serving without credentials", "metrics_addr", mln.Addr().String())
	}

	s.log.Info("drydock serving",
		"addr", ln.Addr().String(),
		"data", s.cfg.Data,
		"storage", s.cfg.Storage.Driver,
		"database", s.cfg.Database.Describe(s.cfg.Data),
		"auth", authMode(s.cfg),
		"version", buildinfo.Get().Version)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		if ms != nil {
			_ = ms.Close()
		}
		s.shutdown(context.Background(), stopBg, &wg)
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
	if ms != nil {
		_ = ms.Shutdown(sctx)
	}
	s.shutdown(sctx, stopBg, &wg)
	s.log.Info("stopped")
	return nil
}

// shutdown stops the Kubernetes side and the background work (stopBg,
// then waiting for wg, whose metrics listener must be closed already) and
// closes every part of the server, on every way out of Serve.
func (s *Server) shutdown(ctx context.Context, stopBg func(), wg *sync.WaitGroup) {
	s.kube.shutdown(ctx)
	stopBg()
	s.logins.Flush(context.Background())
	if err := s.gate.close(context.Background()); err != nil {
		s.log.Warn("stopping the gate", "err", err)
	}
	if err := s.workflows.close(); err != nil {
		s.log.Warn("closing the workflow store", "err", err)
	}
	wg.Wait() // the gc member's loop ends before it leaves
	if err := s.gc.close(); err != nil {
		s.log.Warn("leaving garbage collection", "err", err)
	}
	if err := s.closeAudit(); err != nil {
		s.log.Warn("closing the audit log", "err", err)
	}
	if err := s.closeAuth(); err != nil {
		s.log.Warn("closing the user store", "err", err)
	}
	if err := s.storage.Close(); err != nil {
		s.log.Warn("closing the registry index", "err", err)
	}
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

// readyz reports ready when the database and the storage answer.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.health.Check(r.Context()); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		health.WriteUnavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// storageReady checks that the blob storage answers.
func (s *Server) storageReady(ctx context.Context) error {
	_, err := s.storage.Blobs.Stat(ctx, "/")
	var notFound storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &notFound) {
		return err
	}
	return nil
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
