package registry_test

import (
	"context"
	"log"
	"net/http"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"

	"github.com/drydock-project/drydock/internal/registry"
)

func ExampleNew() {
	drv := filesystem.New(filesystem.DriverParameters{RootDirectory: "/var/lib/drydock/registry", MaxThreads: 100})
	reg, err := registry.New(context.Background(), drv, registry.WithMaxManifestSize(4<<20))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	_ = http.ListenAndServe("127.0.0.1:5000", mux)
}
