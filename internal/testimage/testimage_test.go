package testimage

import (
	"archive/tar"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// tree is an image's flattened filesystem: every header, the content of
// small files under etc/ and usr/lib/, and the first bytes of the others.
type tree struct {
	hdrs map[string]*tar.Header
	data map[string][]byte
}

func readTree(t *testing.T, img v1.Image) *tree {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := &tree{hdrs: map[string]*tar.Header{}, data: map[string][]byte{}}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading image filesystem: %v", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		out.hdrs[name] = h
		if h.Typeflag != tar.TypeReg {
			continue
		}
		limit := int64(64)
		if (strings.HasPrefix(name, "etc/") || strings.HasPrefix(name, "usr/lib/")) && h.Size < 1<<20 {
			limit = h.Size
		}
		b, err := io.ReadAll(io.LimitReader(tr, limit))
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		out.data[name] = b
	}
}

func (tr *tree) has(name string) bool { _, ok := tr.hdrs[name]; return ok }

func validImage(t *testing.T, i *Image) v1.Image {
	t.Helper()
	img, err := i.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("%s: invalid image: %v", i.Spec.Name, err)
	}
	return img
}

func TestCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping image builds in -short mode")
	}
	for _, s := range Catalog() {
		t.Run(s.Name, func(t *testing.T) {
			i := Require(t, s)
			img := validImage(t, i)
			checkConfig(t, s, img)
			tr := readTree(t, img)
			checkCommon(t, s, tr)
			switch s.Kind {
			case Distroless:
				checkDistroless(t, tr)
			default:
				checkDebian(t, s, tr)
			}
			machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[s.Arch]
			if s.Kind == Distroless {
				checkELF(t, tr, "lib/"+triplet(s.Arch)+"/libc.so.6", machine)
			} else {
				checkELF(t, tr, "usr/bin/dpkg", machine)
				checkELF(t, tr, "usr/bin/bash", machine)
			}
			pkgs, err := i.Packages()
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, p := range pkgs {
				names[p.Name] = true
				if p.Arch != s.Arch && p.Arch != "all" {
					t.Errorf("package %s has architecture %s", p.Name, p.Arch)
				}
			}
			for _, want := range append([]string{"base-files"}, s.Include...) {
				if !names[want] {
					t.Errorf("package %s not installed", want)
				}
			}
			t.Logf("%s: %d packages, %.1f MB, %s", s.Name, len(pkgs), float64(i.Size)/1e6, i.Digest)
		})
	}
}

func checkConfig(t *testing.T, s Spec, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	p := s.Platform()
	if cf.OS != "linux" || cf.Architecture != p.Architecture || cf.Variant != p.Variant {
		t.Errorf("platform %s/%s/%s, want %s", cf.OS, cf.Architecture, cf.Variant, p.String())
	}
	if !slices.Equal(cf.Config.Env, []string{DefaultPath}) {
		t.Errorf("Env = %q", cf.Config.Env)
	}
	if !slices.Equal(cf.Config.Cmd, s.Cmd) {
		t.Errorf("Cmd = %q, want %q", cf.Config.Cmd, s.Cmd)
	}
	if !cf.Created.Time.Equal(DefaultEpoch) {
		t.Errorf("created %v, want %v", cf.Created.Time, DefaultEpoch)
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("%d diff_ids, want 1", len(cf.RootFS.DiffIDs))
	}
	if len(cf.History) == 0 || cf.History[0].CreatedBy == "" || cf.History[0].EmptyLayer {
		t.Errorf("history %+v: want a first entry with created_by for the layer", cf.History)
	}
}

