package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/kube"
	"github.com/drydock-project/drydock/internal/kube/kubetest"
	"github.com/drydock-project/drydock/internal/testimage"
)

// admissionRate and admissionCount: 200 admissions a second for 5 s.
const (
	admissionRate  = 200
	admissionCount = 1000
)

// BenchmarkKubeAdmission measures admission of a pod of 8 containers of
// one live/ image, with the real gate (a scanned, promoted image; the
// verdict decided by the gatekeeper from its store), at 200 admissions a
// second: at the webhook (HTTPS to drydock's listener) and through a real
// API server (a dry-run pod create that calls the webhook). Warm: the
// verdict reused for 500 ms (the default); cold: no verdict cache, every
// admission decides the verdict from the store and resolves the tag.
// It reports p50 and p99 in milliseconds, the admissions that failed
// (time-outs under load) and the test process's CPU time per admission
// (drydock with the benchmark's HTTPS client at the handler; drydock with
// client-go, not the API server, through it). Goal: p99
// under 10 ms warm, under 50 ms cold. Run: make bench-kube, and give the
// machine's load beside the figures: on a loaded machine the tail is the
// scheduler's.
func BenchmarkKubeAdmission(b *testing.B) {
	ti := testimage.Require(b, testimage.Bookworm)
	for _, mode := range []struct {
		name string
		ttl  config.Duration
	}{{"warm", config.Duration(500 * time.Millisecond)}, {"cold", 0}} {
		g := startGateServer(b, lenientPolicy, withKube(func(k *config.Kube) { k.Webhook.VerdictCacheTTL = mode.ttl }))
		promoteLive(b, g, ti, "nginx:1.27.1")
		var m kube.WebhookManifests
		if code := g.api("GET", "/api/v1/kube/webhook-configurations", nil, &m); code != http.StatusOK {
			b.Fatalf("webhook configurations: %d", code)
		}
		images := make([]string, 8)
		for i := range images {
			images[i] = registryHost + "/live/nginx:1.27.1"
		}
		b.Run("handler/"+mode.name, func(b *testing.B) {
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(m.Validating.Webhooks[0].ClientConfig.CABundle)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 64}}
			url := *m.Validating.Webhooks[0].ClientConfig.URL
			body := admissionReview(b, images)
			for b.Loop() {
				lat := paced(b, func() error {
					resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					var out admissionv1.AdmissionReview
					if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
						return fmt.Errorf("no admission answer: %v", err)
					}
					if !out.Response.Allowed {
						return fmt.Errorf("%w: %+v", errDenied, out.Response.Result)
					}
					return nil
				})
				report(b, lat)
			}
		})
		b.Run("apiserver/"+mode.name, func(b *testing.B) {
			if kubetest.Available() != nil {
				b.Skip(kubetest.Available())
			}
			c := kubetest.Shared(b)
			installWebhooks(b, g, c, false)
			ns := c.Namespace(b, "bench")
			pods := c.Client.CoreV1().Pods(ns)
			p := pod("bench", images...)
			for b.Loop() {
				lat := paced(b, func() error {
					_, err := pods.Create(b.Context(), p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
					if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
						return fmt.Errorf("%w: %v", errDenied, err)
					}
					return err
				})
				report(b, lat)
			}
		})
	}
}

func admissionReview(b *testing.B, images []string) []byte {
	raw, _ := json.Marshal(pod("bench", images...))
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "bench", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "bench",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}, UserInfo: authnv1.UserInfo{Username: "bench"}}})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// errDenied marks an admission refused: a wrong answer (the pod runs a
// promoted live/ image), not the load's doing.
var errDenied = errors.New("admission denied")

// paced calls fn admissionCount times at admissionRate a second (open
// loop: a slow answer does not slow the arrivals) and returns the
// latencies of the admissions that succeeded, the errors (an API server
// time-out on a loaded machine is counted, not fatal; the first is
// logged) and the CPU time this process spent per admission, the figure
// the machine's load does not change. A denial (errDenied) is fatal.
func paced(b *testing.B, fn func() error) run {
	var mu sync.Mutex
	var r run
	var denied error
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / admissionRate)
	defer tick.Stop()
	cpu0 := processCPU(b)
	for range admissionCount {
		<-tick.C
		wg.Go(func() {
			start := time.Now()
			err := fn()
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, errDenied) {
				denied = err
				return
			}
			if err != nil {
				if r.errors == 0 {
					b.Logf("first failed admission (after %s): %v", d.Round(time.Millisecond), err)
				}
				r.errors++
				return
			}
			r.lat = append(r.lat, d)
		})
	}
	wg.Wait()
	if denied != nil {
		b.Fatal(denied)
	}
	r.cpu = (processCPU(b) - cpu0) / admissionCount
	return r
}

// run is what paced measured.
type run struct {
	lat    []time.Duration
	errors int
	cpu    time.Duration // this process's CPU time per admission
}

// processCPU is the user and system CPU time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, r run) {
	if len(r.lat) == 0 {
		b.Fatalf("all %d admissions failed", r.errors)
	}
	lat := r.lat
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(r.errors), "errors")
	b.ReportMetric(float64(r.cpu)/float64(time.Millisecond), "cpu-ms/admission")
	b.ReportMetric(0, "ns/op")
}
