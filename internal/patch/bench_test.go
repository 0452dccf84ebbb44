package patch

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/drydock-project/drydock/internal/testimage"
)

// The patch benchmarks measure the bookworm+nginx case with warm caches
// (one untimed patch first fetches the indexes and the .debs; the index
// phase still checks InRelease against the mirror). Every iteration patches
// and writes the result to a new OCI layout. They print figures and assert
// no time: per phase the mean seconds (read-s, index-s, resolve-s,
// download-s, unpack-s, scripts-s, layer-s, write-s; unpack + scripts +
// layer is "build layer"), the new layer's compressed size and the test
// process's peak RSS during the timed loop. The goal (issue: at most 5 s
// with a warm package cache on 2 cores) is judged by bench/patch.sh, not
// here.
//
//	go test -run '^$' -bench BenchmarkPatch -benchtime 3x ./internal/patch

// benchPhases are the phases reported, in order.
var benchPhases = []string{"read", "index", "resolve", "download", "unpack", "scripts", "layer", "write"}

// BenchmarkPatchBookwormNginx patches the packages whose maintainer
// scripts drydock handles natively: nothing runs in a sandbox.
func BenchmarkPatchBookwormNginx(b *testing.B) {
	o := benchOptions(b)
	o.Mode = FromReport
	o.Wanted = map[string]string{"libssl3": "", "liblzma5": "", "libpcre2-8-0": "", "perl-base": ""}
	benchPatch(b, o)
}

// BenchmarkPatchBookwormNginxSandbox installs every update, running the
// scripts drydock cannot handle natively in the sandbox.
func BenchmarkPatchBookwormNginxSandbox(b *testing.B) {
	requireSandbox(b)
	o := benchOptions(b)
	o.Mode = UpdateAll
	o.Sandbox = true
	benchPatch(b, o)
}

// benchOptions is requireMirror + baseOptions for a benchmark (those take
// a *testing.T).
func benchOptions(b *testing.B) Options {
	b.Helper()
	requireMirror(b, testimage.BookwormNginx.Suite)
	return baseOptions(b)
}

func benchPatch(b *testing.B, o Options) {
	ti := testimage.Require(b, testimage.BookwormNginx)
	base, err := ti.Open()
	if err != nil {
		b.Fatal(err)
	}
	var layerSize int64
	var changes int
	once := func() map[string]time.Duration {
		res, cleanup, err := Image(b.Context(), base, false, o)
		defer cleanup()
		if err != nil {
			b.Fatal(err)
		}
		if res.Image == nil {
			b.Fatalf("nothing patched: %s", res.Plan.Reason)
		}
		start := time.Now()
		writeLayoutTo(b, o.TempDir, res.Image)
		res.Timings["write"] = time.Since(start)
		layerSize, changes = res.LayerSize, len(res.Plan.Changes)
		return res.Timings
	}
	once() // warm the index and package caches
	resetPeakRSS()
	sum := map[string]time.Duration{}
	n := 0
	for b.Loop() {
		for k, v := range once() {
			sum[k] += v
		}
		n++
	}
	for _, ph := range benchPhases {
		b.ReportMetric(sum[ph].Seconds()/float64(n), ph+"-s")
	}
	b.ReportMetric(float64(changes), "packages")
	b.ReportMetric(float64(layerSize), "layer-bytes")
	if hwm := vmHWM(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MiB")
	}
}

// writeLayoutTo writes img to a new OCI layout under dir (removed after).
func writeLayoutTo(b *testing.B, dir string, img v1.Image) {
	out, err := os.MkdirTemp(dir, "layout-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(out)
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "bench"})); err != nil {
		b.Fatal(err)
	}
}

// vmHWM is this process's peak resident set size in bytes (VmHWM of
// /proc/self/status), 0 where unavailable.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0+), so that one
// benchmark's peak is not the previous one's.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
