package patch

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/testimage"
)

// imageFile returns the content of name in img's flattened filesystem;
// nil when the image has no such file.
func imageFile(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	data, _, err := testimage.ReadFile(img, name)
	if testimage.IsNotInImage(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
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
