package sandbox

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Bounds on one command.
const maxOutput = 1 << 20 // bytes of output kept

// hostDevices are the only host devices a sandbox sees (bound on
// files of its own /dev, a tmpfs).
var hostDevices = []string{"null", "zero", "full", "random", "urandom"}

// session sets up the image's root (overlayfs over the cached tree, or a
// copy of it), applies the changes streamed on the data descriptor,
// records the writable tree, then pivots into the root — from then on the
// host's files are out of reach — and runs commands until told to exit.
func (c *child) session(cfg config) int {
	if err := private(); err != nil {
		return c.fail(err)
	}
	man, err := readManifest(cfg.Manifest)
	if err != nil {
		return c.fail(err)
	}
	// The cached tree is checked while the changes are applied; nothing
	// runs before both are done.
	verified := make(chan error, 1)
	if cfg.Overlay {
		go func() { verified <- verifyTree(cfg.Lower, man) }()
	} else if err := verifyTree(cfg.Lower, man); err != nil {
		return c.fail(err)
	} else {
		verified <- nil
	}
	writable := cfg.Root
	if cfg.Overlay {
		if why := overlayWorks(cfg.Dir); why != "" {
			_ = c.send(reply{Error: "overlayfs does not work in the sandbox's namespaces here (" + why + ")", NoOverlay: true})
			return 1
		}
		if err := unix.Mount("overlay", cfg.Root, "overlay", 0, overlayOptions(cfg.Lower, cfg.Upper, cfg.Work)); err != nil {
			return c.fail(fmt.Errorf("mounting the image: %w", err))
		}
		writable = cfg.Upper
	} else {
		if err := copyTree(cfg.Lower, cfg.Root); err != nil {
			return c.fail(fmt.Errorf("copying the image: %w", err))
		}
		if err := unix.Mount(cfg.Root, cfg.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return c.fail(fmt.Errorf("mounting the image: %w", err))
		}
	}
	x := newExtractor(cfg.Root, cfg.MaxBytes)
	if err := x.run(tar.NewReader(bufio.NewReaderSize(c.data, pipeBuffer))); err != nil {
		return c.fail(fmt.Errorf("applying the changes: %w", err))
	}
	_, _ = io.Copy(io.Discard, c.data)
	c.data.Close()
	snap := map[string]snapEntry{}
	err = walkTree(writable, ignored, func(name, p string, fi fs.FileInfo) error {
		e, err := statEntry(p, fi)
		if err != nil {
			return err
		}
		if s, ok := x.sums[name]; ok {
			e.SHA256 = s
		} else if m, ok := man[name]; ok && fi.Mode().IsRegular() && m.Size == e.Size && m.MtimeNs == e.MtimeNs && m.Mode == e.Mode {
			e.SHA256 = m.SHA256
		}
		snap[name] = e
		return nil
	})
	if err != nil {
		return c.fail(fmt.Errorf("recording the tree: %w", err))
	}
	if err := <-verified; err != nil {
		return c.fail(err)
	}
	if err := enter(cfg.Root); err != nil {
		return c.fail(err)
	}
	if err := c.send(reply{Snapshot: snap}); err != nil {
		return 3
	}
	for {
		line, err := readLine(c.ctl, maxReply)
		if err != nil {
			return 0 // the parent is gone: so is everything here
		}
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			return c.fail(fmt.Errorf("bad request: %w", err))
		}
		var r reply
		switch req.Op {
		case "exit":
			return 0
		case "run":
			r = runCommand(req)
		case "stage":
			if err := stage(req.Name, req.Data); err != nil {
				r.Error = err.Error()
			}
		default:
			r.Error = fmt.Sprintf("unknown request %q", req.Op)
		}
		if err := c.send(r); err != nil {
			return 3
		}
	}
}

// enter mounts /proc and a minimal /dev in root, then makes root the root
// and drops every other mount: the host's files are gone.
func enter(root string) error {
	for _, d := range []string{"proc", "dev"} {
		p := filepath.Join(root, d)
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			os.RemoveAll(p)
			if err := os.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("preparing /%s: %w", d, err)
			}
		}
	}
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	dev := filepath.Join(root, "dev")
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=1m"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range hostDevices {
		p := filepath.Join(dev, d)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	if err := os.Mkdir(filepath.Join(dev, "shm"), 0o1777); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte("drydock-sandbox")); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	return unix.Chdir("/")
}

