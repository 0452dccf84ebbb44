package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// imageOf packs an fstest-style file map into a one-layer image.
func imageOf(t *testing.T, files map[string]string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(buf.Bytes(), types.DockerUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// unreadableLayers is img with the same manifest and config, but every
// layer fails to read: a scan that touches a layer fails.
type unreadableLayers struct{ v1.Image }

var errLayerRead = errors.New("layer read attempted")

func (u unreadableLayers) Layers() ([]v1.Layer, error)             { return nil, errLayerRead }
func (u unreadableLayers) LayerByDigest(v1.Hash) (v1.Layer, error) { return nil, errLayerRead }
func (u unreadableLayers) LayerByDiffID(v1.Hash) (v1.Layer, error) { return nil, errLayerRead }

func TestInventoryCacheRescanReadsNoLayer(t *testing.T) {
	img := imageOf(t, map[string]string{
		"etc/os-release":      bookwormRelease,
		"etc/debian_version":  "12.8\n",
		"var/lib/dpkg/status": status,
	})
	dir := t.TempDir()
	cache, err := NewFileCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := Scan(ctx, img, testDB(), clockAt("2025-02-13"), WithInventoryCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	if first.InventoryCached || len(first.Findings) == 0 {
		t.Fatalf("first scan: cached=%v findings=%d", first.InventoryCached, len(first.Findings))
	}

	// Without the cache, the layer-less image cannot be scanned at all.
	if _, err := Scan(ctx, unreadableLayers{img}, testDB(), clockAt("2025-02-13")); !errors.Is(err, errLayerRead) {
		t.Fatalf("scan without cache: err = %v, want the layer read error", err)
	}

	// After a "DB update" (one more advisory), the rescan reads no layer
	// and sees the new advisory.
	db := testDB()
	db.advs = append(db.advs, adv("CVE-2025-0002", "openssl", vulndb.StatusAffected, "", vulndb.SeverityLow))
	again, err := Scan(ctx, unreadableLayers{img}, db, clockAt("2025-02-13"), WithInventoryCache(cache))
	if err != nil {
		t.Fatalf("rescan read a layer: %v", err)
	}
	if !again.InventoryCached || len(again.Findings) <= len(first.Findings) || again.Packages != first.Packages {
		t.Errorf("rescan: cached=%v findings %d (first %d) packages %d (first %d)",
			again.InventoryCached, len(again.Findings), len(first.Findings), again.Packages, first.Packages)
	}

	// A corrupt stored inventory is an error naming the file, not a panic
	// or a silent empty scan.
	var stored []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			stored = append(stored, p)
		}
		return err
	})
	if len(stored) != 1 {
		t.Fatalf("stored files: %v", stored)
	}
	if err := os.WriteFile(stored[0], []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Scan(ctx, img, testDB(), clockAt("2025-02-13"), WithInventoryCache(cache)); err == nil || !strings.Contains(err.Error(), stored[0]) {
		t.Errorf("corrupt stored inventory: err = %v", err)
	}
}

func TestFileCacheRefusesHostileKeys(t *testing.T) {
	c, err := NewFileCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "../../etc/passwd", "sha256:abc/v1-x", "sha256:" + strings.Repeat("a", 64) + "/../../x"} {
		if _, _, err := c.Get(context.Background(), key); err == nil {
			t.Errorf("Get(%q) accepted", key)
		}
		if err := c.Put(context.Background(), key, &Snapshot{}); err == nil {
			t.Errorf("Put(%q) accepted", key)
		}
	}
}
