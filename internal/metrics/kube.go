package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kube is the collectors of drydock's Kubernetes side: admission
// decisions, rollouts and the running-image inventory. Nil-safe.
type Kube struct {
	decisions  *prometheus.CounterVec
	violations *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	rollouts   *prometheus.CounterVec
	podEvents  *prometheus.CounterVec
}

// NewKube registers the Kubernetes collectors on m's registry.
func (m *Metrics) NewKube() *Kube {
	k := &Kube{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "kube", Name: "admission_decisions_total",
			Help: "Admission reviews answered, by webhook (validate, mutate) and decision (allowed, denied, warned, exempt, skipped, patched, error).",
		}, []string{"webhook", "decision"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "kube", Name: "admission_violations_total",
			Help: "Containers whose image broke an admission rule, by rule (reference, registry, live-namespace, not-in-live, verdict).",
		}, []string{"rule"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "drydock", Subsystem: "kube", Name: "admission_duration_seconds",
			Help:    "Time to answer an admission review, from the request body to the response.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"webhook"}),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "kube", Name: "rollouts_total",
			Help: "Workload rollouts to a patched image, by outcome (done, rolled_back, failed).",
		}, []string{"outcome"}),
		podEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "kube", Name: "inventory_pod_updates_total",
			Help: "Pod changes written to the running-image inventory, by kind (put, delete, resync, error).",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(k.decisions, k.violations, k.duration, k.rollouts, k.podEvents)
	return k
}

// Admission counts one answered review and the rules its containers broke.
func (k *Kube) Admission(webhook, decision string, d time.Duration, rules []string) {
	if k == nil {
		return
	}
	k.decisions.WithLabelValues(webhook, decision).Inc()
	k.duration.WithLabelValues(webhook).Observe(d.Seconds())
	for _, r := range rules {
		k.violations.WithLabelValues(r).Inc()
	}
}

// Rollout counts a rollout by outcome.
func (k *Kube) Rollout(outcome string) {
	if k != nil {
		k.rollouts.WithLabelValues(outcome).Inc()
	}
}

// InventoryUpdate counts a change written to the inventory.
func (k *Kube) InventoryUpdate(kind string) {
	if k != nil {
		k.podEvents.WithLabelValues(kind).Inc()
	}
}
