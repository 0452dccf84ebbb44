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
// CVE-2019-5736 did to runc), with argv[0] initArg0 and the stage as
// argv[1]. Init dispatches them; the main function of every program that
// uses the sandbox (cmd/drydock, and the TestMain of packages whose tests
// run it) calls Init first.
const initArg0 = "drydock-sandbox"

// Stages: stage1 runs in the new namespaces before its ids are mapped; it
// waits for the parent to map them and executes itself again as stage2,
// which then holds every capability in its user namespace.
const (
	stage1 = "stage1"
	stage2 = "stage2"
)

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
		if _, err := io.Copy(f, src); err != nil {
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
func start(m *idMap, cfg config, dir dataDir) (_ *proc, err error) {
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
		Args:       []string{initArg0, stage1},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOTRACEBACK=none"},
		ExtraFiles: []*os.File{ctlR, repW, childData, exe},
		Stderr:     p.stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: namespaces,
			Setsid:     true,
		},
	}
	if err := cmd.Start(); err != nil {
		return nil, startError(err)
	}
	p.cmd = cmd
	if err := m.writeMaps(cmd.Process.Pid); err != nil {
		return nil, err
	}
	if err := p.send(mapped{Mapped: true}); err != nil {
		return nil, p.failure(err)
	}
	if err := p.send(cfg); err != nil {
		return nil, p.failure(err)
	}
	return p, nil
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
		if v.Unavailable {
			return &UnavailableError{Reason: v.Error}
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
