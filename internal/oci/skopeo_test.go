package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydock-project/drydock/internal/testenv"
)

// compressibleLayer is a tar layer of text, large enough (several MiB)
// to span more than one pgzip block.
func compressibleLayer(t *testing.T, seed, lines int) v1.Layer {
	t.Helper()
	var text bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&text, "line %d of layer %d: the quick brown fox %x jumps over the lazy dog\n", i, seed, i*seed*7919)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%d.txt", seed), Mode: 0o644, Size: int64(text.Len()), Typeflag: tar.TypeReg})
	tw.Write(text.Bytes())
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDockerArchiveDigestMatchesSkopeo checks that importing a
// docker-archive gives the digest "skopeo copy docker-archive:FILE
// docker://..." gives. skopeo makes the archive from an OCI layout.
func TestDockerArchiveDigestMatchesSkopeo(t *testing.T) {
	skopeo := testenv.RequireTool(t, "skopeo", "skopeo")
	if testing.Short() {
		t.Skip("-short: skipping the skopeo comparison")
	}
	ctx := context.Background()
	img := ociImage(t, 11, amd64)
	img, err := mutate.AppendLayers(img, compressibleLayer(t, 1, 20000), compressibleLayer(t, 2, 120000))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lay := writeLayout(t, filepath.Join(dir, "layout"), map[string]any{"v1": img})
	archive := filepath.Join(dir, "skopeo.tar")
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(skopeo, append([]string{"--insecure-policy"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("copy", "oci:"+lay+":v1", "docker-archive:"+archive+":example.test/app:v1")

	reg := newTestRegistry(t, nil)
	run("copy", "--dest-tls-verify=false", "docker-archive:"+archive, "docker://"+reg.host+"/skopeo/app:v1")
	theirs, err := remote.Get(reg.tag(t, "skopeo/app", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := importSource(ctx, "docker-archive:"+archive, reg.tag(t, "quarantine/app", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if ours.Digest == theirs.Digest.String() {
		return // byte for byte what skopeo wrote
	}

	// Not the same digest: find out whether only the gzip bytes differ.
	ourImg, err := remote.Image(reg.tag(t, "quarantine/app", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	theirImg, err := theirs.Image()
	if err != nil {
		t.Fatal(err)
	}
	om, _ := ourImg.Manifest()
	tm, _ := theirImg.Manifest()
	if om.MediaType != tm.MediaType || om.Config.Digest != tm.Config.Digest || om.Config.MediaType != tm.Config.MediaType || len(om.Layers) != len(tm.Layers) {
		t.Fatalf("manifests differ beyond layer compression:\nours:   %+v\nskopeo: %+v", om, tm)
	}
	var diffs []string
	for i := range om.Layers {
		if om.Layers[i].MediaType != tm.Layers[i].MediaType {
			t.Fatalf("layer %d media type %s, skopeo %s", i, om.Layers[i].MediaType, tm.Layers[i].MediaType)
		}
		if om.Layers[i].Digest == tm.Layers[i].Digest {
			continue
		}
		if a, b := gunzipDigest(t, ourImg, om.Layers[i].Digest), gunzipDigest(t, theirImg, tm.Layers[i].Digest); a != b {
			t.Fatalf("layer %d: uncompressed content differs (%s vs skopeo %s)", i, a, b)
		}
		diffs = append(diffs, fmt.Sprintf("layer %d: %d bytes vs skopeo's %d", i, om.Layers[i].Size, tm.Layers[i].Size))
	}
	// go.mod pins github.com/klauspost/compress to the last release whose
	// deflate output matches Debian's skopeo builds; a difference here means
	// that pin moved or the installed skopeo uses another deflate.
	t.Errorf("digest %s differs from skopeo's %s only in the gzip bytes of %d layer(s) (%s): "+
		"the installed skopeo compresses with another version of github.com/klauspost/compress's deflate "+
		"than drydock is built with (see the replace directive in go.mod); manifest structure, config and uncompressed layers are identical",
		ours.Digest, theirs.Digest, len(diffs), strings.Join(diffs, "; "))
}

func gunzipDigest(t *testing.T, img v1.Image, d v1.Hash) v1.Hash {
	t.Helper()
	l, err := img.LayerByDigest(d)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return digestOf(b)
}
