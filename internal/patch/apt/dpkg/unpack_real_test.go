package dpkg

import (
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestUnpackReinstallIsNoop unpacks, over the real bookworm-nginx image,
// the very versions dpkg installed there. If the Unpacker writes exactly
// what dpkg wrote (files through the /lib -> usr/lib symlink, conffiles,
// info/*.list, md5sums, scripts, the status stanza in dpkg's field order),
// the changeset comes out empty: every difference is a bug.
func TestUnpackReinstallIsNoop(t *testing.T) {
	apttest.RequireMirror(t, testimage.BookwormNginx.Suite)
	ri := apttest.Open(t, testimage.BookwormNginx)
	cache, err := archive.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := archive.Open(t.Context(), ri.FS, ri.OS, ri.Test.Spec.Arch, archive.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Packages chosen for what they exercise: libc6 (files under /lib and
	// /lib64 through usrmerge symlinks), base-files and nginx-common
	// (conffiles), tzdata (hundreds of symlinks), perl-base (a hardlink),
	// libssl3 (Multi-Arch: same, name:arch info files), dpkg and login
	// (conffiles, many scripts), libpam-modules (/lib/security).
	names := []string{"base-files", "dpkg", "libc6", "libpam-modules", "libssl3", "login", "nginx-common", "perl-base", "tzdata"}
	installed := map[string]string{}
	for _, p := range ri.Installed {
		installed[p.Name] = p.Version
	}
	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	u, err := NewUnpacker(ri.FS, ri.Test.Spec.Arch, cs, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		ver, ok := installed[name]
		if !ok {
			t.Fatalf("%s is not installed in the test image", name)
		}
		ip, ok := repo.Lookup(name, ver)
		if !ok {
			t.Fatalf("the mirror has no %s %s (the image is built from it)", name, ver)
		}
		deb, err := repo.FetchDeb(t.Context(), ip)
		if err != nil {
			t.Fatal(err)
		}
		res, err := u.Install(t.Context(), Install{Name: name, Version: ver, From: ver, Deb: deb})
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed != 0 || res.Removed != 0 {
			t.Errorf("%s: %d changed, %d removed files on a reinstall", name, res.Changed, res.Removed)
		}
		for c, a := range res.Conffiles {
			if a != "unchanged" {
				t.Errorf("%s: conffile %s: %s", name, c, a)
			}
		}
	}
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	for _, e := range cs.Entries() {
		t.Errorf("reinstall left %s %s in the layer", e.Kind, e.Path)
		if e.Kind == layer.File && e.Size < 20000 {
			rc, _ := cs.Open(e)
			want, _ := ReadOptional(ri.FS, e.Path)
			got := make([]byte, e.Size)
			rc.Read(got)
			rc.Close()
			t.Logf("--- image\n%s\n--- drydock\n%s", want, got)
		}
	}
}
