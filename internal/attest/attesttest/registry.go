package attesttest

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/registry"
)

// Registry returns drydock's registry on in-memory storage, served over
// plain HTTP for the test's length, and the host:port the stock clients
// reach it at.
func Registry(t testing.TB) (*registry.Registry, string) {
	t.Helper()
	reg, err := registry.New(t.Context(), inmemory.New())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return reg, strings.TrimPrefix(srv.URL, "http://")
}

// PutImage stores a small image manifest (config cfg, no layers) in repo
// under tag.
func PutImage(t testing.TB, reg *registry.Registry, repo, tag, cfg string) ocispec.Descriptor {
	t.Helper()
	ctx := t.Context()
	c, err := reg.PutBlob(ctx, repo, []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	c.MediaType = ocispec.MediaTypeImageConfig
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: c, Layers: []ocispec.Descriptor{}}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.PutManifest(ctx, repo, ocispec.MediaTypeImageManifest, body, tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
