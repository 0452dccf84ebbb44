package patch

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/sandbox"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/rootfs"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// hostReleases reads the host's distro-info-data (installed by make deps).
func hostReleases(t testing.TB) []vulndb.Release {
	t.Helper()
	f, err := os.Open("/usr/share/distro-info/debian.csv")
	if err != nil {
		testenv.Missing(t, "no distro-info-data on this host: %v", err)
	}
	defer f.Close()
	rels, err := osinfo.ParseDistroInfo(f, "debian")
	if err != nil {
		t.Fatal(err)
	}
	return rels
}

func requireMirror(t testing.TB, suite string) testimage.MirrorInfo {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping network test in -short mode")
	}
	m, err := testimage.Mirror()
	if err == nil {
		err = testimage.MirrorReachable(t.Context(), m, suite)
	}
	if err != nil {
		testenv.Missing(t, "no Debian mirror: %v", err)
	}
	return m
}

func requireSandbox(t testing.TB) {
	t.Helper()
	sb, err := sandbox.New(SandboxAuto)
	if err == nil {
		err = sb.Available(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	}
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
}

// openBase skips (fails in CI) unless the mirror answers for spec's
// suite, then builds (or reuses) the test image spec and opens it.
func openBase(t testing.TB, spec testimage.Spec) (*testimage.Image, v1.Image) {
	t.Helper()
	requireMirror(t, spec.Suite)
	ti := testimage.Require(t, spec)
	base, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	return ti, base
}

// testEngine is an engine for req (default mode UpdateAll) with the host's
// distro-info data and a temporary spool directory; opts come last.
func testEngine(t testing.TB, req Request, opts ...Option) *engine {
	t.Helper()
	if req.Mode == "" {
		req.Mode = UpdateAll
	}
	if req.Image == "" {
		req.Image = "test-image"
	}
	e, _, err := prepare(t.Context(), &req, append([]Option{WithReleases(hostReleases(t)), WithTempDir(t.TempDir())}, opts...))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func patchOf(t *testing.T, img v1.Image, req Request, opts ...Option) *imageRun {
	t.Helper()
	res, err := testEngine(t, req, opts...).image(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.close)
	return res
}

// checkPatched checks what any patched image must satisfy: it validates
// (diff_ids match the layer), every planned package is installed at its
// candidate and nothing else moved (read by testimage's own parser), the
// /lib -> usr/lib symlink survives, and the new layer holds only changed
// entries.
func checkPatched(t *testing.T, base v1.Image, res *imageRun) {
	t.Helper()
	img := res.image
	if img == nil {
		t.Fatal("no patched image")
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	before, err := testimage.InstalledPackages(base)
	if err != nil {
		t.Fatal(err)
	}
	after, err := testimage.InstalledPackages(img)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, p := range before {
		want[p.Name] = p.Version
	}
	for _, c := range res.res.Plan.Changes {
		want[c.Package] = c.To
	}
	got := map[string]string{}
	for _, p := range after {
		got[p.Name] = p.Version
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s: installed %q after the patch, want %q", name, got[name], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d packages after the patch, want %d", len(got), len(want))
	}
	fsys, err := rootfs.New(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	baseFS, err := rootfs.New(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer baseFS.Close()
	for _, p := range []string{"lib", "lib64", "bin", "sbin"} {
		// Merged-/usr images (bookworm, trixie) must keep their symlinks;
		// others (bullseye's debootstrap) their directories.
		was, _ := baseFS.ReadLink(p)
		if is, _ := fsys.ReadLink(p); is != was {
			t.Errorf("/%s: symlink to %q after the patch, %q before", p, is, was)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	type file struct {
		hdr  *tar.Header
		data []byte
	}
	added := map[string]file{}
	tr := tar.NewReader(rc)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, ".wh.") {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		added[h.Name] = file{h, data}
	}
	// One pass over the base image's flattened filesystem.
	flat := mutate.Extract(base)
	defer flat.Close()
	tr = tar.NewReader(flat)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f, ok := added[strings.TrimPrefix(h.Name, "./")]
		if !ok || h.Typeflag != tar.TypeReg {
			continue
		}
		old, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(old, f.data) && h.Mode == f.hdr.Mode && h.Uid == f.hdr.Uid && h.Gid == f.hdr.Gid {
			t.Errorf("the patch layer holds %s unchanged", f.hdr.Name)
		}
	}
	t.Logf("patch layer: %d entries, %d packages, scripts: %d handled", n, len(res.res.Plan.Changes), len(res.res.Scripts))
}

// checkNothingPending checks, with testimage's own reading of the mirror,
// that apt would find nothing left to upgrade in the patched image.
func checkNothingPending(t *testing.T, ti *testimage.Image, img v1.Image) {
	t.Helper()
	left, err := ti.PendingUpdatesIn(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range left {
		t.Errorf("after the patch, %s offers %s %s (installed %s)", u.Suite, u.Package.Name, u.NewVersion, u.Package.Version)
	}
}

// checkPatchedAndRun is the end of every sandboxed Debian acceptance
// test: checkPatched, checkNothingPending, then dpkgChecks, nginxChecks
// and extra run in podman, whose output must contain each of want.
func checkPatchedAndRun(t *testing.T, ti *testimage.Image, base v1.Image, res *imageRun, name, extra string, want ...string) {
	t.Helper()
	checkPatched(t, base, res)
	checkNothingPending(t, ti, res.image)
	out := runInPodman(t, res.image, name, dpkgChecks+nginxChecks+extra)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: the patched image's output lacks %q:\n%s", name, w, out)
		}
	}
}

// runInPodman loads img and runs script in it with sh, returning the
// output; the test skips (fails in CI) without podman.
func runInPodman(t *testing.T, img v1.Image, name, script string) string {
	t.Helper()
	return runArgvInPodman(t, img, name, "sh", "-c", script)
}

// runArgvInPodman runs argv in img (loaded into containers-storage).
func runArgvInPodman(t *testing.T, img v1.Image, name string, argv ...string) string {
	t.Helper()
	for _, tool := range []string{"podman", "skopeo", "/usr/sbin/runc"} {
		testenv.RequireTool(t, tool, path.Base(tool))
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "patched"})); err != nil {
		t.Fatal(err)
	}
	ref := "localhost/drydock-test/" + name + ":patched"
	if out, err := exec.CommandContext(t.Context(), "skopeo", "copy", "-q", "oci:"+dir+":patched", "containers-storage:"+ref).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", ref).Run() })
	args := []string{"--runtime", "/usr/sbin/runc", "--cgroup-manager", "cgroupfs",
		"run", "--rm", "--network=none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000",
		"--entrypoint", "", ref}
	cmd := exec.CommandContext(t.Context(), "podman", append(args, argv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out.String())
	}
	return out.String()
}

// dpkgChecks is the in-image check of every Debian-family acceptance
// test: dpkg --verify and --audit print nothing, apt sees no upgrade.
// The test images carry no apt lists and run without network, so the
// apt-get line only proves apt itself still works after the patch; that
// nothing is left to upgrade is checked against the mirror by
// checkNothingPending.
const dpkgChecks = `set -e
v=$(dpkg --verify 2>&1); [ -z "$v" ] || { echo "dpkg --verify: $v"; exit 1; }
a=$(dpkg --audit 2>&1); [ -z "$a" ] || { echo "dpkg --audit: $a"; exit 1; }
apt-get -s -o Debug::NoLocking=1 upgrade | grep -q '^0 upgraded' || { echo "apt-get -s upgrade shows upgrades"; exit 1; }
`

// nginxChecks starts nginx and fetches a page from it with Perl (in
// perl-base) so that it needs no curl.
const nginxChecks = `nginx -t
nginx
sleep 0.3
perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new("127.0.0.1:80") or die "connect: $!"; print $s "GET / HTTP/1.0\r\nHost: x\r\n\r\n"; print while <$s>' | head -1
`

func TestPatchBookwormNginx(t *testing.T) {
	requireSandbox(t)
	ti, base := openBase(t, testimage.BookwormNginx)

	// With the sandbox off, the packages whose scripts must run are named.
	_, err := testEngine(t, Request{Sandbox: SandboxNever}).image(t.Context(), base)
	var se *backend.ScriptError
	if !errors.As(err, &se) || !errors.Is(err, ErrScripts) {
		t.Fatalf("update-all without sandbox: %v, want a *ScriptError", err)
	}
	// ca-certificates' postinst is reproduced natively; tzdata's (debconf)
	// is not.
	if !strings.Contains(err.Error(), "tzdata postinst") || strings.Contains(err.Error(), "ca-certificates") {
		t.Errorf("refusal does not name exactly the unhandled scripts:\n%v", err)
	}

	// The default mode (auto) runs them in the sandbox.
	start := time.Now()
	res := patchOf(t, base, Request{})
	t.Logf("patched in %s: %v", time.Since(start).Round(time.Millisecond), res.res.Seconds)
	if !slices.ContainsFunc(res.res.Scripts, func(a ScriptAction) bool { return a.Action == "sandbox" }) {
		t.Errorf("no script ran in the sandbox: %+v", res.res.Scripts)
	}
	want, err := ti.PendingSecurityUpdates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]string{}
	for _, c := range res.res.Plan.Changes {
		planned[c.Package] = c.To
	}
	for _, w := range want {
		if planned[w.Name] != w.NewVersion {
			t.Errorf("%s: planned %q, the security suite has %s", w.Name, planned[w.Name], w.NewVersion)
		}
	}
	again := patchOf(t, base, Request{})
	if res.res.Digest != again.res.Digest {
		t.Errorf("patching twice: %s then %s", res.res.Digest, again.res.Digest)
	}
	m, err := res.image.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if bd, _ := base.Digest(); m.Annotations[AnnotationBaseDigest] != bd.String() || !strings.Contains(m.Annotations[AnnotationPatched], "libssl3=") {
		t.Errorf("lineage annotations: %v", m.Annotations)
	}
	checkDebconfOwners(t, base, res)
	checkPatchedAndRun(t, ti, base, res, "bookworm-nginx", "", "200 OK")
}

