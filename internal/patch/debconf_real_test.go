package patch

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageFile returns the content of name (no leading slash) in img: the
// last layer that has it wins; nil when none has it.
func imageFile(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimPrefix(h.Name, "./") == name && h.Typeflag == tar.TypeReg {
				if out, err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
			}
		}
		rc.Close()
	}
	return out
}

// debconfOwners maps each question of a debconf config.dat to its
// Owners field.
func debconfOwners(data []byte) map[string]string {
	out := map[string]string{}
	for rec := range strings.SplitSeq(string(data), "\n\n") {
		var name, owners string
		for l := range strings.SplitSeq(rec, "\n") {
			if v, ok := strings.CutPrefix(l, "Name: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(l, "Owners: "); ok {
				owners = v
			}
		}
		if name != "" {
			out[name] = owners
		}
	}
	return out
}

// checkDebconfOwners: the patched image's debconf questions have the
// owners dpkg would leave. A preinst that registers templates (e.g.
// libpam-modules') must run from dpkg's control area, where debconf's
// frontend learns the package's name; run from elsewhere, its questions
// gain the owner "unknown". Nothing of that area is left in the layer.
func checkDebconfOwners(t *testing.T, base v1.Image, res *imageRun) {
	t.Helper()
	before := debconfOwners(imageFile(t, base, "var/cache/debconf/config.dat"))
	after := debconfOwners(imageFile(t, res.image, "var/cache/debconf/config.dat"))
	if len(after) == 0 {
		t.Fatal("the patched image has no debconf question")
	}
	for q, owners := range after {
		if strings.Contains(", "+owners+",", " unknown,") && !strings.Contains(", "+before[q]+",", " unknown,") {
			t.Errorf("debconf question %s: owners %q (before the patch %q)", q, owners, before[q])
		}
	}
	if imageFile(t, res.image, "var/lib/dpkg/tmp.ci/control") != nil {
		t.Error("the layer holds dpkg's control area var/lib/dpkg/tmp.ci")
	}
}
