package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Gate is the quarantine -> live gate's collectors. Its methods are what
// the gatekeeper reports; nil-safe so that a gate without metrics needs no
// checks.
type Gate struct {
	scans         *prometheus.CounterVec
	scanDuration  prometheus.Histogram
	verdicts      *prometheus.CounterVec
	promotions    *prometheus.CounterVec
	bypassRefused prometheus.Counter
}

// NewGate registers the gate's collectors on m's registry. images, when
// not nil, is read at every scrape for the number of digests per verdict
// state (drydock_gate_images).
func (m *Metrics) NewGate(images func(ctx context.Context) (map[string]int, error)) *Gate {
	g := &Gate{
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gate", Name: "scans_total",
			Help: "Scans run by the gate, by outcome (ok, error, stuck).",
		}, []string{"outcome"}),
		scanDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "drydock", Subsystem: "gate", Name: "scan_duration_seconds",
			Help:    "Time of successful scans, from reading the image to the stored report.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gate", Name: "verdict_changes_total",
			Help: "Changes of a digest's effective verdict, by the new state.",
		}, []string{"state"}),
		promotions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gate", Name: "promotions_total",
			Help: "Promotions to live/, by outcome (ok, refused, error).",
		}, []string{"outcome"}),
		bypassRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "gate", Name: "live_writes_refused_total",
			Help: "Writes to live/ through the registry API that were refused (attempted bypasses of the gate).",
		}),
	}
	m.reg.MustRegister(g.scans, g.scanDuration, g.verdicts, g.promotions, g.bypassRefused)
	if images != nil {
		m.reg.MustRegister(&imagesCollector{count: images, desc: prometheus.NewDesc("drydock_gate_images",
			"Digests known to the gate, by the state of their effective verdict.", []string{"state"}, nil)})
	}
	return g
}

// ScanDone counts a scan by outcome; d is its duration (ok scans only).
func (g *Gate) ScanDone(outcome string, d time.Duration) {
	if g == nil {
		return
	}
	g.scans.WithLabelValues(outcome).Inc()
	if outcome == "ok" {
		g.scanDuration.Observe(d.Seconds())
	}
}

// VerdictChanged counts a change of a digest's effective verdict.
func (g *Gate) VerdictChanged(state string) {
	if g != nil {
		g.verdicts.WithLabelValues(state).Inc()
	}
}

// Promotion counts a promotion by outcome.
func (g *Gate) Promotion(outcome string) {
	if g != nil {
		g.promotions.WithLabelValues(outcome).Inc()
	}
}

// LiveWriteRefused counts a refused write to live/.
func (g *Gate) LiveWriteRefused() {
	if g != nil {
		g.bypassRefused.Inc()
	}
}

// imagesCollector reads the verdict counts at scrape time.
type imagesCollector struct {
	count func(ctx context.Context) (map[string]int, error)
	desc  *prometheus.Desc
}

func (c *imagesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *imagesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range []string{"pending", "pass", "fail", "exempt"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
