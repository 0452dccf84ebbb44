package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
)

// The sandbox's tests run twice: as root (this process), and rootless:
// TestSandboxRootless creates a user with subordinate id ranges and runs
// this test binary again as that user, with childEnv set, on a copy of
// the test image every user can read (layoutEnv).
const (
	childEnv  = "DRYDOCK_SANDBOX_TEST_CHILD"
	layoutEnv = "DRYDOCK_SANDBOX_TEST_LAYOUT"
)

func inChild() bool { return os.Getenv(childEnv) != "" }

// bookworm returns the bookworm test image (a shell, perl, dpkg).
func bookworm(t *testing.T) v1.Image {
	t.Helper()
	dir := os.Getenv(layoutEnv)
	if dir == "" {
		dir = sharedLayout(t)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("test layout %s: %v (%d manifests)", dir, err, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var (
	layoutOnce sync.Once
	layoutDir  string
	layoutErr  error
)

// sharedLayout copies the bookworm test image's OCI layout to a directory
// every user can read (removed by TestMain).
func sharedLayout(t *testing.T) string {
	t.Helper()
	ti := testimage.Require(t, testimage.Bookworm)
	layoutOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drydock-sandbox-test-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err == nil {
			layoutDir = filepath.Join(dir, "oci")
			var out []byte
			if out, err = exec.Command("cp", "-r", ti.LayoutDir, layoutDir).CombinedOutput(); err == nil {
				out, err = exec.Command("chmod", "-R", "a+rX", dir).CombinedOutput()
			}
			if err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			}
		}
		layoutErr = err
	})
	if layoutErr != nil {
		t.Fatal(layoutErr)
	}
	return layoutDir
}

// newSandbox returns a sandbox with its own tree cache, skipping (failing
// in CI) where none can run.
func newSandbox(t *testing.T, opts ...Option) *Sandbox {
	t.Helper()
	s, err := New(backend.SandboxAuto, append([]Option{WithCacheDir(t.TempDir(), 0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Available(v1.Platform{OS: "linux", Architecture: runtimeArch()}); err != nil {
		if testimage.InCI() || inChild() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Logf("sandbox: rootless=%v overlay=%v", s.Rootless(), s.overlay)
	return s
}

// testUser creates a user for the test (subordinate ranges as useradd
// gives them, or none) and removes it at the end. Root only.
func testUser(t *testing.T, withRanges bool) *user.User {
	t.Helper()
	testenv.RequireRoot(t, "creating a test user")
	for _, tool := range []string{"useradd", "userdel", "runuser", "newuidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testimage.InCI() {
				t.Fatalf("%s: %v (make deps installs uidmap)", tool, err)
			}
			t.Skipf("skipping: %s: %v", tool, err)
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "ddksbx" + hex.EncodeToString(rnd[:])
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
	if withRanges {
		if _, n, err := subordinate(subuidFile, name, 0); err != nil || n == 0 {
			t.Fatalf("useradd gave %s no subordinate uids (%v): check SUB_UID_COUNT in /etc/login.defs", name, err)
		}
	}
	return u
}

// runChild runs this test binary as u with the tests matching pattern,
// in child mode, and returns its output; wrap (optional) prefixes the
// command (e.g. unshare).
func runChild(t *testing.T, u *user.User, pattern string, wrap ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "drydock-sandbox-child-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "sandbox.test")
	if out, err := exec.Command("cp", exe, bin).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{dir, tmp} {
		os.MkdirAll(d, 0o755)
		os.Chmod(d, 0o755)
	}
	os.Chown(tmp, atoi(u.Uid), atoi(u.Gid))
	argv := []string{"runuser", "-u", u.Username, "--", "env", "-i", "PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp,
		"HOME=" + tmp, childEnv + "=1", layoutEnv + "=" + sharedLayout(t)}
	if testimage.InCI() {
		argv = append(argv, "CI=true")
	}
	argv = append(argv, wrap...)
	argv = append(argv, bin, "-test.run", pattern, "-test.v", "-test.count=1")
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// wantPassed checks that each test of names passed in a child's output.
func wantPassed(t *testing.T, out string, names ...string) {
	t.Helper()
	for _, n := range names {
		if !strings.Contains(out, "--- PASS: "+n+" ") {
			t.Errorf("rootless %s did not pass:\n%s", n, out)
		}
	}
}

func hostPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtimeArch()} }
