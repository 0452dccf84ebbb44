package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sandbox's processes are drydock itself, started again from a sealed
// in-memory copy of its executable (so no process of the sandbox can reach
// the binary on the host through /proc/PID/exe and rewrite it, as
// CVE-2019-5736 did to runc), named initArg0 and told their stage by
// stageEnv. Init dispatches them; the main function of every program that
// uses the sandbox (cmd/drydock, and the TestMain of packages whose tests
// run it) calls Init first.
const (
	initArg0 = "drydock-sandbox"
	stageEnv = "DRYDOCK_SANDBOX_STAGE"
)

// Stages. A process only gets capabilities in its user namespace when it
// is executed as root there, so the ids must be mapped before drydock
// runs in it: as root, Go maps them before executing the child (stage2
// at once); unprivileged, newuidmap and newgidmap map them from outside
// while the child waits — a shell reading one line from the control
// descriptor, then executing stage2 (or, without a shell, drydock's own
// stage1 doing the same).
const (
	stage1 = "stage1"
	stage2 = "stage2"
)

// waitScript is the shell stage1: it reads the parent's "mapped" line
// (byte by byte, as shells read pipes: what follows stays for stage2) and
// executes the sealed copy as stage2.
var waitScript = fmt.Sprintf(`IFS= read -r mapped <&%d && exec /proc/self/fd/%d %s`, fdControl, fdExe, initArg0)

// Descriptors the sandbox process receives.
const (
	fdControl = 3 // parent -> sandbox: requests, one JSON object a line
	fdReply   = 4 // sandbox -> parent: replies, one JSON object a line
	fdData    = 5 // bulk data: a tar stream in (extract, changes) or out (diff)
	fdExe     = 6 // the sealed copy of drydock's executable
)

// namespaces are the ones every sandbox process gets.
const namespaces = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
	syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS

var (
	exeOnce sync.Once
	exeFile *os.File
	exeErr  error
)

// sealedExecutable returns a sealed memfd holding a copy of the running
// executable, made once per process.
func sealedExecutable() (*os.File, error) {
	exeOnce.Do(func() {
		src, err := os.Open("/proc/self/exe")
		if err != nil {
			exeErr = fmt.Errorf("sandbox: reading drydock's executable: %w", err)
			return
		}
		defer src.Close()
		fd, err := unix.MemfdCreate("drydock-sandbox", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			exeErr = fmt.Errorf("sandbox: memfd_create: %w", err)
			return
		}
		f := os.NewFile(uintptr(fd), "drydock-sandbox")
		if err := copyExecutable(f, src); err != nil {
			f.Close()
			exeErr = fmt.Errorf("sandbox: copying drydock's executable: %w", err)
			return
		}
		seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
		if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
			f.Close()
			exeErr = fmt.Errorf("sandbox: sealing the executable's copy: %w", err)
			return
		}
		exeFile = f
	})
	return exeFile, exeErr
}

// copyExecutable copies src into the memfd dst in the kernel (sendfile:
// the executable is 130 MB, and a copy through user space cost twice the
// CPU), falling back to a plain copy where sendfile refuses.
func copyExecutable(dst, src *os.File) error {
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	left := fi.Size()
	for left > 0 {
		n, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), nil, int(min(left, 1<<30)))
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil || n == 0 {
			if left == fi.Size() {
				_, err = io.Copy(dst, src) // nothing copied yet: the slow way
				return err
			}
			return fmt.Errorf("sendfile: %d bytes left: %v", left, err)
		}
		left -= int64(n)
	}
	return nil
}

// proc is a running sandbox process and its channels.
type proc struct {
	cmd    *exec.Cmd
	ctl    *os.File // write requests
	reply  *bufio.Reader
	rfile  *os.File
	data   *os.File // our end of the data pipe (nil when unused)
	stderr *limitedBuffer
}

// dataDir says which way the data pipe goes.
type dataDir int

const (
	noData  dataDir = iota
	dataIn          // we write, the sandbox reads
	dataOut         // the sandbox writes, we read
)

