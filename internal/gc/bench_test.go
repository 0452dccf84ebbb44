package gc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/registry"
)

// populate stores n small blobs in repos repositories: half of them as
// the layers of manifests of 50 layers, tagged, the other half
// unreferenced. The blobs and their links are written straight into the
// filesystem driver's layout (the registry's uploads would take most of
// the benchmark's time); the manifests go through the registry.
func populate(b *testing.B, s *setup, n, repos int) {
	b.Helper()
	ctx := context.Background()
	var g errgroup.Group
	g.SetLimit(4)
	per := n / repos
	v2 := filepath.Join(s.root, "docker", "registry", "v2")
	write := func(p string, data []byte) error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	for r := range repos {
		g.Go(func() error {
			repo := fmt.Sprintf("bench/r%d", r)
			var layers []ocispec.Descriptor
			for i := range per {
				buf := make([]byte, 64)
				binary.LittleEndian.PutUint64(buf, uint64(r*per+i))
				d := digest.FromBytes(buf)
				if err := write(filepath.Join(v2, "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data"), buf); err != nil {
					return err
				}
				if err := write(filepath.Join(v2, "repositories", repo, "_layers", "sha256", d.Encoded(), "link"), []byte(d.String())); err != nil {
					return err
				}
				if i%2 == 1 {
					continue // unreferenced
				}
				layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: 64})
				if len(layers) == 50 || i >= per-2 {
					cfg, err := s.reg.PutBlob(ctx, repo, fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","n":"%d-%d"}`, r, i))
					if err != nil {
						return err
					}
					cfg.MediaType = ocispec.MediaTypeImageConfig
					m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers}
					m.SchemaVersion = 2
					body, _ := json.Marshal(m)
					if _, err := s.reg.PutManifest(ctx, repo, ocispec.MediaTypeImageManifest, body, fmt.Sprintf("t%d", i)); err != nil {
						return err
					}
					layers = nil
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

func maxRSS() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10
}

// BenchmarkCollect100kBlobs: one collection (dry, then real) over
// 100,000 blobs on the filesystem driver, half of them unreferenced.
// Reports the time of each, the bytes allocated and the peak heap during
// the real one.
//
//	go test -run '^$' -bench Collect100k -benchtime 1x ./internal/gc/
func BenchmarkCollect100kBlobs(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := newSetup(b, dbtest.SQLite(b))
		populate(b, s, 100_000, 20)
		runtime.GC()
		start := time.Now()
		dry := s.collect(registry.CollectOptions{DryRun: true, MaxItems: 1000})
		dryTime := time.Since(start)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		start = time.Now()
		rep := s.collect(registry.CollectOptions{MaxItems: 1000})
		realTime := time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(dryTime.Seconds(), "dry-s")
		b.ReportMetric(realTime.Seconds(), "gc-s")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), "alloc-MiB")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(maxRSS())/(1<<20), "maxrss-MiB")
		b.Logf("scanned %d blobs; dry run listed %d blobs, the run deleted %d (%d bytes)", rep.Blobs, dry.Deleted[registry.KindBlob],
			rep.Deleted[registry.KindBlob], rep.FreedBytes)
	}
}

// BenchmarkPushDuringGC: pushes (3 blobs and a manifest each) by 4
// clients with and without collections running back to back; reports
// pushes per second and the slowest request of each.
//
//	go test -run '^$' -bench PushDuringGC -benchtime 1x ./internal/gc/
func BenchmarkPushDuringGC(b *testing.B) {
	for range b.N {
		for _, withGC := range []bool{false, true} {
			b.StopTimer()
			s := newSetup(b, dbtest.SQLite(b))
			populate(b, s, 20_000, 4) // something for the collections to walk
			ctx, cancel := context.WithCancel(context.Background())
			gcDone := make(chan int)
			go func() {
				n := 0
				for withGC && ctx.Err() == nil {
					c, err := s.member.Lead(ctx)
					if err != nil {
						break
					}
					_, _ = s.reg.Collect(ctx, registry.CollectOptions{Coordinator: c, Grace: time.Hour})
					_ = c.Finish(context.Background())
					n++
				}
				gcDone <- n
			}()
			var mu sync.Mutex
			var lat []time.Duration
			timed := func(method, path string, body []byte, h ...string) int {
				t0 := time.Now()
				code, _, _ := s.do(method, path, body, h...)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				return code
			}
			const clients, pushes = 4, 100
			b.StartTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() {
					repo := fmt.Sprintf("push/c%d", c)
					for i := range pushes {
						var layers []ocispec.Descriptor
						for range 3 {
							content := randomBytes(4096)
							d := digest.FromBytes(content)
							if code := timed("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content); code != http.StatusCreated {
								b.Errorf("push blob: %d", code)
								return
							}
							layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: 4096})
						}
						m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: layers[0], Layers: layers[1:]}
						m.SchemaVersion = 2
						body, _ := json.Marshal(m)
						if code := timed("PUT", fmt.Sprintf("/v2/%s/manifests/t%d", repo, i), body, "Content-Type: "+ocispec.MediaTypeImageManifest); code != http.StatusCreated {
							b.Errorf("push manifest: %d", code)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			cycles := <-gcDone
			slices.Sort(lat)
			name := "idle"
			if withGC {
				name = "gc"
			}
			b.ReportMetric(float64(clients*pushes)/elapsed.Seconds(), "pushes/s-"+name)
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms-"+name)
			b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms-"+name)
			b.Logf("%s: %d pushes in %s, %d collections meanwhile; requests p50 %s p99 %s max %s", name, clients*pushes, elapsed.Round(time.Millisecond),
				cycles, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
		}
	}
}
