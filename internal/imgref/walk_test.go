package imgref

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// store is a content store for walk tests.
type store map[digest.Digest][]byte

func (s store) put(t *testing.T, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(b)
	s[d] = b
	var mt struct{ MediaType string }
	_ = json.Unmarshal(b, &mt)
	return ocispec.Descriptor{MediaType: mt.MediaType, Digest: d, Size: int64(len(b))}
}

func (s store) fetch(_ context.Context, d ocispec.Descriptor) ([]byte, error) {
	b, ok := s[d.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: not found", d.Digest)
	}
	return b, nil
}

func image(s store, t *testing.T, seed string) ocispec.Descriptor {
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString(seed), Size: 1},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("l" + seed), Size: 1}}}
	m.SchemaVersion = 2
	return s.put(t, m)
}

func index(s store, t *testing.T, children ...ocispec.Descriptor) ocispec.Descriptor {
	ix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	ix.SchemaVersion = 2
	return s.put(t, ix)
}

func on(d ocispec.Descriptor, os, arch string) ocispec.Descriptor {
	d.Platform = &ocispec.Platform{OS: os, Architecture: arch}
	return d
}

type visited struct {
	digest digest.Digest
	parent digest.Digest
	depth  int
	kind   Kind
	plat   string
}

func walkAll(t *testing.T, s store, root ocispec.Descriptor) ([]visited, error) {
	t.Helper()
	var out []visited
	err := Walk(t.Context(), root, s.fetch, func(n Node) error {
		out = append(out, visited{n.Digest(), n.Parent, n.Depth, n.Manifest.Kind(), n.Platform()})
		return nil
	})
	return out, err
}

func TestWalk(t *testing.T) {
	s := store{}
	amd := image(s, t, "amd")
	bad := image(s, t, "bad")
	attest := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: "application/vnd.in-toto+json", Digest: digest.FromString("att"), Size: 1},
		Layers: []ocispec.Descriptor{{MediaType: "application/vnd.in-toto+json", Digest: digest.FromString("attl"), Size: 1}}}
	attest.SchemaVersion = 2
	att := s.put(t, attest)
	hidden := image(s, t, "hidden")
	nested := index(s, t, on(bad, "linux", "amd64"))
	root := index(s, t, on(amd, "linux", "amd64"), on(nested, "linux", "amd64"), on(att, "unknown", "unknown"),
		on(hidden, "unknown", "unknown"), on(amd, "linux", "amd64"))

	got, err := walkAll(t, s, root)
	if err != nil {
		t.Fatal(err)
	}
	want := []visited{
		{amd.Digest, root.Digest, 1, KindImage, "linux/amd64"},
		{bad.Digest, nested.Digest, 2, KindImage, "linux/amd64"},
		{nested.Digest, root.Digest, 1, KindIndex, "linux/amd64"},
		{att.Digest, root.Digest, 1, KindArtifact, "unknown/unknown"},
		{hidden.Digest, root.Digest, 1, KindImage, "unknown/unknown"},
		{root.Digest, "", 0, KindIndex, ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("walk:\n got %+v\nwant %+v", got, want)
	}

	// A single image is its own only node.
	got, err = walkAll(t, s, amd)
	if err != nil || !slices.Equal(got, []visited{{amd.Digest, "", 0, KindImage, ""}}) {
		t.Errorf("walk of an image: %+v, %v", got, err)
	}

	// visit's error stops the walk.
	stop := errors.New("stop")
	n := 0
	if err := Walk(t.Context(), root, s.fetch, func(Node) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Walk with a failing visit = %v after %d visits", err, n)
	}
}

func TestWalkRefusesBadContent(t *testing.T) {
	s := store{}
	img := image(s, t, "a")
	var limit *LimitError
	var bad *ManifestError

	// Nested deeper than MaxDepth.
	deep := img
	for range MaxDepth + 1 {
		deep = index(s, t, deep)
	}
	if _, err := walkAll(t, s, deep); !errors.As(err, &limit) || !limit.Permanent() || limit.Root != deep.Digest {
		t.Errorf("walk of a too deep index: %v", err)
	}
	// Exactly MaxDepth levels below the root is fine.
	ok := img
	for range MaxDepth {
		ok = index(s, t, ok)
	}
	if _, err := walkAll(t, s, ok); err != nil {
		t.Errorf("walk of an index nested %d deep: %v", MaxDepth, err)
	}

	// More than MaxManifests distinct manifests.
	var many []ocispec.Descriptor
	for i := range MaxManifests {
		many = append(many, image(s, t, fmt.Sprint(i)))
	}
	if _, err := walkAll(t, s, index(s, t, many...)); !errors.As(err, &limit) || limit.What != "manifests" {
		t.Errorf("walk of an index of %d images: %v", len(many), err)
	}

	// Content that does not match its descriptor.
	other := image(s, t, "b")
	swapped := img
	s[swapped.Digest] = s[other.Digest]
	if _, err := walkAll(t, s, index(s, t, swapped)); !errors.As(err, &bad) || !bad.Permanent() || bad.Digest != img.Digest.String() {
		t.Errorf("walk over content of the wrong digest: %v", err)
	}
	s[img.Digest] = nil
	short := image(s, t, "c")
	short.Size++
	if _, err := walkAll(t, s, index(s, t, short)); !errors.As(err, &bad) {
		t.Errorf("walk over content of the wrong size: %v", err)
	}
	// A child that is not JSON: the error names it.
	junk := []byte("not json")
	jd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(junk), Size: int64(len(junk))}
	s[jd.Digest] = junk
	if _, err := walkAll(t, s, index(s, t, jd)); !errors.As(err, &bad) || bad.Digest != jd.Digest.String() {
		t.Errorf("walk over a child that is not JSON: %v", err)
	}
	// A descriptor whose digest is not one.
	if _, err := walkAll(t, s, index(s, t, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:zz"})); !errors.As(err, &bad) {
		t.Errorf("walk over an invalid child digest: %v", err)
	}
	// A missing child: fetch's error.
	if _, err := walkAll(t, s, index(s, t, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 4})); err == nil {
		t.Error("walk over a missing child succeeded")
	}
}
