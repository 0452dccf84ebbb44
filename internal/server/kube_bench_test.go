package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authnv1 "k8s.io/api/authentication/v1"
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
// It reports p50 and p99 in milliseconds. Goal: p99 under 10 ms warm,
// under 50 ms cold. Run: make bench-kube.
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
					if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil || !out.Response.Allowed {
						return fmt.Errorf("not admitted: %v %+v", err, out.Response)
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

// paced calls fn admissionCount times at admissionRate a second (open
// loop: a slow answer does not slow the arrivals) and returns the
// latencies.
func paced(b *testing.B, fn func() error) []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, admissionCount)
	tick := time.NewTicker(time.Second / admissionRate)
	defer tick.Stop()
	for range admissionCount {
		<-tick.C
		wg.Go(func() {
			start := time.Now()
			if err := fn(); err != nil {
				errs <- err
				return
			}
			d := time.Since(start)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return lat
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}
