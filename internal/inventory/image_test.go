package inventory

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/drydock-project/drydock/internal/testimage"
)

// imageFS flattens a real test image (ggcr's mutate.Extract applies the
// layers and whiteouts) into a MapFS of the regular files any of the
// analyzers requires: what an analyzer would see through internal/rootfs.
func imageFS(t testing.TB, spec testimage.Spec, analyzers ...Analyzer) (*testimage.Image, fstest.MapFS) {
	t.Helper()
	ti := testimage.Require(t, spec)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	fsys := fstest.MapFS{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", spec.Name, err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if hdr.Typeflag != tar.TypeReg || !slices.ContainsFunc(analyzers, func(a Analyzer) bool { return a.Required(name) }) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s from %s: %v", name, spec.Name, err)
		}
		fsys[name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return ti, fsys
}

func TestRealImages(t *testing.T) {
	tests := []struct {
		spec testimage.Spec
		want []string // packages that must be there (the distroless set is exact)
	}{
		{spec: testimage.BookwormNginx, want: []string{"nginx-light", "libssl3", "libc6", "ca-certificates"}},
		{spec: testimage.BullseyeNginxCurl, want: []string{"nginx-light", "libssl1.1", "curl", "libcurl4"}},
		{spec: testimage.Trixie, want: []string{"libssl3t64", "openssl", "ca-certificates"}},
		{spec: testimage.DistrolessBookworm, want: testimage.DistrolessBookworm.Include},
		{spec: testimage.TrixieArm64, want: []string{"libc6", "dpkg"}},
	}
	for _, tc := range tests {
		t.Run(tc.spec.Name, func(t *testing.T) {
			t.Parallel()
			dpkg := mustDpkg(t, WithFiles())
			apk, _ := NewAPK()
			rpm, _ := NewRPM()
			ti, fsys := imageFS(t, tc.spec, dpkg, apk, rpm)
			for name := range fsys {
				if !dpkg.Required(name) {
					t.Errorf("a Debian image has %s", name)
				}
			}
			res, err := Inventory(t.Context(), fsys, dpkg, apk, rpm)
			if err != nil {
				t.Fatal(err)
			}
			if res.SkippedTotal != 0 {
				t.Errorf("skipped %d entries: %v", res.SkippedTotal, res.Skipped)
			}
			img, err := ti.Open()
			if err != nil {
				t.Fatal(err)
			}
			ref, err := testimage.InstalledPackages(img)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != len(ref) {
				t.Errorf("%d packages, testimage.InstalledPackages reports %d", len(res.Packages), len(ref))
			}
			byKey := map[string]Package{}
			var noFiles []string
			for _, p := range res.Packages {
				byKey[p.Name+":"+p.Arch] = p
				if p.Ecosystem != "deb" || p.Arch != tc.spec.Arch && p.Arch != "all" {
					t.Errorf("%s: ecosystem %q arch %q", p.Name, p.Ecosystem, p.Arch)
				}
				if len(p.Files) == 0 {
					noFiles = append(noFiles, p.Name)
				}
			}
			// Every package ships files but the odd metapackage: debootstrap
			// images have info/*.list files, distroless ones *.md5sums.
			if len(noFiles) > 2 {
				t.Errorf("%d packages without files: %v", len(noFiles), noFiles)
			}
			for _, r := range ref {
				p, ok := byKey[r.Name+":"+r.Arch]
				if !ok {
					t.Errorf("%s:%s missing", r.Name, r.Arch)
					continue
				}
				if p.Version != r.Version || p.SourceName != r.Source || p.SourceVersion != r.SourceVersion {
					t.Errorf("%s: %s source %s %s; testimage says %s source %s %s",
						r.Name, p.Version, p.SourceName, p.SourceVersion, r.Version, r.Source, r.SourceVersion)
				}
			}
			var names []string
			for _, p := range res.Packages {
				names = append(names, p.Name)
			}
			for _, w := range tc.want {
				if !slices.Contains(names, w) {
					t.Errorf("%s not installed; packages: %v", w, names)
				}
			}
			if tc.spec.Kind == testimage.Distroless {
				if !slices.Equal(sortedCopy(names), sortedCopy(tc.want)) {
					t.Errorf("distroless packages = %v, want exactly %v", names, tc.want)
				}
				for _, p := range res.Packages {
					if !strings.HasPrefix(p.DBPath, "var/lib/dpkg/status.d/") {
						t.Errorf("%s recorded in %s, want status.d", p.Name, p.DBPath)
					}
				}
			}
			sourceChecks(t, byKey, tc.spec.Arch)
		})
	}
}

// sourceChecks checks binary -> source mappings known from Debian's
// archive: nginx-light comes from nginx; libssl comes from openssl, and is
// never binNMUed in a stable release, so its source version is its own.
func sourceChecks(t *testing.T, byKey map[string]Package, arch string) {
	t.Helper()
	if p, ok := byKey["nginx-light:"+arch]; ok {
		if p.SourceName != "nginx" || !strings.HasPrefix(p.Version, p.SourceVersion) {
			t.Errorf("nginx-light %s: source %s %s, want nginx at the binary version less any +bN", p.Version, p.SourceName, p.SourceVersion)
		}
	}
	for _, name := range []string{"libssl3", "libssl3t64", "libssl1.1"} {
		if p, ok := byKey[name+":"+arch]; ok {
			if p.SourceName != "openssl" || p.SourceVersion != p.Version {
				t.Errorf("%s %s: source %s %s, want openssl %s", name, p.Version, p.SourceName, p.SourceVersion, p.Version)
			}
			if len(p.Files) > 0 && !slices.ContainsFunc(p.Files, func(f string) bool { return strings.Contains(f, "/libssl.so.") }) {
				t.Errorf("%s files lack libssl.so: %v", name, p.Files)
			}
		}
	}
	if p, ok := byKey["libc6:"+arch]; ok && p.SourceName != "glibc" {
		t.Errorf("libc6: source %s, want glibc", p.SourceName)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// BenchmarkDpkgBookwormNginx measures the dpkg analyzer on the real
// bookworm+nginx status file (in memory, so it is the parse that counts).
func BenchmarkDpkgBookwormNginx(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"status", nil}, {"status+files", []Option{WithFiles()}}} {
		b.Run(tc.name, func(b *testing.B) {
			dpkg := mustDpkg(b, tc.opts...)
			_, fsys := imageFS(b, testimage.BookwormNginx, dpkg)
			b.SetBytes(int64(len(fsys[dpkgStatus].Data)))
			ctx := context.Background()
			b.ReportAllocs()
			var n int
			for b.Loop() {
				pkgs, err := dpkg.Analyze(ctx, fsys)
				if err != nil {
					b.Fatal(err)
				}
				n = len(pkgs)
			}
			b.ReportMetric(float64(n), "pkgs")
		})
	}
}
