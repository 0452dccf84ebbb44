package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRoute(t *testing.T) {
	tests := map[string]string{
		"/v2/":                                  "v2",
		"/v2":                                   "v2",
		"/v2/_catalog":                          "catalog",
		"/v2/quarantine/nginx/blobs/uploads/":   "blob_upload",
		"/v2/a/b/blobs/uploads/123":             "blob_upload",
		"/v2/a/blobs/sha256:abc":                "blob",
		"/v2/live/app/manifests/1.0":            "manifest",
		"/v2/a/tags/list":                       "tags",
		"/v2/a/referrers/sha256:abc":            "referrers",
		"/v2/a/other":                           "v2_other",
		"/healthz":                              "healthz",
		"/metrics":                              "metrics",
		"/favicon.ico":                          "other",
		"/v2/blobs/manifests/tags/x/manifests/": "manifest",
	}
	for path, want := range tests {
		if got := Route(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestInstrumentCountsRequestsAndBytes(t *testing.T) {
	m := New()
	h := m.Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, strings.Repeat("x", int(n)*2))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v2/a/blobs/uploads/", "application/octet-stream", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	m.ObserveUpload("a", 5, 20*time.Millisecond)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`drydock_http_requests_total{code="201",method="POST",route="blob_upload"} 1`,
		`drydock_http_request_bytes_total{route="blob_upload"} 5`,
		`drydock_http_response_bytes_total{route="blob_upload"} 10`,
		`drydock_registry_blob_upload_duration_seconds_count 1`,
		`drydock_registry_blob_upload_bytes_total 5`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}

// TestGCProtect: the barrier's waits are a histogram in seconds.
func TestGCProtect(t *testing.T) {
	m := New()
	g := m.NewGC()
	g.ObserveProtect(3 * time.Millisecond)
	g.ObserveProtect(300 * time.Millisecond)
	var nilGC *GC
	nilGC.ObserveProtect(time.Second) // nil-safe, like the others

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`drydock_gc_protect_seconds_bucket{le="0.0025"} 0`,
		`drydock_gc_protect_seconds_bucket{le="0.005"} 1`,
		`drydock_gc_protect_seconds_bucket{le="0.25"} 1`,
		`drydock_gc_protect_seconds_bucket{le="0.5"} 2`,
		`drydock_gc_protect_seconds_count 2`,
		`drydock_gc_protect_seconds_sum 0.303`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}

// TestTimeWriteback: each write-back is timed, failed or not, and
// failures are counted; the sync's result passes through.
func TestTimeWriteback(t *testing.T) {
	m := New()
	fail := errors.New("disk gone")
	results := []error{nil, fail, nil}
	sync := m.TimeWriteback(func() error {
		err := results[0]
		results = results[1:]
		return err
	})
	for i, want := range []error{nil, fail, nil} {
		if err := sync(); err != want {
			t.Errorf("sync %d = %v, want %v", i, err, want)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`drydock_storage_writeback_seconds_count 3`,
		`drydock_storage_writeback_failures_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}
