package sandbox

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
)

func runtimeArch() string { return runtime.GOARCH }

var testMtime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func newChangeset(t *testing.T) *layer.Changeset {
	t.Helper()
	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func addBytes(t *testing.T, cs *layer.Changeset, p string, uid, gid int, data string) {
	t.Helper()
	if _, err := cs.AddBytes(p, 0o644, uid, gid, testMtime, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// entries lists a changeset as "kind path mode uid:gid" lines.
func entries(cs *layer.Changeset) []string {
	var out []string
	for _, e := range cs.Entries() {
		line := fmt.Sprintf("%s %s", e.Kind, e.Path)
		switch e.Kind {
		case layer.Whiteout:
		case layer.Symlink:
			line += fmt.Sprintf(" -> %s %d:%d", e.Linkname, e.UID, e.GID)
		default:
			line += fmt.Sprintf(" %o %d:%d", e.Mode.Perm(), e.UID, e.GID)
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// TestSandboxRoundTrip applies a changeset, runs a script that changes
// the image in every way a maintainer script can, and checks what Diff
// adds: owners as the image sees them (a chown to www-data is 33:33
// rootless too), whiteouts, a directory replaced whole, content rewritten
// unchanged left out, runtime files and logs left out.
func TestSandboxRoundTrip(t *testing.T) {
	roundTrip(t, newSandbox(t), roundTripWant)
}

// TestSandboxRoundTripCopy is the round trip with the tree copied for
// the run instead of mounted under overlayfs: the path a host without a
// usable overlayfs takes, which the overlay runs never reach.
func TestSandboxRoundTripCopy(t *testing.T) {
	s := newSandbox(t, WithoutOverlay())
	if s.overlay {
		t.Fatal("WithoutOverlay: the sandbox still mounts overlayfs")
	}
	// The copy cannot tell etc/skel replaced whole (rm -rf, mkdir, same
	// mode and owner) from etc/skel kept; the overlay run writes what it
	// would, so the layer does not depend on the host.
	roundTrip(t, s, roundTripWant)
}

// roundTripWant is the changeset TestSandboxRoundTrip's script leaves.
var roundTripWant = []string{
	"directory var/lib/drydock 750 33:33",
	"file etc/drydock-cs 644 0:0",
	"file etc/drydock-new 640 33:33",
	"file etc/fstab 600 0:0",
	"file etc/motd 644 0:0",
	"file etc/skel/only 644 0:0",
	"file var/lib/drydock/owned 644 33:33",
	"symlink etc/drydock-link -> /etc/motd 0:0",
	"whiteout etc/issue",
	"whiteout etc/issue.net",
	"whiteout etc/skel/.bash_logout",
	"whiteout etc/skel/.bashrc",
}

func roundTrip(t *testing.T, s *Sandbox, want []string) {
	t.Helper()
	img := bookworm(t)
	cs := newChangeset(t)
	addBytes(t, cs, "etc/drydock-cs", 0, 0, "from the changeset\n")
	addBytes(t, cs, "etc/drydock-cs-removed", 0, 0, "removed by the script\n")
	if err := cs.AddDir("var/lib/drydock", 0o750, 33, 33, testMtime); err != nil {
		t.Fatal(err)
	}
	addBytes(t, cs, "var/lib/drydock/owned", 33, 33, "www-data's\n")
	if err := cs.AddWhiteout("etc/issue.net", testMtime); err != nil {
		t.Fatal(err)
	}
	tree, err := s.Open(t.Context(), img, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := tree.Stage("script", []byte(roundTripScript)); err != nil {
		t.Fatal(err)
	}
	out, err := tree.Run(t.Context(), []string{"DRYDOCK_TEST=1"}, "/bin/sh", "/run/drydock/script")
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "env DRYDOCK_TEST=1 uid 0") {
		t.Errorf("script output: %s", out)
	}
	// A failing command reports its status and output.
	if out, err := tree.Run(t.Context(), nil, "sh", "-c", "echo failing; exit 3"); err == nil || !strings.Contains(err.Error(), "exit status 3") || string(out) != "failing\n" {
		t.Errorf("failing command: %q, %v", out, err)
	}
	if err := tree.Diff(cs, testMtime); err != nil {
		t.Fatal(err)
	}
	got := entries(cs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changeset after the script:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e := cs.Get("etc/motd"); e != nil {
		rc, _ := cs.Open(e)
		data, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.HasSuffix(string(data), "changed by the script\n") {
			t.Errorf("etc/motd: %q", data)
		}
	}
	for _, e := range cs.Entries() {
		if e.Kind != layer.Whiteout && !e.ModTime.Equal(testMtime) {
			t.Errorf("%s: mtime %s, want %s", e.Path, e.ModTime, testMtime)
		}
	}
	if err := tree.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

const roundTripScript = `set -e
echo "env DRYDOCK_TEST=$DRYDOCK_TEST uid $(id -u)"
test "$(cat /etc/drydock-cs)" = "from the changeset"
test ! -e /etc/issue.net
test "$(stat -c %u:%g:%a /var/lib/drydock/owned)" = "33:33:644"
echo new > /etc/drydock-new
chown 33:33 /etc/drydock-new
chmod 640 /etc/drydock-new
echo "changed by the script" >> /etc/motd
cat /etc/debian_version > /tmp/v && cat /tmp/v > /etc/debian_version
rm /etc/issue /etc/drydock-cs-removed
cp -p /etc/skel/.profile /tmp/profile
rm -rf /etc/skel && mkdir /etc/skel && echo x > /etc/skel/only
cp -p /tmp/profile /etc/skel/.profile
ln -s /etc/motd /etc/drydock-link
chmod 600 /etc/fstab
echo log > /var/log/drydock.log
mkdir -p /var/tmp/x /run/y
sleep 60 >/dev/null 2>&1 &
`

// TestSandboxEscape: a script cannot reach the network, the host's files,
// the host's processes or devices, nor rewrite drydock's executable
// (issue #19). Every probe runs first on the host as a control (as root;
// the probes must see what they look for), then in the sandbox.
func TestSandboxEscape(t *testing.T) {
	s := newSandbox(t)
	img := bookworm(t)

	// Host fixtures: a file every user can read, a loopback listener, a
	// process.
	dir, err := os.MkdirTemp("", "drydock-escape-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	marker := filepath.Join(dir, "host-secret")
	if err := os.WriteFile(marker, []byte("drydock-host-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	sleeper := exec.Command("sleep", "301.25") // its command line is what the probe looks for
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	hostPID := fmt.Sprint(sleeper.Process.Pid)
	script := filepath.Join(dir, "probe.sh")
	if err := os.WriteFile(script, []byte(escapeProbe), 0o755); err != nil {
		t.Fatal(err)
	}

	if os.Geteuid() == 0 {
		out, err := exec.Command("sh", script, marker, port, hostPID).CombinedOutput()
		if err != nil {
			t.Fatalf("control run: %v\n%s", err, out)
		}
		for _, want := range []string{"FILE=reachable", "PROCROOT=reachable", "CHROOT=reachable", "PROC=reachable", "PROCLIST=reachable",
			"NET=reachable", "MKNOD=allowed", "BLOCKDEV=readable", "KMSG=readable"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("control run on the host lacks %s: the probe cannot see what it looks for:\n%s", want, out)
			}
		}
		<-accepted
	}

	cs := newChangeset(t)
	tree, err := s.Open(t.Context(), img, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	probe, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Stage("probe.sh", probe); err != nil {
		t.Fatal(err)
	}
	out, err := tree.Run(t.Context(), nil, "sh", "/run/drydock/probe.sh", marker, port, hostPID)
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	t.Logf("probe in the sandbox:\n%s", out)
	for _, want := range []string{"FILE=blocked", "PROCROOT=blocked", "CHROOT=blocked", "PROC=blocked", "PROCLIST=blocked",
		"NET=blocked", "NETIF=lo", "DEVS=fd full null random shm stderr stdin stdout urandom zero", "MKNOD=blocked",
		"BLOCKDEV=blocked", "KMSG=blocked", "KCORE=blocked", "EXE=blocked", "EXELINK=memfd", "SYS=absent", "HOSTNAME=drydock-sandbox"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("sandbox probe lacks %q", want)
		}
	}
	select {
	case <-accepted:
		t.Error("the sandbox connected to the host's loopback listener")
	default:
	}
	// The sleeper still runs: the sandbox could not signal it. (A killed
	// child stays a zombie that answers signal 0, so ask wait4 whether it
	// has exited, without reaping a running one.)
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(sleeper.Process.Pid, &ws, syscall.WNOHANG, nil); err != nil || pid != 0 {
		t.Errorf("the host process %s did not survive the probe: wait4 %d, %v, status %v", hostPID, pid, err, ws)
	}
}

// escapeProbe reports, one line each, whether the host is reachable. Its
// arguments: a host file, a host loopback port, a host process id.
const escapeProbe = `marker=$1; port=$2; hostpid=$3
if grep -q drydock-host-secret "$marker" 2>/dev/null; then echo FILE=reachable; else echo FILE=blocked; fi
found=blocked
for p in /proc/[0-9]*; do [ -e "$p/root$marker" ] && found=reachable; [ -e "$p/cwd$marker" ] && found=reachable; done
echo PROCROOT=$found
if perl -e 'mkdir "/tmp/esc"; chroot("/tmp/esc") or exit 2; chdir("..") for 1..64; chroot(".") or exit 2; open(F, "<", $ARGV[0]) or exit 1; exit 0' "$marker" 2>/dev/null; then echo CHROOT=reachable; else echo CHROOT=blocked; fi
if kill -0 "$hostpid" 2>/dev/null; then echo PROC=reachable; else echo PROC=blocked; fi
if grep -qs 301.25 /proc/[0-9]*/cmdline; then echo PROCLIST=reachable; else echo PROCLIST=blocked; fi
perl -MIO::Socket::INET -e 'print(IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]", Timeout => 3) ? "NET=reachable\n" : "NET=blocked\n")' "$port"
echo NETIF=$(awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' /proc/net/dev | sort | tr '\n' ' ' | sed 's/ $//')
echo DEVS=$(ls -A /dev | sort | tr '\n' ' ' | sed 's/ $//')
if mknod /tmp/drydock-sda b 8 0 2>/dev/null; then echo MKNOD=allowed; rm -f /tmp/drydock-sda; else echo MKNOD=blocked; fi
if head -c 1 /proc/kcore >/dev/null 2>&1; then echo KCORE=readable; else echo KCORE=blocked; fi
found=blocked
for dev in /dev/sda /dev/vda /dev/xvda /dev/nvme0n1 $(ls /sys/block 2>/dev/null | sed 's|^|/dev/|'); do
  if [ -b "$dev" ] && head -c 1 "$dev" >/dev/null 2>&1; then found=readable; fi
done
echo BLOCKDEV=$found
if timeout 2 dd if=/dev/kmsg of=/dev/null bs=8192 count=1 2>/dev/null; then echo KMSG=readable; else echo KMSG=blocked; fi
if [ -e /proc/1/exe ] && perl -e 'open(F, ">>", "/proc/1/exe") or exit 1' 2>/dev/null; then echo EXE=writable; else echo EXE=blocked; fi
case "$(readlink /proc/1/exe)" in /memfd:*) echo EXELINK=memfd;; *) echo "EXELINK=$(readlink /proc/1/exe)";; esac
if [ -e /sys/class ]; then echo SYS=present; else echo SYS=absent; fi
echo HOSTNAME=$(hostname)
`

// TestSandboxRootless runs the round trip, the escape probes and a Close
// without a diff again as an unprivileged user with subordinate ranges.
func TestSandboxRootless(t *testing.T) {
	if inChild() {
		t.Skip("already rootless")
	}
	sharedLayout(t)
	u := testUser(t, true)
	out, err := runChild(t, u, "^(TestSandboxRoundTrip|TestSandboxEscape|TestSandboxCloseRemovesLayer)$")
	if err != nil {
		t.Fatalf("rootless run: %v\n%s", err, out)
	}
	wantPassed(t, out, "TestSandboxRoundTrip", "TestSandboxEscape", "TestSandboxCloseRemovesLayer")
	if !strings.Contains(out, "sandbox: rootless=true") {
		t.Errorf("the child did not run rootless:\n%s", out)
	}
}

// TestSandboxRefusals: where the sandbox cannot run, Available names
// what to configure: a user without subordinate ranges, and user
// namespaces switched off (user.max_user_namespaces=0, set in a user
// namespace of the test's own so the host is untouched).
func TestSandboxRefusals(t *testing.T) {
	if inChild() {
		if os.Getenv("DRYDOCK_SANDBOX_TEST_REFUSAL") == "" {
			t.Skip("run by TestSandboxRefusals")
		}
		s, err := New("auto", WithCacheDir(t.TempDir(), 0))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Available(hostPlatform())
		fmt.Printf("REFUSAL: %v\n", err)
		return
	}
	sharedLayout(t)
	t.Run("no subordinate ids", func(t *testing.T) {
		u := testUser(t, false)
		out, _ := runChild(t, u, "^TestSandboxRefusals$", "env", "DRYDOCK_SANDBOX_TEST_REFUSAL=1")
		for _, want := range []string{"REFUSAL: no sandbox: user " + u.Username, "no subordinate uid range in /etc/subuid", "usermod --add-subuids 100000-165535 " + u.Username,
			"to /etc/subuid; the same for /etc/subgid)"} {
			if !strings.Contains(out, want) {
				t.Errorf("refusal lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("user namespaces off", func(t *testing.T) {
		u := testUser(t, true)
		out, _ := runChild(t, u, "^TestSandboxRefusals$", "env", "DRYDOCK_SANDBOX_TEST_REFUSAL=1",
			"unshare", "--user", "--map-root-user", "sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces; exec "$@"`, "sh")
		for _, want := range []string{"REFUSAL: no sandbox: user namespaces are disabled", "user.max_user_namespaces is 0", "sysctl -w user.max_user_namespaces="} {
			if !strings.Contains(out, want) {
				t.Errorf("refusal lacks %q:\n%s", want, out)
			}
		}
	})
}
