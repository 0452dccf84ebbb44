package scan

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// gateRegistry is the gate's read path: drydock's registry over a storage
// driver, read in process through registry.Transport with
// go-containerregistry's remote (which verifies blob digests as it reads),
// as the gatekeeper's scan job reads an image.
type gateRegistry struct {
	reg *registry.Registry
	drv storagedriver.StorageDriver
}

const gateHost = "drydock.internal"

func newGateRegistry(t testing.TB, drv storagedriver.StorageDriver) *gateRegistry {
	t.Helper()
	reg, err := registry.New(context.Background(), drv)
	if err != nil {
		t.Fatal(err)
	}
	return &gateRegistry{reg: reg, drv: drv}
}

// push stores img as quarantine/NAME:v1 and returns its reference by digest.
func (g *gateRegistry) push(t testing.TB, repo string, img v1.Image) name.Digest {
	t.Helper()
	tag, err := name.NewTag(gateHost+"/quarantine/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithTransport(g.reg.Transport())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// open reads ref as the gatekeeper does.
func (g *gateRegistry) open(t testing.TB, ref name.Digest) v1.Image {
	t.Helper()
	desc, err := remote.Get(ref, remote.WithTransport(g.reg.Transport()), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// overwriteBlob replaces the stored bytes of blob d (distribution's
// storage layout), as a disk fault or an attacker with storage access
// would.
func (g *gateRegistry) overwriteBlob(t testing.TB, d v1.Hash, data []byte) {
	t.Helper()
	p := fmt.Sprintf("/docker/registry/v2/blobs/%s/%s/%s/data", d.Algorithm, d.Hex[:2], d.Hex)
	if err := g.drv.PutContent(context.Background(), p, data); err != nil {
		t.Fatal(err)
	}
}

// TestGatePathRefusals: corrupt, hostile and unverifiable images read
// through the registry as the gate reads them are refused, permanently,
// naming the digest or entry.
func TestGatePathRefusals(t *testing.T) {
	s, err := New(testDB(), clockAt("2025-02-13"))
	if err != nil {
		t.Fatal(err)
	}
	base := debianBase(t)
	baseDigest, _ := base.Digest()
	good := layeredImage(t, base)

	t.Run("layer blob altered in storage", func(t *testing.T) {
		g := newGateRegistry(t, inmemory.New())
		ref := g.push(t, "altered", good)
		rc, err := base.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		fake, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		fake[len(fake)/2] ^= 0xff // one byte flipped: the gzip stream breaks before the digest is checked
		g.overwriteBlob(t, baseDigest, fake)
		_, err = s.Image(t.Context(), g.open(t, ref))
		wantRefusal(t, err, refusal.Corrupt, "layer 0 ("+baseDigest.String()+")", "not to the digest the manifest names")
	})
	t.Run("diff_id of the config does not match", func(t *testing.T) {
		cf, err := good.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		wrong := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
		cf.RootFS.DiffIDs[0] = wrong
		img, err := mutate.ConfigFile(good, cf)
		if err != nil {
			t.Fatal(err)
		}
		g := newGateRegistry(t, inmemory.New())
		_, err = s.Image(t.Context(), g.open(t, g.push(t, "diffid", img)))
		wantRefusal(t, err, refusal.Corrupt, "layer 0 ("+baseDigest.String()+")", "rootfs.diff_ids says "+wrong.String())
	})
	t.Run("whiteout of the dpkg status", func(t *testing.T) {
		g := newGateRegistry(t, inmemory.New())
		img := layeredImage(t, base, gzLayer(t, tent{"var/lib/dpkg/.wh.status", ""}))
		_, err := s.Image(t.Context(), g.open(t, g.push(t, "whiteout", img)))
		wantRefusal(t, err, refusal.Unverifiable, "var/lib/dpkg/status")
	})
	t.Run("dot-dot entry", func(t *testing.T) {
		g := newGateRegistry(t, inmemory.New())
		img := layeredImage(t, base, gzLayer(t, tent{"../escape", "x"}))
		_, err := s.Image(t.Context(), g.open(t, g.push(t, "hostile", img)))
		wantRefusal(t, err, refusal.Hostile, `entry "../escape"`)
	})
	t.Run("the honest image", func(t *testing.T) {
		g := newGateRegistry(t, inmemory.New())
		rep, err := s.Image(t.Context(), g.open(t, g.push(t, "good", good)))
		if err != nil || rep.Status != StatusOK || len(rep.Findings) == 0 {
			t.Fatalf("honest image: %v", err)
		}
	})
}

// peakMemory samples the Go heap in use while fn runs and reads the
// process's peak RSS (VmHWM, reset before fn through /proc/self/clear_refs).
func peakMemory(fn func()) (rssMB, heapMB float64, rssKnown bool) {
	runtime.GC()
	rssKnown = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return vmHWM(), float64(peak.Load()) / (1 << 20), rssKnown
}

// vmHWM is the process's peak resident set size, in MB.
func vmHWM() float64 {
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

// BenchmarkGateHugeStatus is issue 12's hole 5: a layer of under 1 MB
// holding a 50 MB dpkg status of 160,000 fake packages whose source is
// openssl, pushed to drydock's registry and judged through the gate's read
// path (registry.Transport, remote, Scanner.Image) against the real
// vulnerability database (../shared/vulndata). It reports the
// process's peak RSS and the peak Go heap while judging; the image must be
// refused as over a limit.
//
//	go test -run '^$' -bench GateHugeStatus -benchtime 1x ./internal/scan
//
// "default limits" is what the gate does; "no package limit" raises the
// package limit past the image, so that the findings limit is what stops
// the 160,000 × N findings.
func BenchmarkGateHugeStatus(b *testing.B) {
	const packages = 160_000
	img, statusSize, err := testimage.HugeDpkgStatusImage(b.TempDir(), packages)
	if err != nil {
		b.Fatal(err)
	}
	ls, _ := img.Layers()
	compressed, _ := ls[0].Size()
	g := newGateRegistry(b, filesystem.New(filesystem.DriverParameters{RootDirectory: b.TempDir(), MaxThreads: 100}))
	ref := g.push(b, "huge", img)
	db, err := vulndb.Open(realdb.Path(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	clock := WithClock(func() time.Time { return realdb.DataDate })
	b.Logf("layer: %d bytes compressed, dpkg status %d bytes, %d packages", compressed, statusSize, packages)
	for _, bm := range []struct {
		name   string
		limits Limits
		want   string
	}{
		{"default limits", Limits{}, "over the package limit"},
		{"no package limit", Limits{MaxPackages: 1_000_000}, "over the findings limit"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			s, err := New(db, clock, WithLimits(bm.limits))
			if err != nil {
				b.Fatal(err)
			}
			var worstRSS, worstHeap float64
			var rssKnown bool
			for b.Loop() {
				var serr error
				rss, heap, known := peakMemory(func() { _, serr = s.Image(b.Context(), g.open(b, ref)) })
				if k, _ := refusal.KindOf(serr); k != refusal.OverLimit || !strings.Contains(serr.Error(), bm.want) {
					b.Fatalf("Image = %v; want %q", serr, bm.want)
				}
				b.Log(serr)
				worstRSS, worstHeap, rssKnown = max(worstRSS, rss), max(worstHeap, heap), known
			}
			if rssKnown {
				b.ReportMetric(worstRSS, "peak-RSS-MB")
			}
			b.ReportMetric(worstHeap, "peak-heap-MB")
		})
	}
}
