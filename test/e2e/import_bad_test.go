package e2e

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// smallLayout writes a random 3-layer image as an OCI layout, ref "v1".
func smallLayout(t *testing.T) (dir string, img v1.Image) {
	t.Helper()
	img, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, img, "v1"), img
}

// tarDir writes dir as an uncompressed tar (an oci-archive) and returns it.
func tarDir(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "archive.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name, _ = filepath.Rel(dir, p)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func layerPath(t *testing.T, dir string, img v1.Image, i int) string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[i].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
}

// TestImportBadInputLeavesNothingBehind feeds import every kind of broken
// input: each must fail with a clear message, exit non-zero, and leave the
// registry without any repository.
func TestImportBadInputLeavesNothingBehind(t *testing.T) {
	s := startServe(t, "")

	missingBlob, img := smallLayout(t)
	if err := os.Remove(layerPath(t, missingBlob, img, 2)); err != nil {
		t.Fatal(err)
	}

	mismatch, img2 := smallLayout(t)
	p := layerPath(t, mismatch, img2, 1)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}

	idx, err := random.Index(1024, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	missingChild := filepath.Join(t.TempDir(), "index")
	lp, err := layout.Write(missingChild, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	child := im.Manifests[1].Digest
	if err := os.Remove(filepath.Join(missingChild, "blobs", child.Algorithm, child.Hex)); err != nil {
		t.Fatal(err)
	}

	good, _ := smallLayout(t)
	archive := tarDir(t, good)
	truncated := filepath.Join(t.TempDir(), "truncated.tar")
	full, _ := os.ReadFile(archive)
	if err := os.WriteFile(truncated, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.tar")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a tarball\n", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerTar := filepath.Join(t.TempDir(), "docker.tar")
	if err := tarball.WriteToFile(dockerTar, ref(t, "example.invalid/x:1"), img2); err != nil {
		t.Fatal(err)
	}
	dockerTrunc := filepath.Join(t.TempDir(), "docker-trunc.tar")
	dfull, _ := os.ReadFile(dockerTar)
	if err := os.WriteFile(dockerTrunc, dfull[:len(dfull)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, src string
	}{
		{"nonexistent layout", "oci:" + filepath.Join(t.TempDir(), "nope") + ":v1"},
		{"nonexistent oci-archive", "oci-archive:" + filepath.Join(t.TempDir(), "nope.tar")},
		{"nonexistent docker-archive", "docker-archive:" + filepath.Join(t.TempDir(), "nope.tar")},
		{"garbage oci-archive", "oci-archive:" + garbage},
		{"garbage docker-archive", "docker-archive:" + garbage},
		{"truncated oci-archive", "oci-archive:" + truncated + ":v1"},
		{"truncated docker-archive", "docker-archive:" + dockerTrunc},
		{"manifest with missing blob", "oci:" + missingBlob + ":v1"},
		{"blob not matching digest", "oci:" + mismatch + ":v1"},
		{"index with missing child", "oci:" + missingChild + ":v1"},
		{"bad reference", "Not A Reference!!"},
		{"unknown tag in layout", "oci:" + good + ":nope"},
		{"unreachable host", "127.0.0.1:1/some/image:1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := drydock(t, nil, "import", tt.src, "--as", "bad"+string(rune('a'+i))+":1", "--server", s.URL())
			if r.Code == 0 {
				t.Fatalf("import %s succeeded:\n%s%s", tt.src, r.Stdout, r.Stderr)
			}
			if !strings.Contains(r.Stderr, "drydock:") || len(strings.TrimSpace(r.Stderr)) < 20 {
				t.Errorf("unclear error: %q", r.Stderr)
			}
			t.Logf("error: %s", strings.TrimSpace(lastLine(r.Stderr)))
			if repos := catalog(t, s); len(repos) > 0 {
				t.Errorf("failed import left repositories behind: %v", repos)
			}
		})
	}
	// The same inputs that are not broken do import.
	mustDrydock(t, nil, "import", "oci-archive:"+archive+":v1", "--as", "fine:1", "--server", s.URL())
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