// stage writes data to /run/drydock/name.
func stage(name string, data []byte) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("stage %q: not a plain file name", name)
	}
	if err := os.MkdirAll("/run/drydock", 0o755); err != nil {
		return err
	}
	return os.WriteFile("/run/drydock/"+name, data, 0o755)
}

// scriptPath is the PATH commands run with.
const scriptPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runCommand runs one command as root of the sandbox with a minimal
// environment plus req.Env, and kills whatever it left running.
func runCommand(req request) reply {
	if len(req.Argv) == 0 {
		return reply{Error: "run: no command"}
	}
	bin := req.Argv[0]
	if !strings.Contains(bin, "/") {
		for _, dir := range strings.Split(scriptPath, ":") {
			if fi, err := os.Stat(path.Join(dir, bin)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				bin = path.Join(dir, bin)
				break
			}
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return reply{Error: err.Error()}
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return reply{Error: err.Error()}
	}
	cmd := &exec.Cmd{Path: bin, Args: req.Argv, Dir: "/", Stdin: null, Stdout: w, Stderr: w,
		Env: append([]string{"PATH=" + scriptPath, "LC_ALL=C", "HOME=/root", "TERM=dumb"}, req.Env...)}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return reply{Output: []byte(err.Error()), Exit: 127}
	}
	out := make(chan []byte)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, io.LimitReader(r, maxOutput))
		_, _ = io.Copy(io.Discard, r)
		r.Close()
		out <- b.Bytes()
	}()
	st, werr := cmd.Process.Wait()
	// Daemons a script started, and anything else left: gone before the
	// next command starts. A killed process is not gone until it is
	// reaped, so wait (blocking) until this process has no child left;
	// kill again on each round for one forked while the signal was sent.
	for {
		_ = unix.Kill(-1, unix.SIGKILL)
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err == unix.EINTR {
			continue
		} else if err != nil {
			break // ECHILD: nothing left
		}
	}
	output := <-out
	if werr != nil {
		return reply{Output: output, Exit: 126, Error: werr.Error()}
	}
	code := st.ExitCode()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	return reply{Output: output, Exit: code}
}

// copyTree copies the tree src into dst (which exists) with owners,
// modes, times and hard links.
func copyTree(src, dst string) error {
	links := map[uint64]string{} // inode -> first copy
	return walkTree(src, nil, func(name, p string, fi fs.FileInfo) error {
		to := filepath.Join(dst, name)
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(to, 0o755); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(t, to); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				if first, ok := links[st.Ino]; ok {
					return os.Link(first, to)
				}
				links[st.Ino] = to
			}
			if err := copyFile(p, to); err != nil {
				return err
			}
		default:
			return nil
		}
		if st != nil {
			if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if err := os.Chmod(to, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
				return err
			}
		}
		if !fi.IsDir() {
			ts := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
			_ = unix.UtimesNanoAt(unix.AT_FDCWD, to, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
}

// copyFile copies a regular file, sharing its blocks (reflink) where the
// filesystem can.
func copyFile(from, to string) error {
	in, err := os.OpenFile(from, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// ignored are paths whose changes are not kept: runtime directories and
// logs (they hold timestamps and would make the layer irreproducible).
func ignored(name string) bool {
	for _, pre := range []string{"tmp", "var/tmp", "run", "var/run", "dev", "proc", "sys", "var/log"} {
		if name == pre || strings.HasPrefix(name, pre+"/") {
			return name != pre
		}
	}
	// Backups dpkg and debconf write on every run, and dpkg's journal.
	return (strings.HasSuffix(name, "-old") && (strings.HasPrefix(name, "var/cache/debconf/") || strings.HasPrefix(name, "var/lib/dpkg/"))) ||
		strings.HasPrefix(name, "var/lib/dpkg/updates/") || name == "var/lib/dpkg/lock" || name == "var/lib/dpkg/lock-frontend" || name == "var/lib/dpkg/triggers/Lock"
}
