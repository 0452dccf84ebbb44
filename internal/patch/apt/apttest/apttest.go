// Package apttest holds what the Debian backend's packages test with: the
// machine's Debian mirror and the real test images read as the engine
// reads them. It is imported by tests only.
package apttest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
)

// RequireMirror skips (in CI: fails) unless the machine's Debian mirror
// answers for suite.
func RequireMirror(t testing.TB, suite string) testimage.MirrorInfo {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping network test in -short mode")
	}
	m, err := testimage.Mirror()
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		err = testimage.MirrorReachable(ctx, m, suite)
	}
	if err != nil {
		testenv.Missing(t, "Debian mirror unreachable: %v", err)
	}
	return m
}

// Image is a test image read through rootfs, as drydock reads images.
type Image struct {
	Test      *testimage.Image
	FS        *rootfs.FS
	OS        osinfo.OS
	Installed []inventory.Package
}

// Open builds (or reuses) spec and reads its OS and packages.
func Open(t testing.TB, spec testimage.Spec) *Image {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping network test in -short mode")
	}
	ti := testimage.Require(t, spec)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	// Keep what the patch engine keeps in memory: the dpkg database, /etc
	// and keyrings; anything else is read lazily.
	fsys, err := rootfs.New(t.Context(), img, rootfs.WithContents(func(p string) bool {
		return strings.HasPrefix(p, "var/lib/dpkg/") || strings.HasPrefix(p, "etc/") || strings.HasPrefix(p, "usr/share/keyrings/")
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	osi, err := osinfo.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	dpkg, err := inventory.NewDpkg()
	if err != nil {
		t.Fatal(err)
	}
	installed, err := dpkg.Analyze(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	return &Image{Test: ti, FS: fsys, OS: osi, Installed: installed}
}