// TestPatchWithoutScripts patches only packages whose scripts drydock
// handles natively: no sandbox, nothing of the image executed.
func TestPatchWithoutScripts(t *testing.T) {
	_, base := openBase(t, testimage.BookwormNginx)
	// Recorded one version older, so that the mirror offers an update of
	// each whatever its bookworm suites hold today.
	base, err := testimage.Downgraded(base, "libssl3", "liblzma5", "libpcre2-8-0", "perl-base")
	if err != nil {
		t.Fatal(err)
	}
	res := patchOf(t, base, Request{Mode: FromReport, Sandbox: SandboxNever,
		Packages: map[string]string{"libssl3": "", "liblzma5": "", "libpcre2-8-0": "", "perl-base": "", "zzz-not-installed": "1.0"}})
	for _, a := range res.res.Scripts {
		if a.Action == "sandbox" {
			t.Errorf("ran %s %s in a sandbox", a.Package, a.Script)
		}
	}
	if len(res.res.Plan.Changes) != 4 {
		t.Errorf("plan: %+v", res.res.Plan.Changes)
	}
	checkPatched(t, base, res)
	runInPodman(t, res.image, "bookworm-noscripts", dpkgChecks+nginxChecks+"openssl version\n")
}

func TestPatchBullseyeEndOfLife(t *testing.T) {
	ti, base := openBase(t, testimage.BullseyeNginxCurl)
	_, err := testEngine(t, Request{DryRun: true}).image(t.Context(), base)
	if !errors.Is(err, ErrEndOfLife) || !strings.Contains(err.Error(), "support ended on 20") {
		t.Fatalf("bullseye with the real clock: %v, want an end-of-life refusal with the date", err)
	}
	requireSandbox(t)
	res := patchOf(t, base, Request{AllowEOL: true})
	want, err := ti.PendingSecurityUpdates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.res.Plan.Changes) < len(want) {
		t.Errorf("%d changes, %d pending security updates", len(res.res.Plan.Changes), len(want))
	}
	checkPatchedAndRun(t, ti, base, res, "bullseye-nginx-curl",
		"curl -sS -o /dev/null -w 'curl %{http_code}\\n' http://127.0.0.1/\ncurl --version | head -1\n",
		"curl 200", "OpenSSL/1.1.1w")
}

