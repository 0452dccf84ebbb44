package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestWorkflowUnprivileged runs `drydock serve` as an unprivileged user
// (created here, with the subordinate ids useradd gives, removed at the
// end): the seed's workflow patches bookworm+nginx, whose tzdata and
// nginx-common debconf scripts must run, so they run in the patcher's
// rootless sandbox. The patch is complete, nothing fixable is left, and
// the ledger says which scripts ran in the sandbox.
func TestWorkflowUnprivileged(t *testing.T) {
	testenv.RequireRoot(t, "creating the unprivileged user")
	requireTool(t, "useradd", "userdel", "newuidmap", "newgidmap")
	ti := testimage.Require(t, testimage.BookwormNginx)
	u := newTestUser(t, true)
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)

	// Everything the server reads or writes is the user's: the binary
	// (readable by all), its data directory (the real-data vulnerability
	// DB), its home, temporary directory and cache.
	shared, err := os.MkdirTemp("", "drydock-e2e-wfuser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	bin := filepath.Join(shared, "drydock")
	if out, err := exec.Command("cp", drydockBin, bin).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	home := filepath.Join(shared, "home")
	data := filepath.Join(home, "data")
	for _, d := range []string{home, data, filepath.Join(home, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	realdb.Copy(t, vulndb.DefaultPath(data))
	policy := filepath.Join(home, "policy.yaml")
	cfg := filepath.Join(home, "drydock.yaml")
	for name, body := range map[string]string{
		policy: "version: v1\nmaxSeverity: HIGH\nfixableOnly: true\n",
		cfg:    "gate: {policy: " + policy + "}\n",
	} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", shared).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	chownTo(t, home, u)

	cmd := exec.Command(bin, serveArgs(data, "--config", cfg)...)
	cmd.Dir = home
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home,
		"TMPDIR=" + filepath.Join(home, "tmp"), "DRYDOCK_CACHE=" + filepath.Join(home, "cache"), anonymousAll}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	s := startServeCmd(t, cmd, data)
	srv := s.URL()

	// The server runs as the user, with no privilege left.
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
			want := u.Uid
			if f[0] == "Gid:" {
				want = u.Gid
			}
			if !slices.Equal(f[1:], []string{want, want, want, want}) {
				t.Fatalf("the server's %s, want %s everywhere", l, want)
			}
		}
		if len(f) == 2 && f[0] == "CapEff:" && f[1] != "0000000000000000" {
			t.Fatalf("the server has capabilities: %s", l)
		}
	}

	mustDrydock(t, nil, "import", ti.OCIReference(), "--as", "nginx:1.27.1", "--server", srv)
	cp := writeFile(t, "continuouspatching.json", seedConfig)
	id := runID(t, mustDrydock(t, nil, "workflow", "create", "--config", cp, "--schedule", "1d", "--run-immediately", "--server", srv).Stdout)
	r := mustDrydock(t, nil, "workflow", "show-run", id, "--follow", "--server", srv)
	d := runDetail(t, srv, id)
	p := d.Run.ImageTask(workflow.TaskPatch, "nginx:1.27.1")
	if d.Run.State != workflow.StateSucceeded || p == nil || p.State != workflow.StateSucceeded || !p.Patch.TagWritten {
		t.Fatalf("run %s: %s (%s)\n%s\n%s", id, d.Run.State, d.Run.Error, r.Stdout, s.Logs())
	}
	var tz, nginx bool
	for _, sb := range p.Patch.Sandboxed {
		tz = tz || strings.Contains(sb, "tzdata ")
		nginx = nginx || strings.Contains(sb, "nginx-common ")
	}
	t.Logf("ran in the sandbox: %q", p.Patch.Sandboxed)
	if !tz || !nginx || !strings.Contains(r.Stdout, "ran in the sandbox: tzdata") {
		t.Errorf("the scripts of tzdata and nginx-common did not run in the sandbox: %q\n%s", p.Patch.Sandboxed, r.Stdout)
	}
	if tags := imageTags(tagsOf(t, s, "quarantine/nginx")); !slices.Equal(tags, []string{"1.27.1", "1.27.1-1"}) {
		t.Fatalf("tags after the run: %v", tags)
	}
	if got := digestOf(t, s, "quarantine/nginx:1.27.1-1"); got.String() != p.Patch.Digest {
		t.Errorf("quarantine/nginx:1.27.1-1 is %s; the ledger says %s", got, p.Patch.Digest)
	}
	img, err := remote.Image(ref(t, s.Addr+"/quarantine/nginx:1.27.1-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("quarantine/nginx:1.27.1-1: %v", err)
	}
	pending, err := ti.PendingUpdatesIn(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range pending {
		if strings.HasSuffix(u.Suite, "-security") {
			t.Errorf("still pending from %s in 1.27.1-1: %s %s -> %s", u.Suite, u.Name, u.Version, u.NewVersion)
		}
	}
}
