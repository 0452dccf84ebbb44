package replicas

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/s3test"
)

// Benchmark workload: benchClients push benchImages images each, of two
// layers of benchLayer bytes, then pull them all; then benchHeads manifest
// HEADs by tag are sent one after the other to one replica.
const (
	benchClients = 8
	benchImages  = 4
	benchLayer   = 1 << 20
	benchHeads   = 2000
)

// BenchmarkReplicas prints push and pull throughput (through the
// balancer) and manifest HEAD latency (at one replica, with a bearer
// token: authentication included) for the embedded default (SQLite and
// files, one process) and for 1, 2 and 3 replicas on PostgreSQL + S3; and
// how many requests reached S3 during the HEADs (the goal: none).
//
//	go test -run '^$' -bench Replicas -benchtime 1x ./test/replicas
func BenchmarkReplicas(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		data := b.TempDir()
		cfg := filepath.Join(b.TempDir(), "embedded.yaml")
		if err := os.WriteFile(cfg, []byte("log: {level: warn}\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		c := &cluster{t: b, config: cfg, replicas: []*replica{{addr: freeAddr(b), data: data}}}
		c.proxy = httptest.NewServer(c.balancer())
		b.Cleanup(c.proxy.Close)
		b.Cleanup(func() { c.replicas[0].kill() })
		c.mustDrydock("bench-password\n", "user", "add", "bench", "--role", "push:quarantine,pull:quarantine", "--password-stdin", "--data", data)
		c.start(c.replicas[0])
		runBench(b, c, nil)
	})
	for n := 1; n <= 3; n++ {
		b.Run(fmt.Sprintf("postgres+s3/replicas=%d", n), func(b *testing.B) {
			s3 := s3test.Shared(b)
			counter := newCounter(b, s3.Endpoint)
			c := newCluster(b, n, clusterOptions{s3Endpoint: counter.url})
			c.addUser("bench", "bench-password", "push:quarantine", "pull:quarantine")
			c.startAll()
			runBench(b, c, counter)
		})
	}
}

func runBench(b *testing.B, c *cluster, s3 *counter) {
	auth := &authn.Basic{Username: "bench", Password: "bench-password"}
	cl := &client{addr: c.Addr(), auth: auth}
	var imgs [benchClients][benchImages]v1.Image
	for i := range benchClients {
		for j := range benchImages {
			img, err := random.Image(benchLayer, 2)
			if err != nil {
				b.Fatal(err)
			}
			imgs[i][j] = img
		}
	}
	total := float64(benchClients * benchImages * 2 * benchLayer)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range benchClients {
			wg.Go(func() {
				for j := range benchImages {
					if err := remote.Write(cl.tag("quarantine/bench", fmt.Sprintf("c%d-%d", i, j)), imgs[i][j], cl.opts(context.Background())...); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		push := time.Since(start)
		start = time.Now()
		for i := range benchClients {
			wg.Go(func() {
				for j := range benchImages {
					d, _ := imgs[i][j].Digest()
					if err := cl.pull(context.Background(), pushed{ref: cl.tag("quarantine/bench", fmt.Sprintf("c%d-%d", i, j)), digest: d}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		pull := time.Since(start)
		b.ReportMetric(total/push.Seconds()/1e6, "push-MB/s")
		b.ReportMetric(total/pull.Seconds()/1e6, "pull-MB/s")
	}
	b.StopTimer()
	lat, s3reqs := heads(b, c, s3)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-HEAD-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-HEAD-ms")
	if s3 != nil {
		b.ReportMetric(float64(s3reqs)/float64(len(lat)), "S3-requests/HEAD")
	}
}

// heads sends benchHeads manifest HEADs by tag to replica 0, with a bearer
// token from replica 0, and returns the sorted latencies and the requests
// that reached S3 meanwhile.
func heads(b *testing.B, c *cluster, s3 *counter) ([]time.Duration, int64) {
	base := "http://" + c.replicas[0].addr
	req, _ := http.NewRequest("GET", base+"/auth/token?service=drydock&scope=repository:quarantine/bench:pull", nil)
	req.SetBasicAuth("bench", "bench-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.Token == "" {
		b.Fatalf("token: %v", err)
	}
	head := func(tag string) time.Duration {
		req, _ := http.NewRequest("HEAD", base+"/v2/quarantine/bench/manifests/"+tag, nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("HEAD %s: %d", tag, resp.StatusCode)
		}
		return d
	}
	// Warm: each manifest read once (as the pulls did on some replica).
	for i := range benchClients {
		for j := range benchImages {
			head(fmt.Sprintf("c%d-%d", i, j))
		}
	}
	var before int64
	if s3 != nil {
		before = s3.n.Load()
	}
	lat := make([]time.Duration, 0, benchHeads)
	for k := range benchHeads {
		lat = append(lat, head(fmt.Sprintf("c%d-%d", k%benchClients, (k/benchClients)%benchImages)))
	}
	slices.Sort(lat)
	var n int64
	if s3 != nil {
		n = s3.n.Load() - before
	}
	return lat, n
}

// counter is a reverse proxy in front of the S3 server that counts the
// requests it forwards for registry paths (the readiness probes, which
// look at the bucket's root every second, are not counted).
type counter struct {
	url string
	n   atomic.Int64
}

func newCounter(t testing.TB, target string) *counter {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path+"?"+r.URL.RawQuery, "docker") {
			c.n.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}
