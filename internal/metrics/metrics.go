// Package metrics holds drydock's Prometheus collectors. Each server owns
// its own prometheus.Registry (no global default registry), so tests and
// several servers in one process never collide.
package metrics

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors of one drydock server.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	bytesIn        *prometheus.CounterVec
	bytesOut       *prometheus.CounterVec
	inFlight       prometheus.Gauge
	uploadDuration prometheus.Histogram
	uploadBytes    prometheus.Counter
}

// New registers drydock's collectors, plus the Go runtime and process
// collectors, on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "drydock", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route and method.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 15, 60, 300},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "http", Name: "request_bytes_total",
			Help: "Bytes read from request bodies, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "http", Name: "response_bytes_total",
			Help: "Bytes written in response bodies, by route.",
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "drydock", Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served now.",
		}),
		uploadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "drydock", Subsystem: "registry", Name: "blob_upload_duration_seconds",
			Help:    "Time from the start of a blob upload to its successful completion.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "drydock", Subsystem: "registry", Name: "blob_upload_bytes_total",
			Help: "Bytes of completed blob uploads.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inFlight,
		m.uploadDuration, m.uploadBytes,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the Prometheus registry, for packages that add their own
// collectors (scanner, gate, job queue).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveUpload records one completed blob upload.
func (m *Metrics) ObserveUpload(_ string, bytes int64, d time.Duration) {
	m.uploadDuration.Observe(d.Seconds())
	m.uploadBytes.Add(float64(bytes))
}

// Instrument wraps h to count requests, bytes and durations. Routes are
// classified (manifests, blobs, uploads, ...) so that repository names
// never become label values.
func (m *Metrics) Instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := Route(r.URL.Path)
		start := time.Now()
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		cr := &countingReader{rc: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = cr
		}
		rw := &responseRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rw, r)
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rw.code)).Inc()
		m.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		m.bytesIn.WithLabelValues(route).Add(float64(cr.n))
		m.bytesOut.WithLabelValues(route).Add(float64(rw.n))
	})
}

// Route classifies a request path into a small fixed set of route names.
func Route(path string) string {
	switch {
	case path == "/v2" || path == "/v2/":
		return "v2"
	case path == "/v2/_catalog":
		return "catalog"
	case strings.HasPrefix(path, "/v2/"):
		// Repository names may contain "blobs" or "manifests" as components;
		// the route marker is the last one, since references cannot hold '/'.
		best, at := "v2_other", -1
		for _, r := range []struct{ marker, name string }{
			{"/blobs/uploads", "blob_upload"},
			{"/blobs/", "blob"},
			{"/manifests/", "manifest"},
			{"/tags/list", "tags"},
			{"/referrers/", "referrers"},
		} {
			if i := strings.LastIndex(path, r.marker); i > at {
				best, at = r.name, i
			}
		}
		return best
	case path == "/healthz", path == "/readyz", path == "/metrics":
		return strings.TrimPrefix(path, "/")
	default:
		return "other"
	}
}

type countingReader struct {
	rc io.ReadCloser
	n  int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

// responseRecorder remembers the status code and counts body bytes. It
// forwards Flush and ReadFrom through Unwrap (http.ResponseController).
type responseRecorder struct {
	http.ResponseWriter
	code        int
	n           int64
	wroteHeader bool
}

func (r *responseRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code = code
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

// ReadFrom keeps io.Copy's sendfile path for large blob downloads.
func (r *responseRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.wroteHeader = true
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.n += n
	return n, err
}

func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