func checkCommon(t *testing.T, s Spec, tr *tree) {
	t.Helper()
	osr := string(tr.data["usr/lib/os-release"])
	if !strings.Contains(osr, "VERSION_CODENAME="+s.Suite) {
		t.Errorf("usr/lib/os-release does not name %s:\n%s", s.Suite, osr)
	}
	if !tr.has("etc/os-release") {
		t.Error("no etc/os-release")
	}
	for name, h := range tr.hdrs {
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			t.Errorf("%s: device node or FIFO in the layer", name)
		}
		if h.ModTime.After(DefaultEpoch) {
			t.Errorf("%s: mtime %v after the epoch", name, h.ModTime)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner names %q/%q", name, h.Uname, h.Gname)
		}
	}
	if !tr.has("dev") {
		t.Error("no /dev directory")
	}
	for name := range tr.hdrs {
		if strings.HasPrefix(name, "dev/") {
			t.Errorf("%s: /dev is not empty", name)
		}
	}
}

func checkDebian(t *testing.T, s Spec, tr *tree) {
	t.Helper()
	if !tr.has("var/lib/dpkg/status") {
		t.Error("no var/lib/dpkg/status")
	}
	for _, p := range []string{"bin/bash", "usr/bin/apt-get", "usr/bin/dpkg"} {
		if !tr.has(p) && !tr.has("usr/"+p) {
			t.Errorf("no %s", p)
		}
	}
	if s.Suite != "bullseye" {
		for _, d := range []string{"bin", "lib", "sbin"} {
			if h := tr.hdrs[d]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/"+d {
				t.Errorf("/%s is not a symlink to usr/%s (merged-usr lost): %+v", d, d, h)
			}
		}
	}
	var sources string
	if legacySources(s.Suite) {
		sources = string(tr.data["etc/apt/sources.list"])
		for _, want := range []string{" " + s.Suite + " main", " " + s.Suite + "-updates main", "-security " + s.Suite + "-security main"} {
			if !strings.Contains(sources, want) {
				t.Errorf("etc/apt/sources.list lacks %q:\n%s", want, sources)
			}
		}
	} else {
		if tr.has("etc/apt/sources.list") {
			t.Error("etc/apt/sources.list exists next to debian.sources")
		}
		sources = string(tr.data["etc/apt/sources.list.d/debian.sources"])
		for _, want := range []string{"Suites: " + s.Suite + " " + s.Suite + "-updates\n", "Suites: " + s.Suite + "-security\n", "Signed-By: /usr/share/keyrings/debian-archive-keyring."} {
			if !strings.Contains(sources, want) {
				t.Errorf("debian.sources lacks %q:\n%s", want, sources)
			}
		}
		for _, line := range strings.Split(sources, "\n") {
			if k, ok := strings.CutPrefix(line, "Signed-By: "); ok && !tr.has(strings.TrimPrefix(k, "/")) {
				t.Errorf("Signed-By %s is not in the image", k)
			}
		}
	}
	for name := range tr.hdrs {
		if strings.HasPrefix(name, "var/lib/apt/lists/") && strings.HasSuffix(name, "Packages") ||
			strings.HasPrefix(name, "var/cache/apt/archives/") && strings.HasSuffix(name, ".deb") ||
			name == "var/log/bootstrap.log" || name == "var/log/dpkg.log" {
			t.Errorf("%s left in the image", name)
		}
	}
	if st, ok := tr.data["etc/shadow"]; ok && strings.Contains(string(st), "root:") {
		// Password ages are the epoch's day, not the build's.
		if !strings.Contains(string(st), ":20089:") {
			t.Errorf("etc/shadow not clamped to the epoch day:\n%s", st)
		}
	}
}

