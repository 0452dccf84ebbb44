package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestPatchRootless is the acceptance test of the rootless sandbox: a
// plain `drydock patch --update-all` (no --sandbox flag) of bookworm+nginx,
// whose debconf scripts must run, by an unprivileged user with
// subordinate ids (created here, removed at the end): the same digest as
// the root run, dpkg --verify and --audit clean and nginx serving in
// podman, nothing left pending by the mirror's own reading. Where the
// sandbox cannot run (no subordinate ids; user namespaces switched off),
// the refusal names what to configure.
func TestPatchRootless(t *testing.T) {
	testenv.RequireRoot(t, "creating the unprivileged user")
	requireTool(t, "useradd", "userdel", "runuser", "newuidmap", "newgidmap", "unshare", "podman", "skopeo", "runc")
	ti := testimage.Require(t, testimage.BookwormNginx)
	// Every user can read the input layout and the binary.
	shared, err := os.MkdirTemp("", "drydock-e2e-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	os.Chmod(shared, 0o755)
	in := filepath.Join(shared, "in")
	if out, err := exec.Command("cp", "-r", ti.LayoutDir, in).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	bin := filepath.Join(shared, "drydock")
	if out, err := exec.Command("cp", drydockBin, bin).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", shared).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	src := "oci:" + in + ":" + ti.Ref

	// The root run.
	rootOut := filepath.Join(t.TempDir(), "out")
	r := mustDrydock(t, nil, "patch", src, "--update-all", "--output", "oci:"+rootOut, "-t", "patched", "--format", "json")
	root := parseRun(t, r.Stdout)
	if !ranInSandbox(root) {
		t.Fatalf("the root run ran no script in the sandbox: the test proves nothing:\n%s", r.Stdout)
	}

	// The rootless run.
	u := newTestUser(t, true)
	home := filepath.Join(shared, "home-"+u.Username)
	os.Mkdir(home, 0o700)
	chownTo(t, home, u)
	userOut := filepath.Join(home, "out")
	ur := runAs(t, u, home, nil, bin, "patch", src, "--update-all", "--output", "oci:"+userOut, "-t", "patched", "--format", "json")
	if ur.Code != 0 {
		t.Fatalf("rootless drydock patch: exit %d\n%s\n%s", ur.Code, ur.Stdout, ur.Stderr)
	}
	rootless := parseRun(t, ur.Stdout)
	if !ranInSandbox(rootless) {
		t.Errorf("the rootless run ran no script in the sandbox:\n%s", ur.Stdout)
	}
	if rootless.Digest == "" || rootless.Digest != root.Digest {
		t.Errorf("rootless digest %s, root digest %s", rootless.Digest, root.Digest)
	}

	// The rootless result, checked as every patched image is.
	p, err := layout.FromPath(userOut)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("rootless output: %v", err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	left, err := ti.PendingUpdatesIn(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		t.Errorf("after the rootless patch, %s offers %s %s (installed %s)", l.Suite, l.Package.Name, l.NewVersion, l.Package.Version)
	}
	out := runPatchedInPodman(t, "oci:"+userOut+":patched", "drydock-e2e-rootless", `set -e
v=$(dpkg --verify 2>&1); [ -z "$v" ] || { echo "dpkg --verify: $v"; exit 1; }
a=$(dpkg --audit 2>&1); [ -z "$a" ] || { echo "dpkg --audit: $a"; exit 1; }
nginx -t 2>&1
nginx
sleep 0.3
perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new("127.0.0.1:80") or die "connect: $!"; print $s "GET / HTTP/1.0\r\nHost: x\r\n\r\n"; print while <$s>' | head -1
`)
	if !strings.Contains(out, "200 OK") {
		t.Errorf("nginx in the rootless result:\n%s", out)
	}

	// Refusals name what is missing.
	t.Run("no subordinate ids", func(t *testing.T) {
		nu := newTestUser(t, false)
		nhome := filepath.Join(shared, "home-"+nu.Username)
		os.Mkdir(nhome, 0o700)
		chownTo(t, nhome, nu)
		r := runAs(t, nu, nhome, nil, bin, "patch", src, "--update-all", "--output", "oci:"+filepath.Join(nhome, "out"))
		for _, want := range []string{"tzdata postinst", "cannot run in a sandbox", "no subordinate uid range in /etc/subuid", "usermod --add-subuids"} {
			if r.Code == 0 || !strings.Contains(r.Stderr, want) {
				t.Errorf("exit %d, stderr lacks %q:\n%s", r.Code, want, r.Stderr)
			}
		}
	})
	t.Run("user namespaces off", func(t *testing.T) {
		// user.max_user_namespaces=0 in a user namespace of the test's
		// own: the host's setting stays as it is.
		r := runAs(t, u, home, []string{"unshare", "--user", "--map-root-user", "sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"`, "sh"},
			bin, "patch", src, "--update-all", "--output", "oci:"+filepath.Join(home, "off"))
		for _, want := range []string{"cannot run in a sandbox", "user namespaces are disabled", "user.max_user_namespaces is 0", "sysctl -w user.max_user_namespaces="} {
			if r.Code == 0 || !strings.Contains(r.Stderr, want) {
				t.Errorf("exit %d, stderr lacks %q:\n%s", r.Code, want, r.Stderr)
			}
		}
	})
}

type patchRun struct {
	Digest    string `json:"digest"`
	Platforms []struct {
		Scripts []struct{ Package, Script, Action string } `json:"scripts"`
	} `json:"platforms"`
}

func parseRun(t *testing.T, out string) patchRun {
	t.Helper()
	var r patchRun
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	return r
}

func ranInSandbox(r patchRun) bool {
	for _, p := range r.Platforms {
		for _, s := range p.Scripts {
			if s.Action == "sandbox" {
				return true
			}
		}
	}
	return false
}

// newTestUser creates a user (with the subordinate ranges useradd gives,
// or none) and removes it when the test ends.
func newTestUser(t *testing.T, withRanges bool) *user.User {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "ddke2e" + hex.EncodeToString(rnd[:])
	args := []string{"--no-create-home", "--shell", "/usr/sbin/nologin"}
	if !withRanges {
		args = append(args, "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0")
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func chownTo(t *testing.T, dir string, u *user.User) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", u.Uid+":"+u.Gid, dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
}

// runAs runs argv as u with a clean environment whose HOME, TMPDIR and
// DRYDOCK_CACHE are in home; wrap prefixes the command.
func runAs(t *testing.T, u *user.User, home string, wrap []string, argv ...string) result {
	t.Helper()
	args := []string{"-u", u.Username, "--", "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home, "TMPDIR=" + home, "DRYDOCK_CACHE=" + filepath.Join(home, "cache")}
	args = append(append(args, wrap...), argv...)
	cmd := exec.CommandContext(t.Context(), "runuser", args...)
	cmd.Dir = home
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("runuser: %v", err)
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// runPatchedInPodman loads the image at ref (a skopeo source) and runs
// script in it with sh, with no network; the output is returned.
func runPatchedInPodman(t *testing.T, ref, name, script string) string {
	t.Helper()
	local := "localhost/" + name + ":patched"
	runTool(t, "skopeo", "copy", "-q", ref, "containers-storage:"+local)
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", local).Run() })
	cmd := exec.CommandContext(t.Context(), "podman", "--runtime", "/usr/sbin/runc", "--cgroup-manager", "cgroupfs",
		"run", "--rm", "--network=none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000",
		"--entrypoint", "", local, "sh", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	return string(out)
}
