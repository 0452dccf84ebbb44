package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TimeWriteback returns sync (the storage's write-back, storage.writeback)
// timed into drydock_storage_writeback_seconds, its failures counted in
// drydock_storage_writeback_failures_total. Call it once per Metrics.
//
// A write-back that takes long says the disk stalls: while it lasts, the
// pushes' own syncs wait too.
func (m *Metrics) TimeWriteback(sync func() error) func() error {
	took := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "drydock", Subsystem: "storage", Name: "writeback_seconds",
		Help:    "Time of each write-back of the filesystem storage's pending changes to disk (syncfs, every storage.writeback while anything changed).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	})
	failed := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "drydock", Subsystem: "storage", Name: "writeback_failures_total",
		Help: "Write-backs of the filesystem storage that failed (each is retried at the next interval).",
	})
	m.reg.MustRegister(took, failed)
	return func() error {
		start := time.Now()
		err := sync()
		took.Observe(time.Since(start).Seconds())
		if err != nil {
			failed.Inc()
		}
		return err
	}
}