func checkDistroless(t *testing.T, tr *tree) {
	t.Helper()
	if tr.has("var/lib/dpkg/status") {
		t.Error("distroless image has var/lib/dpkg/status")
	}
	n := 0
	for name := range tr.hdrs {
		if path.Dir(name) == "var/lib/dpkg/status.d" && !strings.HasSuffix(name, ".md5sums") {
			n++
			if !strings.Contains(string(tr.data[name]), "\nStatus: install ok installed\n") {
				t.Errorf("%s: no installed status:\n%s", name, tr.data[name])
			}
		}
	}
	if n == 0 {
		t.Error("no var/lib/dpkg/status.d entries")
	}
	for _, p := range []string{"bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "usr/bin/apt", "usr/bin/apt-get", "usr/bin/dpkg"} {
		if tr.has(p) {
			t.Errorf("distroless image has %s", p)
		}
	}
	if h := tr.hdrs["etc/ssl/certs/ca-certificates.crt"]; h == nil || h.Size < 100000 {
		t.Errorf("no CA bundle: %+v", h)
	}
	if !strings.Contains(string(tr.data["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Error("etc/passwd lacks nonroot")
	}
}

// checkELF reads the ELF header of a binary (following the image's symlinks
// to it) and checks its machine.
func checkELF(t *testing.T, tr *tree, name string, want elf.Machine) {
	t.Helper()
	for range 8 {
		h := tr.hdrs[name]
		if h == nil && strings.HasPrefix(name, "usr/") {
			h = tr.hdrs[strings.TrimPrefix(name, "usr/")] // non-merged-usr
			name = strings.TrimPrefix(name, "usr/")
		}
		if h == nil {
			t.Errorf("no %s", name)
			return
		}
		if h.Typeflag != tar.TypeSymlink {
			break
		}
		if strings.HasPrefix(h.Linkname, "/") {
			name = strings.TrimPrefix(h.Linkname, "/")
		} else {
			name = path.Join(path.Dir(name), h.Linkname)
		}
	}
	b := tr.data[name]
	if len(b) < 20 || string(b[:4]) != elf.ELFMAG {
		t.Errorf("%s: not ELF (% x)", name, b[:min(len(b), 8)])
		return
	}
	// e_machine follows e_ident (16 bytes) and e_type (2), little-endian here.
	if got := elf.Machine(binary.LittleEndian.Uint16(b[18:20])); got != want {
		t.Errorf("%s: ELF machine %v, want %v", name, got, want)
	}
}

func triplet(arch string) string {
	if arch == "arm64" {
		return "aarch64-linux-gnu"
	}
	return "x86_64-linux-gnu"
}

func TestPendingSecurityUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping image builds in -short mode")
	}
	for _, s := range []Spec{Bookworm, BullseyeNginxCurl, BookwormNginx} {
		t.Run(s.Name, func(t *testing.T) {
			i := Require(t, s)
			ups, err := i.PendingSecurityUpdates(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(ups) == 0 {
				t.Fatalf("%s built from %s main has no pending %s-security updates", s.Name, s.Suite, s.Suite)
			}
			var list []string
			for _, u := range ups {
				if compareVersions(u.NewVersion, u.Version) <= 0 {
					t.Errorf("%s: update %s is not newer than %s", u.Name, u.NewVersion, u.Version)
				}
				list = append(list, u.Name+" "+u.Version+" -> "+u.NewVersion)
			}
			t.Logf("%d pending updates from %s:\n%s", len(ups), ups[0].Suite, strings.Join(list, "\n"))
		})
	}
}

func TestMultiArchIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping image builds in -short mode")
	}
	x := RequireIndex(t, MultiArchTrixie, MultiArchSpecs)
	idx, err := x.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("invalid index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s without platform", d.Digest)
		}
		plats = append(plats, d.Platform.String())
	}
	slices.Sort(plats)
	if want := []string{"linux/amd64", "linux/arm64/v8"}; !slices.Equal(plats, want) {
		t.Errorf("platforms %q, want %q", plats, want)
	}
	// Same release, same package set on both platforms (binNMUs like
	// "+b1" may differ per architecture: compare source versions).
	var sets [][]string
	for _, i := range x.Images {
		pkgs, err := i.Packages()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range pkgs {
			names = append(names, p.Name+"="+p.SourceVersion)
		}
		sets = append(sets, names)
	}
	if !slices.Equal(sets[0], sets[1]) {
		t.Errorf("package sets differ:\n%v\n%v", sets[0], sets[1])
	}
}

