package patch

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/gzip"

	"github.com/drydock-project/drydock/internal/testimage"
)

// The large-layer test checks the goal "streaming, not buffering: patching
// an image with a 1 GB layer stays under 300 MB RSS". It builds
// bookworm-nginx plus one 1 GiB layer of incompressible bytes, writes it to
// an OCI layout, and patches it (libssl3 from a report, no sandbox) in a
// child process — the test binary run again — so that the child's peak RSS
// (VmHWM) is the patch's and the result's write to a new OCI layout alone,
// not the layer generator's. The RSS is printed, and written as JSON to
// $DRYDOCK_BENCH_OUT when set; only the patch's success and the result's
// validity are asserted (bench/patch.sh compares the RSS with the goal).
// It needs about 3 GB in the temporary directory.

const (
	bigTestEnv    = "DRYDOCK_BIG_TEST"       // "1" runs TestPatchLargeLayerMemory
	bigChildEnv   = "DRYDOCK_BIG_TEST_CHILD" // the child's work directory
	bigFiles      = 64
	bigFileSize   = 16 << 20 // 64 x 16 MiB = 1 GiB
	bigLayoutRef  = "big"
	bigResultFile = "child.json"
)

// bigResult is what the child reports.
type bigResult struct {
	PeakRSSBytes  int64              `json:"peak_rss_bytes"`
	PeakRSSMiB    float64            `json:"peak_rss_mib"`
	Seconds       float64            `json:"seconds"` // patch + write
	PhaseSeconds  map[string]float64 `json:"phase_seconds"`
	LayerBytes    int64              `json:"layer_bytes"`     // the patch layer, compressed
	BigLayerBytes int64              `json:"big_layer_bytes"` // the 1 GiB layer, compressed
	Packages      int                `json:"packages"`
}

func TestPatchLargeLayerMemory(t *testing.T) {
	if os.Getenv(bigTestEnv) != "1" {
		t.Skipf("skipping: builds a 1 GiB layer (about 3 GB of temporary disk, a few minutes); run with %s=1 go test -run TestPatchLargeLayerMemory ./internal/patch, or bench/patch.sh", bigTestEnv)
	}
	_, base := openBase(t, testimage.BookwormNginx)
	dir := t.TempDir()

	start := time.Now()
	gz := filepath.Join(dir, "big.tar.gz")
	if err := writeBigLayer(gz); err != nil {
		t.Fatal(err)
	}
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := baseLayers[len(baseLayers)-1].MediaType()
	if err != nil {
		t.Fatal(err)
	}
	big, err := tarball.LayerFromFile(gz, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	bigSize, err := big.Size()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, big)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(filepath.Join(dir, "in"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": bigLayoutRef})); err != nil {
		t.Fatal(err)
	}
	os.Remove(gz)
	t.Logf("built the input image (%d MiB extra layer, compressed) in %s", bigSize>>20, time.Since(start).Round(time.Millisecond))

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPatchLargeLayerMemoryChild$", "-test.v", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), bigChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child patch: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, bigResultFile))
	if err != nil {
		t.Fatalf("child result: %v\n%s", err, out)
	}
	var r bigResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	r.BigLayerBytes = bigSize
	t.Logf("patch of bookworm-nginx + a 1 GiB layer: peak RSS %.1f MiB (%.0f MB; goal: under 300 MB), %.1f s (patch + write), phases %v, %d packages, patch layer %d bytes",
		r.PeakRSSMiB, float64(r.PeakRSSBytes)/1e6, r.Seconds, r.PhaseSeconds, r.Packages, r.LayerBytes)
	if path := os.Getenv("DRYDOCK_BENCH_OUT"); path != "" {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The result validates (without hashing the 1 GiB layer again) and
	// has the input's layers plus the patch layer.
	patched := onlyImage(t, filepath.Join(dir, "out"), "output")
	if err := validate.Image(patched, validate.Fast); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	layers, err := patched.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(baseLayers)+2 {
		t.Errorf("patched image has %d layers, want %d", len(layers), len(baseLayers)+2)
	}
	if r.Packages == 0 {
		t.Error("the child patched no package")
	}
}

// TestPatchLargeLayerMemoryChild is the patch of TestPatchLargeLayerMemory,
// run in a child process; it skips when run directly.
func TestPatchLargeLayerMemoryChild(t *testing.T) {
	dir := os.Getenv(bigChildEnv)
	if dir == "" {
		t.Skip("skipping: run by TestPatchLargeLayerMemory in a child process")
	}
	start := time.Now()
	res, err := Run(t.Context(), Request{Image: "oci:" + filepath.Join(dir, "in") + ":" + bigLayoutRef,
		Output: "oci:" + filepath.Join(dir, "out"), Tag: bigLayoutRef + "-patched",
		Mode: FromReport, Packages: map[string]string{"libssl3": ""}, Sandbox: SandboxNever},
		WithReleases(hostReleases(t)), WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest == "" {
		t.Fatalf("nothing patched: %s", res.Platforms[0].Plan.Reason)
	}
	p := res.Platforms[0]
	r := bigResult{Seconds: time.Since(start).Seconds(), PhaseSeconds: p.Seconds,
		LayerBytes: p.LayerSize, Packages: len(p.Plan.Changes)}
	r.PeakRSSBytes = vmHWM()
	r.PeakRSSMiB = float64(r.PeakRSSBytes) / (1 << 20)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bigResultFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// onlyImage opens the OCI layout at dir, which must hold exactly one
// manifest, and returns that image; what ("input", "output") names the
// layout in failures.
func onlyImage(t *testing.T, dir, what string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%s layout has %d manifests, want 1", what, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeBigLayer writes a gzip-compressed (BestSpeed) tar of bigFiles files
// of bigFileSize pseudo-random, incompressible bytes from a seeded ChaCha8
// stream, without holding more than a buffer of it in memory.
func writeBigLayer(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	var seed [32]byte
	copy(seed[:], "drydock large-layer memory test")
	src := rand.NewChaCha8(seed)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bigdata/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	for i := range bigFiles {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("bigdata/blob-%02d.bin", i), Mode: 0o644,
			Size: bigFileSize, ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, src, bigFileSize); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}
