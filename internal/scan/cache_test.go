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

	"github.com/drydock-project/drydock/internal/rootfs"
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

// TestImageViaSharesTheCache: ImageVia matches the inventory its reader
// gives and stores it where Image finds it (the workflow engine reads
// layers through the patcher, the gate scans with Image); a stored
// inventory is matched without calling the reader; a reader's error or
// a snapshot that is not current is the scan's error, and nothing is
// stored.
func TestImageViaSharesTheCache(t *testing.T) {
	img := imageOf(t, map[string]string{
		"etc/os-release":      bookwormRelease,
		"etc/debian_version":  "12.8\n",
		"var/lib/dpkg/status": status,
	})
	ctx := context.Background()
	s, err := New(testDB(), clockAt("2025-02-13"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Image(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := NewFileCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err = New(testDB(), clockAt("2025-02-13"), WithInventoryCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	errRead := errors.New("the reader failed")
	for _, bad := range []func(context.Context) (*Snapshot, error){
		func(context.Context) (*Snapshot, error) { return nil, errRead },
		func(context.Context) (*Snapshot, error) { return &Snapshot{SchemaVersion: snapshotVersion - 1}, nil },
		func(context.Context) (*Snapshot, error) { return nil, nil },
	} {
		if _, err := s.ImageVia(ctx, img, bad); err == nil {
			t.Error("a failed or stale read gave a scan")
		}
	}
	if _, err := s.Image(ctx, unreadableLayers{img}); !errors.Is(err, errLayerRead) {
		t.Fatalf("a failed read stored an inventory: %v", err)
	}
	reads := 0
	read := func(ctx context.Context) (*Snapshot, error) {
		reads++
		fsys, err := rootfs.New(ctx, img)
		if err != nil {
			return nil, err
		}
		defer fsys.Close()
		return Inspect(ctx, fsys, DefaultLimits())
	}
	got, err := s.ImageVia(ctx, img, read)
	if err != nil {
		t.Fatal(err)
	}
	if reads != 1 || got.InventoryCached || len(got.Findings) != len(want.Findings) || got.Packages != want.Packages {
		t.Fatalf("ImageVia: %d reads, cached=%v, %d findings (Image: %d), %d packages (Image: %d)",
			reads, got.InventoryCached, len(got.Findings), len(want.Findings), got.Packages, want.Packages)
	}
	again, err := s.Image(ctx, unreadableLayers{img})
	if err != nil || !again.InventoryCached || len(again.Findings) != len(want.Findings) {
		t.Fatalf("Image after ImageVia read a layer or differs: %v", err)
	}
	if _, err := s.ImageVia(ctx, unreadableLayers{img}, read); err != nil || reads != 1 {
		t.Fatalf("ImageVia with a stored inventory called its reader: %d reads, %v", reads, err)
	}
}
