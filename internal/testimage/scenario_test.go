package testimage

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestDowngraded(t *testing.T) {
	status := "Package: a\nStatus: install ok installed\nVersion: 1.0-1\nDescription: x\n multi\n\n" +
		"Package: b\nStatus: install ok installed\nSource: bsrc (2:3.0)\nVersion: 2:3.0\n\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg})
	tw.Write([]byte(status))
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Downgraded(img, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	data, _, err := ReadFile(got, "var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	want := "Package: a\nStatus: install ok installed\nVersion: 1.0-1\nDescription: x\n multi\n\n" +
		"Package: b\nStatus: install ok installed\nSource: bsrc (2:3.0)\nVersion: 2:3.0~drydocktest0\n\n"
	if string(data) != want {
		t.Errorf("status:\n%s\nwant:\n%s", data, want)
	}
	if compareVersions(Older("2:3.0"), "2:3.0") >= 0 {
		t.Error("Older does not sort first")
	}
	if _, err := Downgraded(img, "zzz"); err == nil {
		t.Error("a package that is not installed was accepted")
	}

	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"amd64", "arm64"} {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		pimg, err := mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: pimg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	didx, err := DowngradedIndex(idx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(didx); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	im, err := didx.IndexManifest()
	if err != nil || len(im.Manifests) != 2 || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index %+v, %v", im, err)
	}
}
