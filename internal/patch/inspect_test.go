package patch

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
	"testing"

	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestInspectReadsLayersOnce: Inspect gives the inventory the scanner
// reads (scan.Inspect over the same image), and a second Inspect of the
// image reads no layer: the workflow engine scans an image and patches it
// with one read of its layers. The files a patch needs (the apt sources)
// are in the filesystem it is given.
func TestInspectReadsLayersOnce(t *testing.T) {
	ti := testimage.Require(t, testimage.BookwormNginx)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fsys, err := rootfs.New(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	want, err := scan.Inspect(ctx, fsys, scan.DefaultLimits())
	fsys.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var first *scan.Snapshot
	if err := Inspect(ctx, img, func(fsys fs.FS, snap *scan.Snapshot) error {
		first = snap
		_, err := fs.Stat(fsys, "etc/apt/sources.list.d/debian.sources")
		return err
	}, WithCacheDir(dir)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("Inspect's inventory differs from the scanner's: %d packages, want %d", len(first.Packages), len(want.Packages))
	}
	var again *scan.Snapshot
	if err := Inspect(ctx, unreadable{img}, func(_ fs.FS, snap *scan.Snapshot) error {
		again = snap
		return nil
	}, WithCacheDir(dir)); err != nil {
		t.Fatalf("the second Inspect read a layer: %v", err)
	}
	if !reflect.DeepEqual(again, want) {
		t.Fatal("the replayed inventory differs")
	}
	// Without the cache, the same unreadable image fails: the test can
	// tell a replay from a read.
	err = Inspect(ctx, unreadable{img}, func(fs.FS, *scan.Snapshot) error { return nil }, WithCacheDir(t.TempDir()))
	if !errors.Is(err, errLayerRead) {
		t.Fatalf("Inspect without a cache: %v, want the layer read refused", err)
	}
}
