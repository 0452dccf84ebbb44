package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/kube"
	"github.com/drydock-project/drydock/internal/metrics"
	"github.com/drydock-project/drydock/internal/registry"
)

// kubeParts are the Kubernetes services of one server process: the
// admission webhooks on their own HTTPS listener, the running-image
// inventory and its watcher, and the service the API calls.
type kubeParts struct {
	cfg     config.Kube
	log     *slog.Logger
	metrics *metrics.Kube
	service *kube.Service
	// Set when the webhooks are on.
	webhook *kube.Webhook
	certs   *kube.Certs
	ln      net.Listener
	url     string // where the API server reaches the webhooks
	hs      *http.Server
	// Set when kube.watch is on.
	inventory   *kube.SQLInventory
	watcher     *kube.Watcher
	stopWatch   context.CancelFunc
	watcherDone chan struct{}
}

// openKube builds the Kubernetes services cfg turns on. The webhook
// listener is bound here, so a taken port fails the start at once.
func openKube(ctx context.Context, cfg config.Config, dbs *database.Opener, log *slog.Logger, reg *registry.Registry, gp *gateParts, wf *workflowParts, audits *audit.Log, m *metrics.Metrics, now func() time.Time) (_ *kubeParts, err error) {
	k := &kubeParts{cfg: cfg.Kube, log: log.With("component", "kube"), metrics: m.NewKube()}
	defer func() {
		if err != nil {
			k.shutdown(ctx)
		}
	}()
	clientOpts := kube.ClientOptions{Kubeconfig: cfg.Kube.Kubeconfig, Context: cfg.Kube.Context}
	k.service = &kube.Service{Client: kube.LazyClient(clientOpts), Audit: audits, Events: gp.dispatcher, Metrics: k.metrics, Log: k.log}
	if len(cfg.Kube.Registry) > 0 {
		if k.service.Planner, err = kube.NewPlanner(cfg.Kube.Registry, reg, gp.keeper); err != nil {
			return nil, err
		}
	}
	if wf != nil && wf.engine != nil {
		// Workflows with the rollout option: each promotion of their patch
		// tags queues a rollout on the workflow queue.
		ar := &kube.AutoRollout{Service: k.service, Workflows: wf.engine.RolloutFor, Queue: gp.queue, QueueName: workflowQueue,
			Timeout: time.Duration(cfg.Kube.RolloutTimeout), Log: k.log}
		if err := ar.Register(); err != nil {
			return nil, err
		}
		gp.promoted.add(func(target, digest string) {
			lctx, cancel := listenerContext()
			defer cancel()
			if err := ar.Promoted(lctx, target, digest); err != nil {
				k.log.Error("auto rollout: not queued", "target", target, "digest", digest, "err", err)
			}
		})
	}
	if cfg.Kube.Watch {
		client, err := k.service.Client()
		if err != nil {
			return nil, fmt.Errorf("kube.watch: %w", err)
		}
		if k.inventory, err = kube.OpenInventory(ctx, dbs); err != nil {
			return nil, err
		}
		queries := kube.NewQueries(k.inventory, gp.store, gp.store)
		if k.watcher, err = kube.NewWatcher(kube.WatcherOptions{Client: client, Store: k.inventory, Cluster: cfg.Kube.Cluster,
			Hosts: cfg.Kube.Registry, Registry: reg, ResyncInterval: time.Duration(cfg.Kube.ResyncInterval), Now: now,
			Log: k.log, Metrics: k.metrics,
			// The scans of what runs are indexed after every resync, so
			// "who runs CVE-X" reads no scan when it is asked.
			AfterResync: func(ctx context.Context) {
				if err := queries.Warm(ctx); err != nil && ctx.Err() == nil {
					k.log.Warn("inventory: indexing the scans of running images", "err", err)
				}
			}}); err != nil {
			return nil, err
		}
		k.service.Queries = queries
	}
	w := cfg.Kube.Webhook
	if w.Addr == "" {
		return k, nil
	}
	ao := kube.AdmitterOptions{Hosts: cfg.Kube.Registry, Registry: reg, VerdictTTL: time.Duration(w.VerdictCacheTTL), Now: now}
	if w.VerdictCacheTTL == 0 {
		ao.VerdictTTL = -1
	}
	if w.Verdicts {
		ao.Verdicts = gp.keeper
	}
	if w.RequirePromotion {
		key := gp.keeper.Key()
		if key == nil {
			return nil, errors.New("kube.webhook.requirePromotion: needs drydock's signing key (sign.disabled is set)")
		}
		pub := key.PublicKey("drydock")
		ao.PromotionKey, ao.Attestations = &pub, reg
	}
	admitter, err := kube.NewAdmitter(ao)
	if err != nil {
		return nil, err
	}
	if k.webhook, err = kube.NewWebhook(kube.WebhookOptions{Admitter: admitter, ExemptNamespaces: w.ExemptNamespaces,
		AuditOnly: w.Mode == "audit", Audit: audits, Events: gp.dispatcher, Metrics: k.metrics, Log: k.log}); err != nil {
		return nil, err
	}
	k.url, err = webhookURL(w)
	if err != nil {
		return nil, err
	}
	if k.certs, err = kube.LoadCerts(kube.CertOptions{CertFile: w.CertFile, KeyFile: w.KeyFile, CAFile: w.CAFile,
		// Certificates live on the wall clock (the API server checks them
		// against its own), never on the gate's clock.
		Dir: filepath.Join(cfg.Data, "kube", "webhook"), Hosts: certHosts(w, k.url)}); err != nil {
		return nil, err
	}
	if k.ln, err = net.Listen("tcp", w.Addr); err != nil {
		return nil, fmt.Errorf("kube.webhook.addr: listen on %s: %w", w.Addr, err)
	}
	if k.url == "" { // port 0: the URL names the bound port
		_, port, _ := net.SplitHostPort(k.ln.Addr().String())
		k.url = "https://" + hostOnly(w.Addr) + ":" + port
	}
	k.service.Webhooks = func(mutating bool) (*kube.WebhookManifests, error) {
		s, err := k.webhookSettings(mutating)
		if err != nil {
			return nil, err
		}
		return kube.WebhookConfigurations(s)
	}
	return k, nil
}

