package sandbox

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSandboxEscapeIPC completes TestSandboxEscape with the host's
// channels that are not files, addresses or process ids (issue #19): the
// host's System V shared memory (the IPC namespace), an abstract unix
// socket (bound to the network namespace, not to a path, so the file
// checks do not cover it), and writing (not only reading) a host
// directory every user can write. As there, each probe first runs on the
// host as a control, so a probe that cannot see what it looks for fails
// the test instead of passing it.
func TestSandboxEscapeIPC(t *testing.T) {
	s := newSandbox(t)
	img := bookworm(t)

	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	// A System V key: positive, as /proc/sysvipc/shm prints it.
	key := int(binary.BigEndian.Uint32(rnd[:4])&0x3fffffff) + 1
	shm, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o666)
	if err != nil {
		t.Fatalf("host shared memory segment: %v", err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(shm, unix.IPC_RMID, nil) })

	abstract := "drydock-escape-" + hex.EncodeToString(rnd[4:])
	ln, err := net.Listen("unix", "@"+abstract)
	if err != nil {
		t.Fatalf("host abstract socket: %v", err)
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

	dir, err := os.MkdirTemp("", "drydock-escape-ipc-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(dir, "planted")
	script := filepath.Join(dir, "probe.sh")
	if err := os.WriteFile(script, []byte(escapeIPCProbe), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{fmt.Sprint(key), abstract, planted}

	if os.Geteuid() == 0 {
		out, err := exec.Command("sh", append([]string{script}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("control run: %v\n%s", err, out)
		}
		for _, want := range []string{"SHM=reachable", "ABSTRACT=reachable", "HOSTWRITE=done"} {
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("control run on the host lacks %s: the probe cannot see what it looks for:\n%s", want, out)
			}
		}
		<-accepted
		if err := os.Remove(planted); err != nil {
			t.Fatalf("control run wrote no %s: %v", planted, err)
		}
	}

	tree, err := s.Open(t.Context(), img, newChangeset(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := tree.Stage("probe-ipc.sh", []byte(escapeIPCProbe)); err != nil {
		t.Fatal(err)
	}
	out, err := tree.Run(t.Context(), nil, append([]string{"sh", "/run/drydock/probe-ipc.sh"}, args...)...)
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	t.Logf("probe in the sandbox:\n%s", out)
	for _, want := range []string{"SHM=blocked", "ABSTRACT=blocked", "HOSTWRITE=blocked"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("sandbox probe lacks %q", want)
		}
	}
	select {
	case <-accepted:
		t.Error("the sandbox connected to the host's abstract unix socket")
	default:
	}
	if _, err := os.Lstat(planted); err == nil {
		t.Errorf("the sandbox wrote %s on the host", planted)
	}
}

// escapeIPCProbe reports, one line each, whether the host's System V
// shared memory segment (key $1), abstract unix socket ($2) and a host
// path in a world-writable directory ($3) are reachable.
const escapeIPCProbe = `key=$1; abstract=$2; planted=$3
if awk -v k="$key" 'NR > 1 && $1 == k { f = 1 } END { exit !f }' /proc/sysvipc/shm 2>/dev/null; then echo SHM=reachable; else echo SHM=blocked; fi
perl -MSocket -e 'socket(S, AF_UNIX, SOCK_STREAM, 0) or die; print(connect(S, pack_sockaddr_un("\0" . $ARGV[0])) ? "ABSTRACT=reachable\n" : "ABSTRACT=blocked\n")' "$abstract"
if (echo planted > "$planted") 2>/dev/null; then echo HOSTWRITE=done; else echo HOSTWRITE=blocked; fi
`

// TestSandboxEscapeIPCRootless runs TestSandboxEscapeIPC again as an
// unprivileged user with subordinate ranges.
func TestSandboxEscapeIPCRootless(t *testing.T) {
	if inChild() {
		t.Skip("already rootless")
	}
	sharedLayout(t)
	u := testUser(t, true)
	out, err := runChild(t, u, "^TestSandboxEscapeIPC$")
	if err != nil {
		t.Fatalf("rootless run: %v\n%s", err, out)
	}
	wantPassed(t, out, "TestSandboxEscapeIPC")
	if !strings.Contains(out, "sandbox: rootless=true") {
		t.Errorf("the child did not run rootless:\n%s", out)
	}
}
