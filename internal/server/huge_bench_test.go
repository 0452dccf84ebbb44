package server_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/testimage"
)

// BenchmarkGateHugeStatus is issue 12's hole 5 against the server: a
// layer of under 1 MB holding a 50 MB dpkg status of 160,000 fake packages
// whose source is openssl is pushed to quarantine/ over HTTP; the gate
// scans it (its job, its read path, the real vulnerability database) and
// must fail it as over the package limit. It reports the process's peak
// RSS from the end of the push to the verdict (VmHWM, reset through
// /proc/self/clear_refs) and the peak Go heap; the acceptance is
// under 500 MB (the server went to 8 GB before).
//
//	go test -run '^$' -bench GateHugeStatus -benchtime 1x ./internal/server
func BenchmarkGateHugeStatus(b *testing.B) {
	img, size, err := testimage.HugeDpkgStatusImage(b.TempDir(), 160_000)
	if err != nil {
		b.Fatal(err)
	}
	g := startGateServer(b, strictPolicy)
	for i := 0; b.Loop(); i++ {
		ref := "quarantine/huge:" + strconv.Itoa(i)
		r, err := name.ParseReference(g.host+"/"+ref, name.Insecure)
		if err != nil {
			b.Fatal(err)
		}
		if err := remote.Write(r, img, remote.WithContext(b.Context())); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		rssKnown := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
		var peakHeap atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peakHeap.Load() {
					peakHeap.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		st := g.waitScanned(ref)
		took := time.Since(start)
		close(stop)
		<-sampled
		if st.Verdict.State != gate.StateFail || !strings.Contains(st.Scan.Error, "over the package limit") {
			b.Fatalf("verdict %s, scan error %q; want fail over the package limit", st.Verdict.State, st.Scan.Error)
		}
		b.Logf("status %d bytes; verdict %s after %s: %s", size, st.Verdict.State, took.Round(time.Millisecond), st.Scan.Error)
		if rssKnown {
			b.ReportMetric(vmHWMMB(), "peak-RSS-MB")
		}
		b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MB")
	}
}

// vmHWMMB is this process's peak resident set size in MB.
func vmHWMMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
