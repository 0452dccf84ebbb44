// Package bench measures drydock against the stock distribution registry.
// The benchmarks need two server binaries and are skipped without them;
// bench/registry.sh builds both and runs them.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	layers     = 5
	layerBytes = 20 << 20 // 5 x 20 MiB = 100 MiB
)

// server is one registry process under test.
type server struct {
	addr string
	cmd  *exec.Cmd
}

// peakRSS returns the process's peak resident set size in MiB (VmHWM).
func (s *server) peakRSS() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func start(b *testing.B, kind string) *server {
	b.Helper()
	dir := b.TempDir()
	addr := freeAddr(b)
	var cmd *exec.Cmd
	switch kind {
	case "drydock":
		bin := os.Getenv("DRYDOCK_BIN")
		if bin == "" {
			b.Skip("DRYDOCK_BIN not set: run bench/registry.sh")
		}
		cmd = exec.Command(bin, "serve", "--addr", addr, "--data", dir, "--log-level", "warn")
		// Anonymous access, like the stock registry's default configuration.
		cmd.Env = append(os.Environ(), "DRYDOCK_AUTH_ANONYMOUS=pull:*,push:*")
	case "distribution":
		bin := os.Getenv("STOCK_REGISTRY_BIN")
		if bin == "" {
			b.Skip("STOCK_REGISTRY_BIN not set: run bench/registry.sh")
		}
		// The stock configuration: filesystem storage, no cache, no auth.
		cfg := filepath.Join(dir, "config.yml")
		body := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd = exec.Command(bin, "serve", cfg)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s", kind, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &server{addr: addr, cmd: cmd}
}

// testImage is 5 layers of 20 MiB of incompressible bytes, stored as they
// are, so the figures measure the registry and not a compressor.
func testImage(b *testing.B) v1.Image {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	img := empty.Image
	for i := range layers {
		buf := make([]byte, layerBytes)
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < len(buf); k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		var err error
		img, err = mutate.AppendLayers(img, static.NewLayer(buf, types.OCILayer))
		if err != nil {
			b.Fatal(err)
		}
		_ = i
	}
	return mutate.MediaType(img, types.OCIManifestSchema1)
}

func BenchmarkRegistry(b *testing.B) {
	img := testImage(b)
	for _, kind := range []string{"drydock", "distribution"} {
		b.Run(kind+"/push", func(b *testing.B) {
			srv := start(b, kind)
			b.SetBytes(layers * layerBytes)
			b.ResetTimer()
			for i := range b.N {
				ref, err := name.ParseReference(fmt.Sprintf("%s/bench/push%d:latest", srv.addr, i), name.Insecure)
				if err != nil {
					b.Fatal(err)
				}
				if err := remote.Write(ref, img, remote.WithContext(context.Background()), remote.WithJobs(4)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(srv.peakRSS(), "peak-RSS-MiB")
		})
		b.Run(kind+"/pull", func(b *testing.B) {
			srv := start(b, kind)
			ref, err := name.ParseReference(srv.addr+"/bench/pull:latest", name.Insecure)
			if err != nil {
				b.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(layers * layerBytes)
			b.ResetTimer()
			for range b.N {
				got, err := remote.Image(ref)
				if err != nil {
					b.Fatal(err)
				}
				ls, err := got.Layers()
				if err != nil {
					b.Fatal(err)
				}
				for _, l := range ls {
					rc, err := l.Compressed() // verifies the digest while reading
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, rc); err != nil {
						b.Fatal(err)
					}
					if err := rc.Close(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(srv.peakRSS(), "peak-RSS-MiB")
		})
	}
}
