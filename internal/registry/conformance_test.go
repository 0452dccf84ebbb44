package registry

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"

	"github.com/drydock-project/drydock/internal/registry/conformancetest"
)

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suite is slow; skipped with -short")
	}
	drv := filesystem.New(filesystem.DriverParameters{RootDirectory: t.TempDir(), MaxThreads: 100})
	reg, err := New(context.Background(), drv)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	res := conformancetest.Run(t, strings.TrimPrefix(srv.URL, "http://"))
	if res.Passed == 0 {
		t.Fatal("no conformance checks passed")
	}
}
