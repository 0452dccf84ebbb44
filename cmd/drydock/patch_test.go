package main

import (
	"testing"

	"github.com/drydock-project/drydock/internal/patch"
)

func TestParseCacheLimits(t *testing.T) {
	got, err := parseCacheLimits("trees=2GiB, images=512MiB,packages=1048576")
	want := patch.CacheLimits{Trees: 2 << 30, Images: 512 << 20, Packages: 1 << 20}
	if err != nil || got != want {
		t.Errorf("parseCacheLimits = %+v, %v; want %+v", got, err, want)
	}
	if got, err := parseCacheLimits("packages=3GB,trees=100B"); err != nil || got != (patch.CacheLimits{Trees: 100, Packages: 3e9}) {
		t.Errorf("parseCacheLimits with decimal units = %+v, %v", got, err)
	}
	for _, bad := range []string{"trees", "trees=", "trees=-1", "trees=0", "trees=1X", "disk=1G", "trees=99999999999GiB"} {
		if _, err := parseCacheLimits(bad); err == nil {
			t.Errorf("parseCacheLimits(%q) accepted", bad)
		}
	}
}
