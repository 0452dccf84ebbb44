package patch

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/drydock-project/drydock/internal/patch/cache"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/testimage"
)

// unreadable is an image whose layers cannot be read: what a patch of it
// needs must come from the cache.
type unreadable struct{ v1.Image }

func (u unreadable) Layers() ([]v1.Layer, error) {
	ls, err := u.Image.Layers()
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = unreadableLayer{l}
	}
	return out, err
}

type unreadableLayer struct{ v1.Layer }

var errLayerRead = errors.New("the test forbids reading this layer")

func (unreadableLayer) Uncompressed() (io.ReadCloser, error) { return nil, errLayerRead }
func (unreadableLayer) Compressed() (io.ReadCloser, error)   { return nil, errLayerRead }

// TestImageCache: a second patch of the same image reads no layer (the
// index and every file the first one read come from the cache) and makes
// the same image; another image (another layer digest) is read, its
// layers cached under their own keys; a damaged record is detected and
// the layer read again.
func TestImageCache(t *testing.T) {
	_, base := openBase(t, testimage.BookwormNginx)
	cacheDir := t.TempDir()
	// libssl3 and friends: their ldconfig trigger reads library files
	// lazily, beyond what the index keeps.
	req := Request{Mode: FromReport, Sandbox: SandboxNever,
		Packages: map[string]string{"libssl3": "", "liblzma5": "", "libpcre2-8-0": "", "perl-base": ""}}
	first := patchOf(t, base, req, WithCacheDir(cacheDir))
	if first.image == nil {
		t.Fatalf("nothing patched: %s", first.res.Plan.Reason)
	}
	records := func() int {
		n := 0
		es, _ := os.ReadDir(filepath.Join(cacheDir, "images"))
		for _, e := range es {
			if _, err := os.Stat(filepath.Join(cacheDir, "images", e.Name(), "record")); err == nil {
				n++
			}
		}
		return n
	}
	ls, _ := base.Layers()
	if n := records(); n != len(ls) {
		t.Fatalf("%d layer records cached, want %d", n, len(ls))
	}

	second := patchOf(t, unreadable{base}, req, WithCacheDir(cacheDir))
	if second.res.Digest != first.res.Digest {
		t.Errorf("from the cache: digest %s, first %s", second.res.Digest, first.res.Digest)
	}

	// Another image: its new layer is read and cached; the base's are
	// reused.
	extra, err := random.Layer(256, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	other, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	patchOf(t, other, req, WithCacheDir(cacheDir))
	if n := records(); n != len(ls)+1 {
		t.Errorf("%d layer records after a second image, want %d", n, len(ls)+1)
	}

	// A damaged record: detected, the layer read again.
	es, _ := os.ReadDir(filepath.Join(cacheDir, "images"))
	for _, e := range es {
		p := filepath.Join(cacheDir, "images", e.Name(), "record")
		if data, err := os.ReadFile(p); err == nil {
			data[len(data)/3] ^= 0x55
			os.WriteFile(p, data, 0o644)
		}
	}
	if _, err := testEngine(t, req, WithCacheDir(cacheDir)).image(t.Context(), unreadable{base}); !errors.Is(err, errLayerRead) {
		t.Errorf("with damaged records, an unreadable image: %v, want the layer read (and refused)", err)
	}
	third := patchOf(t, base, req, WithCacheDir(cacheDir))
	if third.res.Digest != first.res.Digest {
		t.Errorf("after rebuilding the records: digest %s, first %s", third.res.Digest, first.res.Digest)
	}
}

// TestLayerCacheBound: the files read lazily after a layer's record was
// stored count against the cache's bound once the image is released.
func TestLayerCacheBound(t *testing.T) {
	dir, err := cache.Open(t.TempDir(), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	lc := newLayerCache(dir, []string{"deb"})
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if err := lc.PutLayer(d, &rootfs.LayerRecord{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := lc.PutContent(d, 0, make([]byte, 4<<10)); err != nil {
		t.Fatal(err)
	}
	if n, err := dir.Size(); err != nil || n <= 1<<10 {
		t.Fatalf("size with the content held: %d, %v; want over the bound", n, err)
	}
	lc.release()
	if n, err := dir.Size(); err != nil || n > 1<<10 {
		t.Errorf("size after release: %d, %v; want at most the %d bytes bound", n, err, 1<<10)
	}
}
