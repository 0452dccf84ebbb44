package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestImagesListsWhatTheServerHolds imports a layout and pushes an index,
// then reads `drydock images` as a table and as JSON.
func TestImagesListsWhatTheServerHolds(t *testing.T) {
	s := startServe(t, "")
	dir, img := smallLayout(t)
	mustDrydock(t, nil, "import", "oci:"+dir+":v1", "--as", "app:v1", "--server", s.URL())
	idx, err := random.Index(2048, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, s.Addr+"/other/multi:2"), idx); err != nil {
		t.Fatal(err)
	}
	imgDigest, _ := img.Digest()
	idxDigest, _ := idx.Digest()

	table := mustDrydock(t, nil, "images", "--server", s.URL()).Stdout
	for _, want := range []string{"quarantine/app", "v1", imgDigest.String()[:19], "other/multi", "index"} {
		if !strings.Contains(table, want) {
			t.Errorf("images table lacks %q:\n%s", want, table)
		}
	}

	var out struct {
		SchemaVersion int `json:"schemaVersion"`
		Repositories  []struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
			Tags      []struct {
				Tag       string `json:"tag"`
				Digest    string `json:"digest"`
				Kind      string `json:"kind"`
				Size      int64  `json:"size"`
				Platforms []struct {
					Platform string `json:"platform"`
				} `json:"platforms"`
			} `json:"tags"`
		} `json:"repositories"`
	}
	js := mustDrydock(t, nil, "images", "--json", "--server", s.URL()).Stdout
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatalf("images --json is not JSON: %v\n%s", err, js)
	}
	if out.SchemaVersion != 1 || len(out.Repositories) != 2 {
		t.Fatalf("images --json: %s", js)
	}
	other, quarantine := out.Repositories[0], out.Repositories[1]
	if other.Namespace != "other" || other.Name != "other/multi" || quarantine.Namespace != "quarantine" || quarantine.Name != "quarantine/app" {
		t.Fatalf("repositories not sorted or namespaced: %s", js)
	}
	if tg := quarantine.Tags[0]; tg.Tag != "v1" || tg.Digest != imgDigest.String() || tg.Kind != "image" || tg.Size <= 3*64<<10 {
		t.Errorf("quarantine/app:v1 = %+v, want digest %s and a size over 192 KiB", tg, imgDigest)
	}
	if tg := other.Tags[0]; tg.Digest != idxDigest.String() || tg.Kind != "index" || len(tg.Platforms) != 2 {
		t.Errorf("other/multi:2 = %+v, want index %s with 2 platforms", tg, idxDigest)
	}
}
