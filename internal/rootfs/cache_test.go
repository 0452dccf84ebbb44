package rootfs

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/refusal"
)

// memCache is a LayerCache in memory.
type memCache struct {
	mu       sync.Mutex
	layers   map[v1.Hash]*LayerRecord
	contents map[string][]byte
}

func newMemCache() *memCache {
	return &memCache{layers: map[v1.Hash]*LayerRecord{}, contents: map[string][]byte{}}
}

func ckey(d v1.Hash, ordinal int) string { return d.String() + "/" + string(rune(ordinal)) }

func (m *memCache) Layer(d v1.Hash) (*LayerRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.layers[d], nil
}
func (m *memCache) PutLayer(d v1.Hash, r *LayerRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.layers[d] = r
	return nil
}
func (m *memCache) Content(d v1.Hash, ordinal int) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.contents[ckey(d, ordinal)], nil
}
func (m *memCache) PutContent(d v1.Hash, ordinal int, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.contents[ckey(d, ordinal)] = data
	return nil
}

// failingLayer is a layer whose stream cannot be read: an index built
// from it must come from the cache.
type failingLayer struct{ bytesLayer }

func (failingLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("this layer must not be read")
}

func (failingLayer) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("this layer must not be read")
}

func cachedTestImage(t *testing.T, fail bool) v1.Image {
	t.Helper()
	l1 := tarBytes(t, dir("etc/"), file("etc/os-release", "ID=test\n"), file("usr/bin/tool", "binary"),
		sym("bin", "usr/bin"), file("var/lib/big", strings.Repeat("x", 1000)))
	l2 := tarBytes(t, file("etc/os-release", "ID=patched\n"), wh("usr/bin/.wh.tool"), file("usr/bin/new", "new"),
		hard("usr/bin/new2", "usr/bin/new"))
	var ls []v1.Layer
	for _, b := range [][]byte{l1, l2} {
		bl := newBytesLayer(b)
		if fail {
			ls = append(ls, failingLayer{bl})
		} else {
			ls = append(ls, bl)
		}
	}
	return rawImage{layers: ls}
}

// TestLayerCache: a second index of the same image, and reads of the
// files the first one read, need no layer.
func TestLayerCache(t *testing.T) {
	c := newMemCache()
	keep := WithContents(func(p string) bool { return strings.HasPrefix(p, "etc/") })
	first := newFS(t, cachedTestImage(t, false), keep, WithLayerCache(c))
	if len(c.layers) != 2 {
		t.Fatalf("%d layer records, want 2", len(c.layers))
	}
	// A lazily read file is cached when read.
	if data, err := first.ReadFile("var/lib/big"); err != nil || len(data) != 1000 {
		t.Fatalf("ReadFile: %d bytes, %v", len(data), err)
	}
	if err := first.ReadFiles(t.Context(), []string{"usr/bin/new2"}, func(string, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}

	again := newFS(t, cachedTestImage(t, true), keep, WithLayerCache(c))
	for _, name := range []string{"etc/os-release", "var/lib/big", "bin/new", "usr/bin/new2"} {
		want, err := first.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := again.ReadFile(name)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s from the cache: %q, %v; want %q", name, got, err, want)
		}
	}
	var got []string
	err := again.ReadFiles(t.Context(), []string{"var/lib/big", "etc/os-release"}, func(n string, _ []byte) error {
		got = append(got, n)
		return nil
	})
	if err != nil || len(got) != 2 {
		t.Errorf("ReadFiles from the cache: %v, %v", got, err)
	}
	if _, err := again.Lstat("usr/bin/tool"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the whiteout is lost in the cached index: %v", err)
	}
	if !slices.EqualFunc(first.Layers(), again.Layers(), func(a, b Layer) bool {
		return a.Size == b.Size && slices.Equal(a.Paths, b.Paths) && slices.Equal(a.Whiteouts, b.Whiteouts)
	}) {
		t.Errorf("layers differ:\n%+v\n%+v", first.Layers(), again.Layers())
	}
	if err := fstest.TestFS(again, "etc/os-release", "usr/bin/new", "var/lib/big"); err != nil {
		t.Error(err)
	}
}

// TestLayerCacheMismatch: a record made with another keep rule is
// refused, not trusted.
func TestLayerCacheMismatch(t *testing.T) {
	c := newMemCache()
	newFS(t, cachedTestImage(t, false), WithContents(func(p string) bool { return false }), WithLayerCache(c))
	_, err := New(t.Context(), cachedTestImage(t, true), WithContents(func(p string) bool { return true }), WithLayerCache(c))
	if !errors.Is(err, ErrCacheMismatch) {
		t.Errorf("index with another keep rule: %v, want ErrCacheMismatch", err)
	}
}

// otherDiffID is a layer whose image config names another diff_id than
// its content has (a hostile or damaged config).
type otherDiffID struct{ bytesLayer }

func (otherDiffID) DiffID() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, nil
}

// TestLayerCacheKeepsVerification: a cached record is replayed only where
// the layer would have passed verification and the limits: an image whose
// config names another diff_id for the same layer reads the layer and is
// refused, and a stricter layer size limit refuses a replayed layer.
func TestLayerCacheKeepsVerification(t *testing.T) {
	c := newMemCache()
	newFS(t, cachedTestImage(t, false), WithLayerCache(c))
	if len(c.layers) != 2 {
		t.Fatalf("%d layer records, want 2", len(c.layers))
	}
	honest := cachedTestImage(t, false).(rawImage)
	bad := rawImage{layers: []v1.Layer{otherDiffID{honest.layers[0].(bytesLayer)}, honest.layers[1]}}
	_, err := New(t.Context(), bad, WithLayerCache(c))
	if k, _ := refusal.KindOf(err); err == nil || k == "" {
		t.Errorf("an image naming another diff_id for a cached layer: %v; want a refusal", err)
	}
	_, err = New(t.Context(), cachedTestImage(t, true), WithLayerCache(c), WithMaxLayerSize(512))
	if k, _ := refusal.KindOf(err); k != refusal.OverLimit || !errors.Is(err, ErrLimit) {
		t.Errorf("a cached layer over the size limit: %v; want an over-limit refusal", err)
	}
}
