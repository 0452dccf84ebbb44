package oci

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydock-project/drydock/internal/imgref"
)

// TestListImagesTagScheme: cosign's tag-scheme tags are listed under the
// tag of their subject, not as images; an image pushed under such a tag
// stays an image tag.
func TestListImagesTagScheme(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t, nil)
	img := ociImage(t, 31, amd64)
	pushTo(t, reg.tag(t, "quarantine/app", "1"), img)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1),
		mutate.Addendum{Layer: static.NewLayer([]byte(`{"critical":{}}`), imgref.MediaTypeCosignSimpleSigning)})
	if err != nil {
		t.Fatal(err)
	}
	sigTag := "sha256-" + d.Hex + ".sig"
	attTag := "sha256-" + d.Hex + ".att"
	pushTo(t, reg.tag(t, "quarantine/app", sigTag), sig)
	pushTo(t, reg.tag(t, "quarantine/app", attTag), ociImage(t, 32, amd64)) // an image under an .att tag

	repos, err := ListImages(ctx, reg.server(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 1 {
		t.Fatalf("repos %+v", repos)
	}
	var tags []string
	for _, tg := range repos[0].Tags {
		tags = append(tags, tg.Tag+"="+tg.Kind)
		if tg.Tag == "1" {
			if len(tg.Attached) != 1 || tg.Attached[0].Tag != sigTag || tg.Attached[0].Class != imgref.ClassSignature || tg.Attached[0].Form != "tag" {
				t.Errorf("attached to 1: %+v", tg.Attached)
			}
		}
	}
	if got := strings.Join(tags, " "); got != "1=image "+attTag+"=image" {
		t.Errorf("tags %s", got)
	}
}