// start starts a sandbox process in new namespaces with ids mapped by m,
// sends it cfg, and returns it.
func start(m *idMap, cfg config, dir dataDir) (*proc, error) {
	p, err := spawn(m, dir)
	if err != nil {
		return nil, err
	}
	if err := p.configure(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// configure sends a spawned process its configuration; on failure the
// process is gone.
func (p *proc) configure(cfg config) error {
	if err := p.send(cfg); err != nil {
		err = p.failure(err)
		p.close()
		return err
	}
	return nil
}

// spawn starts a sandbox process in new namespaces with ids mapped by m,
// waiting for its configuration: a process spawned ahead of need pays
// drydock's start-up (the runtime, package initialisation, the
// namespaces) while other work runs.
func spawn(m *idMap, dir dataDir) (_ *proc, err error) {
	exe, err := sealedExecutable()
	if err != nil {
		return nil, err
	}
	var files []*os.File // to close here once the child has them
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	files = append(files, ctlR)
	repR, repW, err := os.Pipe()
	if err != nil {
		ctlW.Close()
		return nil, err
	}
	files = append(files, repW)
	p := &proc{ctl: ctlW, rfile: repR, reply: bufio.NewReaderSize(repR, 64<<10), stderr: &limitedBuffer{max: 64 << 10}}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	childData := devNull()
	switch dir {
	case dataIn:
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		childData, p.data = r, w
	case dataOut:
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		childData, p.data = w, r
	}
	if childData != nil {
		files = append(files, childData)
	}
	cmd := &exec.Cmd{
		Path:       fmt.Sprintf("/proc/self/fd/%d", fdExe),
		Args:       []string{initArg0},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOTRACEBACK=none", stageEnv + "=" + stage2},
		ExtraFiles: []*os.File{ctlR, repW, childData, exe},
		Stderr:     p.stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: namespaces,
			Setsid:     true,
		},
	}
	switch sh := shell(); {
	case !m.Rootless:
		for _, r := range m.UIDs {
			cmd.SysProcAttr.UidMappings = append(cmd.SysProcAttr.UidMappings, syscall.SysProcIDMap{ContainerID: int(r.Inside), HostID: int(r.Outside), Size: int(r.Count)})
		}
		for _, r := range m.GIDs {
			cmd.SysProcAttr.GidMappings = append(cmd.SysProcAttr.GidMappings, syscall.SysProcIDMap{ContainerID: int(r.Inside), HostID: int(r.Outside), Size: int(r.Count)})
		}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
	case sh != "":
		cmd.Path, cmd.Args = sh, []string{"sh", "-c", waitScript}
	default:
		cmd.Env[len(cmd.Env)-1] = stageEnv + "=" + stage1
	}
	if err := cmd.Start(); err != nil {
		return nil, startError(err)
	}
	p.cmd = cmd
	if m.Rootless {
		if err := m.writeMaps(cmd.Process.Pid); err != nil {
			return nil, err
		}
		if err := p.send(mapped{Mapped: true}); err != nil {
			return nil, p.failure(err)
		}
	}
	return p, nil
}

// shell is the host's /bin/sh, "" when there is none.
func shell() string {
	for _, p := range []string{"/bin/sh", "/usr/bin/sh"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// devNull is an open /dev/null, the data descriptor of processes that use
// none.
func devNull() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil
	}
	return f
}

// startError explains a failure to create the namespaces.
func startError(err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return unavailable("creating a user namespace was refused (%v): a seccomp filter, an AppArmor profile (kernel.apparmor_restrict_unprivileged_userns) or a container runtime forbids it; run drydock where user namespaces are allowed", err)
	case errors.Is(err, syscall.ENOSPC):
		return unavailable("creating a user namespace failed (%v): the limit user.max_user_namespaces is reached or 0; raise it, as root: sysctl -w user.max_user_namespaces=15000", err)
	case errors.Is(err, syscall.EINVAL):
		return unavailable("creating the sandbox's namespaces failed (%v): this kernel lacks user, mount, PID or network namespaces", err)
	}
	return fmt.Errorf("sandbox: starting: %w", err)
}

type mapped struct {
	Mapped bool `json:"mapped"`
}

func (p *proc) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.ctl.Write(append(b, '\n'))
	return err
}

// maxReply bounds one reply line (outputs are bounded below it).
const maxReply = 64 << 20

// recv reads the next reply into v; a reply carrying an error is returned
// as that error.
func (p *proc) recv(v *reply) error {
	line, err := readLine(p.reply, maxReply)
	if err != nil {
		return p.failure(err)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("sandbox: bad reply: %w", err)
	}
	if v.Error != "" {
		switch {
		case v.Unavailable:
			return &UnavailableError{Reason: v.Error}
		case v.NoOverlay:
			return &noOverlayError{v.Error}
		}
		return errors.New("sandbox: " + v.Error)
	}
	return nil
}

func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("sandbox: reply longer than %d bytes", max)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// failure explains an error talking to the process: its exit and what it
// wrote on stderr.
func (p *proc) failure(err error) error {
	if p.cmd == nil {
		return err
	}
	p.ctl.Close()
	werr := p.cmd.Wait()
	p.cmd = nil
	msg := p.stderr.String()
	if msg != "" {
		return fmt.Errorf("sandbox process failed (%v): %s", werr, msg)
	}
	if werr != nil {
		return fmt.Errorf("sandbox process failed: %w", werr)
	}
	return fmt.Errorf("sandbox process: %w", err)
}

// wait closes the control channel and waits for the process to exit.
func (p *proc) wait() error {
	p.ctl.Close()
	if p.cmd == nil {
		return nil
	}
	err := p.cmd.Wait()
	p.cmd = nil
	if err != nil {
		return fmt.Errorf("sandbox process: %v: %s", err, p.stderr.String())
	}
	return nil
}

// close kills the process if it still runs and releases the channels.
func (p *proc) close() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
	p.ctl.Close()
	p.rfile.Close()
	if p.data != nil {
		p.data.Close()
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// noOverlayError is a session that found overlayfs unusable.
type noOverlayError struct{ why string }

func (e *noOverlayError) Error() string { return "sandbox: " + e.why }