// TestReproducible rebuilds the smallest image in a fresh cache: same spec,
// same digest. DRYDOCK_TEST_REPRODUCE_ALL=1 also rebuilds a debootstrap and a
// chrootless image (about a minute more).
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping image builds in -short mode")
	}
	specs := []Spec{DistrolessBookworm}
	if os.Getenv("DRYDOCK_TEST_REPRODUCE_ALL") == "1" {
		specs = append(specs, TrixieArm64, Bookworm)
	}
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			first := Require(t, s)
			second, err := Build(t.Context(), s, WithCacheDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			if second.Reused {
				t.Fatal("fresh cache reused an image")
			}
			if first.Digest != second.Digest {
				t.Errorf("rebuild gave %s, first build %s", second.Digest, first.Digest)
			}
		})
	}
}

// TestConcurrentBuilds builds one spec from several goroutines into one new
// cache: the lock lets exactly one build, the others reuse it.
func TestConcurrentBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping image builds in -short mode")
	}
	requireAvailable(t, DistrolessBookworm)
	dir := t.TempDir()
	var wg sync.WaitGroup
	imgs := make([]*Image, 3)
	errs := make([]error, 3)
	for n := range imgs {
		wg.Go(func() { imgs[n], errs[n] = Build(t.Context(), DistrolessBookworm, WithCacheDir(dir)) })
	}
	wg.Wait()
	built := 0
	for n := range imgs {
		if errs[n] != nil {
			t.Fatal(errs[n])
		}
		if !imgs[n].Reused {
			built++
		}
		if imgs[n].Digest != imgs[0].Digest {
			t.Errorf("digest %s != %s", imgs[n].Digest, imgs[0].Digest)
		}
	}
	if built != 1 {
		t.Errorf("%d builds, want 1", built)
	}
}

func TestArchives(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping image builds in -short mode")
	}
	RequireTool(t, "skopeo", "skopeo")
	i := Require(t, DistrolessBookworm)
	dir := t.TempDir()
	want, err := validImage(t, i).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	dockerTar, err := i.DockerArchive(t.Context(), dir, "drydock/distroless", "test")
	if err != nil {
		t.Fatal(err)
	}
	dimg, err := tarball.ImageFromPath(dockerTar, nil)
	if err != nil {
		t.Fatalf("reading %s: %v", dockerTar, err)
	}
	if err := validate.Image(dimg); err != nil {
		t.Fatalf("docker-archive image invalid: %v", err)
	}
	got, err := dimg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.RootFS.DiffIDs, want.RootFS.DiffIDs) {
		t.Errorf("docker-archive diff_ids %v, want %v", got.RootFS.DiffIDs, want.RootFS.DiffIDs)
	}
	ociTar, err := i.OCIArchive(t.Context(), dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(ociTar); err != nil || fi.Size() < i.Size {
		t.Errorf("oci-archive %s: %v", ociTar, err)
	}
}

func TestRunsInPodman(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping image builds in -short mode")
	}
	RequireTool(t, "skopeo", "skopeo")
	podman := RequireTool(t, "podman", "podman")
	RequireTool(t, "runc", "runc")
	i := Require(t, Bookworm)
	ref, err := i.LoadIntoContainersStorage(t.Context(), "drydock-testimage-"+i.Spec.Name, i.Digest.Hex[:12])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(podman, "rmi", "--force", ref).Run() })
	out, err := exec.CommandContext(t.Context(), podman, "--runtime", "/usr/sbin/runc", "--cgroup-manager", "cgroupfs",
		"run", "--rm", "--network=none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000",
		ref, "cat", "/etc/os-release").CombinedOutput()
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "VERSION_CODENAME=bookworm") {
		t.Errorf("os-release from the container:\n%s", out)
	}
}