// webhookURL is kube.webhook.url, else https://HOST:PORT of the listen
// address ("" while the port is 0: the bound one is filled in later).
func webhookURL(w config.KubeWebhook) (string, error) {
	if w.URL != "" {
		return w.URL, nil
	}
	host, port, err := net.SplitHostPort(w.Addr)
	if err != nil {
		return "", fmt.Errorf("kube.webhook.addr: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if len(w.Hosts) == 0 {
			return "", errors.New("kube.webhook.url: set it (https://HOST:PORT, where the API server reaches drydock): the listen address " + w.Addr + " names no host")
		}
		host = w.Hosts[0]
	}
	if port == "0" {
		return "", nil
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

func hostOnly(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
		return "[" + h + "]"
	}
	return h
}

// certHosts are the names of the generated certificate: kube.webhook.hosts,
// else the URL's host, else the listen address's host.
func certHosts(w config.KubeWebhook, u string) []string {
	if len(w.Hosts) > 0 {
		return w.Hosts
	}
	if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
		return []string{p.Hostname()}
	}
	h, _, _ := net.SplitHostPort(w.Addr)
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		return []string{"localhost", "127.0.0.1"}
	}
	return []string{h}
}

// start serves the webhooks and runs the watcher until ctx ends.
func (k *kubeParts) start(ctx context.Context, spawn func(func())) {
	if k.watcher != nil {
		wctx, cancel := context.WithCancel(ctx)
		k.stopWatch, k.watcherDone = cancel, make(chan struct{})
		go func() {
			defer close(k.watcherDone)
			k.watch(wctx)
		}()
	}
	if k.ln == nil {
		return
	}
	k.hs = &http.Server{
		Handler:           k.webhook.Handler(),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: k.certs.GetCertificate},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(k.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	k.log.Info("admission webhooks serving", "addr", k.ln.Addr().String(), "url", k.url,
		"mode", k.cfg.Webhook.Mode, "verdicts", k.cfg.Webhook.Verdicts, "mutate", k.cfg.Webhook.Mutate,
		"registry", k.cfg.Registry, "exempt", k.cfg.Webhook.ExemptNamespaces)
	spawn(func() {
		if err := k.hs.ServeTLS(k.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			k.log.Error("admission webhooks stopped", "err", err)
		}
	})
}

// watch runs the watcher, starting it again (after 5 s, doubling to a
// minute) when it stops on an error: the cluster may be away for a while.
func (k *kubeParts) watch(ctx context.Context) {
	delay := 5 * time.Second
	for {
		err := k.watcher.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		k.log.Error("inventory: watching stopped, starting again", "in", delay.String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// shutdown stops the watcher and the webhook listener (letting reviews
// in flight finish), then closes the inventory.
func (k *kubeParts) shutdown(ctx context.Context) {
	if k.stopWatch != nil {
		k.stopWatch()
		<-k.watcherDone
		k.stopWatch = nil
	}
	if k.inventory != nil {
		if err := k.inventory.Close(); err != nil {
			k.log.Warn("closing the inventory", "err", err)
		}
		k.inventory = nil
	}
	switch {
	case k.hs != nil:
		if err := k.hs.Shutdown(ctx); err != nil {
			_ = k.hs.Close()
		}
	case k.ln != nil:
		_ = k.ln.Close()
	}
}

// WebhookAddr returns the address the admission webhooks listen on ("" when
// they are off).
func (s *Server) WebhookAddr() string {
	if s.kube == nil || s.kube.ln == nil {
		return ""
	}
	return s.kube.ln.Addr().String()
}

// WebhookSettings returns what `drydock kube install-webhook` renders the
// webhook configurations from.
func (k *kubeParts) webhookSettings(mutating bool) (kube.WebhookSettings, error) {
	if k.ln == nil {
		return kube.WebhookSettings{}, fmt.Errorf("%w: the admission webhooks are off (set kube.webhook.addr)", kube.ErrNotConfigured)
	}
	return kube.WebhookSettings{URL: k.url, CABundle: k.certs.CABundle(), FailurePolicy: k.cfg.Webhook.FailurePolicy,
		TimeoutSeconds: int32(k.cfg.Webhook.TimeoutSeconds), ExemptNamespaces: k.cfg.Webhook.ExemptNamespaces,
		Mutating: mutating || k.cfg.Webhook.Mutate}, nil
}