func TestPatchDistroless(t *testing.T) {
	m := requireMirror(t, testimage.DistrolessBookworm.Suite)
	if _, err := os.Stat(apt.DebianArchiveKeyring); err != nil {
		testenv.Missing(t, "no host archive keyring (apt-get install debian-archive-keyring): %v", err)
	}
	ti := testimage.Require(t, testimage.DistrolessBookworm)
	base, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	res := patchOf(t, base, Request{Repositories: distrolessRepos(m)})
	if len(res.res.Plan.Changes) == 0 {
		// Nothing to patch today: patch a constructed scenario.
		t.Logf("nothing to patch in the distroless image today (%s): tzdata recorded one version older", res.res.Plan.Reason)
		if base, err = testimage.Downgraded(base, "tzdata"); err != nil {
			t.Fatal(err)
		}
		if res = patchOf(t, base, Request{Repositories: distrolessRepos(m)}); len(res.res.Plan.Changes) == 0 {
			t.Fatalf("nothing to patch in the constructed scenario: %s", res.res.Plan.Reason)
		}
	}
	for _, a := range res.res.Scripts {
		if a.Action != "skipped-distroless" {
			t.Errorf("script %s %s: %s", a.Package, a.Script, a.Action)
		}
	}
	checkPatchedDistroless(t, base, res)

	// Build, the workflow engine's entry to the same pipeline, gives the
	// same image.
	b, err := Build(t.Context(), base, nil, Request{Image: "test-image", Mode: UpdateAll, Repositories: distrolessRepos(m)},
		WithReleases(hostReleases(t)), WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Image == nil || b.Digest != res.res.Digest {
		t.Errorf("Build: image %v, digest %s; the engine gave %s", b.Image != nil, b.Digest, res.res.Digest)
	}
}

// distrolessRepos is how the distroless test images are patched: they
// carry no apt sources or keys.
func distrolessRepos(m testimage.MirrorInfo) Repositories {
	return Repositories{Mirror: m.URI, SecurityMirror: m.SecurityURI, HostKeyring: apt.DebianArchiveKeyring}
}

// checkPatchedDistroless checks a patched distroless image: status.d
// names the candidates (testimage's parser reads status.d), and the
// dynamic loader from the patched libc6 still runs.
func checkPatchedDistroless(t *testing.T, base v1.Image, res *imageRun) {
	t.Helper()
	after, err := testimage.InstalledPackages(res.image)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range after {
		got[p.Name] = p.Version
	}
	for _, c := range res.res.Plan.Changes {
		if got[c.Package] != c.To {
			t.Errorf("%s: status.d says %q, want %s", c.Package, got[c.Package], c.To)
		}
	}
	if err := validate.Image(res.image); err != nil {
		t.Fatal(err)
	}
	out := runArgvInPodman(t, res.image, "distroless", "/lib64/ld-linux-x86-64.so.2", "--version")
	if !strings.Contains(out, "ld.so") {
		t.Errorf("the patched image's loader does not run:\n%s", out)
	}
}

// TestPatchTrixieNginx patches trixie + nginx-light + curl. The plan must
// match testimage's own reading of the mirror. When the mirror's trixie
// main suite is current there is nothing to patch, which must be success
// without an image; the patch is then run on a constructed scenario (the
// image's dpkg database records curl one version older), so that the test
// always patches and runs a trixie image, whatever the mirror offers today.
func TestPatchTrixieNginx(t *testing.T) {
	ti, base := openBase(t, testimage.Trixie)
	left, err := ti.PendingUpdatesIn(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	res := patchOf(t, base, Request{DryRun: true})
	if len(left) != len(res.res.Plan.Changes) {
		t.Errorf("testimage sees %d pending updates, the plan %d", len(left), len(res.res.Plan.Changes))
	}
	if len(left) == 0 {
		res := patchOf(t, base, Request{})
		if res.image != nil || res.res.Plan.Reason == "" {
			t.Errorf("nothing to patch gave image %v, reason %q", res.image != nil, res.res.Plan.Reason)
		}
		t.Logf("trixie is current (%s): patching a constructed scenario, curl recorded one version older", res.res.Plan.Reason)
		if base, err = testimage.Downgraded(base, "curl"); err != nil {
			t.Fatal(err)
		}
		if left, err = ti.PendingUpdatesIn(t.Context(), base); err != nil || len(left) == 0 {
			t.Fatalf("the constructed scenario has %d pending updates (%v), want curl", len(left), err)
		}
	}
	requireSandbox(t)
	res = patchOf(t, base, Request{})
	if len(res.res.Plan.Changes) < len(left) {
		t.Errorf("%d changes planned, testimage sees %d pending updates", len(res.res.Plan.Changes), len(left))
	}
	checkPatchedAndRun(t, ti, base, res, "trixie-nginx",
		"curl -sS -o /dev/null -w 'curl %{http_code}\\n' http://127.0.0.1/\n", "curl 200")
}

func TestPatchMultiArchIndex(t *testing.T) {
	requireMirror(t, testimage.TrixieAmd64.Suite)
	x := testimage.RequireIndex(t, testimage.MultiArchTrixie, testimage.MultiArchSpecs)
	idx, err := x.Open()
	if err != nil {
		t.Fatal(err)
	}
	res, err := testEngine(t, Request{}).index(t.Context(), idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.close()
	if len(res.platforms) != 2 {
		t.Fatalf("%d platforms patched, want 2", len(res.platforms))
	}
	var archs []string
	for _, p := range res.platforms {
		archs = append(archs, p.res.Plan.Platform)
		if p.image == nil && p.res.Plan.Reason == "" {
			t.Errorf("%s: no image and no reason", p.res.Plan.Platform)
		}
	}
	t.Logf("platforms %v; changed index: %v", archs, res.index != nil)
	if res.index != nil {
		if err := validate.Index(res.index); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPatchMultiArchDistroless patches a two-platform index on this
// amd64 machine: the arm64 image is patched too, since nothing of it
// runs, and its status.d names the arm64 candidates.
func TestPatchMultiArchDistroless(t *testing.T) {
	m := requireMirror(t, testimage.DistrolessBookworm.Suite)
	if _, err := os.Stat(apt.DebianArchiveKeyring); err != nil {
		testenv.Missing(t, "no host archive keyring (apt-get install debian-archive-keyring): %v", err)
	}
	x := testimage.RequireIndex(t, testimage.MultiArchDistroless, testimage.MultiArchDistrolessSpecs)
	idx, err := x.Open()
	if err != nil {
		t.Fatal(err)
	}
	res, err := testEngine(t, Request{Repositories: distrolessRepos(m)}).index(t.Context(), idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.close()
	if res.index == nil {
		// Nothing to patch today: patch a constructed scenario.
		t.Log("nothing to patch in bookworm's main suite today: tzdata recorded one version older on both platforms")
		if idx, err = testimage.DowngradedIndex(idx, "tzdata"); err != nil {
			t.Fatal(err)
		}
		if res, err = testEngine(t, Request{Repositories: distrolessRepos(m)}).index(t.Context(), idx, nil); err != nil {
			t.Fatal(err)
		}
		defer res.close()
		if res.index == nil {
			t.Fatal("nothing to patch in the constructed scenario")
		}
	}
	if err := validate.Index(res.index); err != nil {
		t.Fatal(err)
	}
	im, err := res.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("patched index has %d manifests", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		img, err := res.index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		arch := d.Platform.Architecture
		var plat *imageRun
		for _, p := range res.platforms {
			if strings.Contains(p.res.Plan.Platform, "/"+arch) {
				plat = p
			}
		}
		if plat == nil || plat.image == nil {
			t.Fatalf("%s: not patched", arch)
		}
		if got, _ := plat.image.Digest(); got != d.Digest {
			t.Errorf("%s: index names %s, the patch made %s", arch, d.Digest, got)
		}
		pkgs, err := testimage.InstalledPackages(img)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]testimage.Package{}
		for _, p := range pkgs {
			byName[p.Name] = p
		}
		for _, c := range plat.res.Plan.Changes {
			p := byName[c.Package]
			if p.Version != c.To {
				t.Errorf("%s: %s is %q, want %s", arch, c.Package, p.Version, c.To)
			}
			if p.Arch != "all" && p.Arch != arch {
				t.Errorf("%s: %s recorded for architecture %s", arch, c.Package, p.Arch)
			}
		}
		t.Logf("%s: %d packages updated", arch, len(plat.res.Plan.Changes))
	}
}

// withLayer is base with one more layer holding entries (regular files
// of one byte "x", whiteouts and others empty).
func withLayer(t *testing.T, base v1.Image, entries ...string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range entries {
		data := []byte("x")
		if strings.Contains(name, ".wh.") {
			data = nil
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestPatchRefusesWhatTheGateRefuses: the patcher reads images within the
// gate's limits and refuses, in the gate's words and before anything is
// fetched, what the gate cannot judge: a layer entry climbing out of the
// root (also ErrHostileImage), over a limit, or a package database a
// layer removed.
func TestPatchRefusesWhatTheGateRefuses(t *testing.T) {
	ti := testimage.Require(t, testimage.BookwormNginx)
	base, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	hostile := withLayer(t, base, "../../etc/evil", "etc/ok")
	hidden := withLayer(t, base, "var/lib/dpkg/.wh.status")
	for _, tc := range []struct {
		name   string
		img    v1.Image
		limits scan.Limits
		want   refusal.Kind
		has    string
	}{
		{"hostile", hostile, scan.Limits{}, refusal.Hostile, "../../etc/evil"},
		{"packages", base, scan.Limits{MaxPackages: 5}, refusal.OverLimit, "package"},
		{"entries", base, scan.Limits{MaxEntries: 100}, refusal.OverLimit, "entries"},
		{"status removed", hidden, scan.Limits{}, refusal.Unverifiable, "var/lib/dpkg/status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testEngine(t, Request{DryRun: true, AllowEOL: true}, WithLimits(tc.limits)).image(t.Context(), tc.img)
			if kind, _ := refusal.KindOf(err); kind != tc.want || !strings.Contains(err.Error(), tc.has) {
				t.Fatalf("got %v (kind %q), want a %s refusal naming %q", err, kind, tc.want, tc.has)
			}
			if hostile := tc.want == refusal.Hostile; errors.Is(err, ErrHostileImage) != hostile || errors.Is(err, ErrUnsupported) == hostile {
				t.Errorf("%v: ErrHostileImage %v, ErrUnsupported %v; want the first for a hostile image only", err, errors.Is(err, ErrHostileImage), errors.Is(err, ErrUnsupported))
			}
		})
	}
	if err := WithLimits(scan.Limits{MaxPackages: -1})(&options{}); err == nil || !strings.Contains(err.Error(), "maxPackages") {
		t.Errorf("a negative limit: %v", err)
	}
}
