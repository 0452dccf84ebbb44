package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GC is the collectors of garbage collection and retention;
// nil-safe like Gate.
type GC struct {
	runs        *prometheus.CounterVec
	duration    prometheus.Histogram
	freed       prometheus.Counter
	deleted     *prometheus.CounterVec
	protected   prometheus.Counter
	lastSuccess prometheus.Gauge
	running     prometheus.Gauge
	retention   prometheus.Counter
	usage       *prometheus.GaugeVec
	protect     prometheus.Histogram
}

// NewGC registers the collection's collectors on m's registry.
func (m *Metrics) NewGC() *GC {
	g := &GC{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "runs_total",
			Help: "Garbage collections run, by outcome (ok, error) and whether they were dry runs.",
		}, []string{"outcome", "dry_run"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "duration_seconds",
			Help:    "Time of garbage collections (not dry runs), from arming the barrier to the end of the sweep.",
			Buckets: []float64{.1, .5, 1, 5, 15, 60, 300, 900, 3600},
		}),
		freed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "freed_bytes_total",
			Help: "Bytes of blob content, uploads and staging files deleted by garbage collection.",
		}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "deleted_total",
			Help: "Objects deleted by garbage collection, by kind (manifest, referrer, layer, blob, upload, temp).",
		}, []string{"kind"}),
		protected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "protected_total",
			Help: "Objects a collection found unreachable but kept because a write referenced them during the cycle.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "last_success_timestamp_seconds",
			Help: "When the last garbage collection (not a dry run) finished successfully.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "running",
			Help: "1 while this process runs a garbage collection.",
		}),
		retention: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "retention", Name: "deleted_tags_total",
			Help: "Tags deleted by retention policies.",
		}),
		usage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "drydock", Subsystem: "storage", Name: "namespace_bytes",
			Help: "Bytes stored by each namespace, dedupe-aware (a blob counts once per repository), as of the last collection.",
		}, []string{"namespace"}),
		protect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "drydock", Subsystem: "gc", Name: "protect_seconds",
			Help: "Time a registry write spent on the collection barrier while a collection ran: marking what it references, " +
				"and waiting for the collector (its claims of objects being deleted, its turns on the key store).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
	}
	m.reg.MustRegister(g.runs, g.duration, g.freed, g.deleted, g.protected, g.lastSuccess, g.running, g.retention, g.usage, g.protect)
	return g
}

// Collected records a finished collection.
func (g *GC) Collected(ok, dryRun bool, d time.Duration, freed int64, deleted map[string]int, protected int, at time.Time) {
	if g == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	dr := "false"
	if dryRun {
		dr = "true"
	}
	g.runs.WithLabelValues(outcome, dr).Inc()
	if dryRun {
		return
	}
	g.duration.Observe(d.Seconds())
	g.freed.Add(float64(freed))
	for kind, n := range deleted {
		g.deleted.WithLabelValues(kind).Add(float64(n))
	}
	g.protected.Add(float64(protected))
	if ok {
		g.lastSuccess.Set(float64(at.Unix()))
	}
}

// Running sets whether this process runs a collection.
func (g *GC) Running(on bool) {
	if g == nil {
		return
	}
	if on {
		g.running.Set(1)
	} else {
		g.running.Set(0)
	}
}

// RetentionDeleted counts tags deleted by retention.
func (g *GC) RetentionDeleted(n int) {
	if g != nil {
		g.retention.Add(float64(n))
	}
}

// NamespaceUsage sets a namespace's usage after a collection.
func (g *GC) NamespaceUsage(ns string, bytes int64) {
	if g != nil {
		g.usage.WithLabelValues(ns).Set(float64(bytes))
	}
}

// ObserveProtect records the time one write spent on the collection
// barrier (gc.WithProtectObserver).
func (g *GC) ObserveProtect(d time.Duration) {
	if g != nil {
		g.protect.Observe(d.Seconds())
	}
}
