package sandbox

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// Init runs the sandbox's own processes: when the program was started as
// one of them, Init does that process's work and exits; otherwise it
// returns at once. Call it first in main (and in TestMain of packages
// whose tests run the sandbox).
func Init() {
	stage := os.Getenv(stageEnv)
	if stage == "" || !(os.Args[0] == initArg0 || (len(os.Args) > 1 && os.Args[1] == initArg0)) {
		return
	}
	switch stage {
	case stage1:
		os.Exit(runStage1())
	case stage2:
		os.Unsetenv(stageEnv)
		os.Exit(runStage2())
	}
	os.Exit(2)
}

// runStage1 waits until the parent has mapped the namespace's ids, then
// executes the sealed copy again: only a process executed as root of its
// user namespace holds capabilities there.
func runStage1() int {
	ctl := os.NewFile(fdControl, "control")
	var line []byte
	var b [1]byte
	for {
		n, err := ctl.Read(b[:]) // byte by byte: what follows is stage2's
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if line = append(line, b[0]); len(line) > 64 {
				return 3
			}
		}
		if err != nil {
			return 3
		}
	}
	var m mapped
	if json.Unmarshal(line, &m) != nil || !m.Mapped {
		return 3
	}
	os.Setenv(stageEnv, stage2)
	err := unix.Exec(fmt.Sprintf("/proc/self/fd/%d", fdExe), []string{initArg0}, os.Environ())
	fmt.Fprintf(os.Stderr, "re-executing in the user namespace: %v\n", err)
	return 4
}

// child is the sandbox side of the channels.
type child struct {
	ctl   *bufio.Reader
	reply *os.File
	data  *os.File
}

func (c *child) send(r reply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = c.reply.Write(append(b, '\n'))
	return err
}

func (c *child) fail(err error) int {
	var ue *UnavailableError
	r := reply{Error: err.Error(), Unavailable: errors.As(err, &ue)}
	var ce *corruptError
	if errors.As(err, &ce) {
		r.Error = "corrupt: " + ce.Error()
	}
	_ = c.send(r)
	return 1
}

func runStage2() int {
	c := &child{
		ctl:   bufio.NewReaderSize(os.NewFile(fdControl, "control"), 1<<20),
		reply: os.NewFile(fdReply, "reply"),
		data:  os.NewFile(fdData, "data"),
	}
	unix.Close(fdExe)
	if os.Getuid() != 0 {
		return c.fail(unavailable("the sandbox's user namespace does not map uid 0 to this process (uid %d)", os.Getuid()))
	}
	// The parent's supplementary groups mean nothing here.
	if err := syscall.Setgroups([]int{}); err != nil {
		return c.fail(fmt.Errorf("setgroups: %w", err))
	}
	line, err := readLine(c.ctl, maxReply)
	if err != nil {
		return 3
	}
	var cfg config
	if err := json.Unmarshal(line, &cfg); err != nil {
		return c.fail(fmt.Errorf("bad configuration: %w", err))
	}
	switch cfg.Op {
	case opExtract:
		return c.extract(cfg)
	case opSession:
		return c.session(cfg)
	case opDiff:
		return c.diff(cfg)
	case opRemove:
		return c.removeDirs(cfg.Dirs)
	}
	return c.fail(fmt.Errorf("unknown operation %q", cfg.Op))
}

// private stops mounts made here from propagating to the host.
func private() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return unavailable("making the sandbox's mounts private failed (%v): the user namespace does not own its mount namespace", err)
	}
	return nil
}

// overlayOptions are overlayfs's mount options inside a user namespace:
// trusted.* attributes are out of reach there, so whiteouts of
// directories (opaque) use user.overlay.* attributes.
func overlayOptions(lower, upper, work string) string {
	return "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",userxattr"
}

// overlayWorks tries overlayfs in dir (empty, removed after): a mount, a
// whiteout and an opaque directory (user extended attributes on the
// writable layer's filesystem). It returns why it does not work, "" when
// it does.
func overlayWorks(dir string) string {
	defer os.RemoveAll(dir)
	dirs := map[string]string{}
	for _, d := range []string{"lower", "upper", "work", "root"} {
		dirs[d] = filepath.Join(dir, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			return err.Error()
		}
	}
	for _, f := range []string{"a", "d/f"} {
		p := filepath.Join(dirs["lower"], f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err.Error()
		}
		if err := os.WriteFile(p, []byte("a"), 0o644); err != nil {
			return err.Error()
		}
	}
	if err := unix.Mount("overlay", dirs["root"], "overlay", 0, overlayOptions(dirs["lower"], dirs["upper"], dirs["work"])); err != nil {
		return "mount: " + err.Error()
	}
	defer unix.Unmount(dirs["root"], unix.MNT_DETACH)
	d := filepath.Join(dirs["root"], "d")
	if err := os.Remove(filepath.Join(dirs["root"], "a")); err != nil {
		return "whiteout: " + err.Error()
	}
	if err := os.RemoveAll(d); err != nil {
		return "opaque directory: " + err.Error()
	}
	if err := os.Mkdir(d, 0o755); err != nil {
		return "opaque directory: " + err.Error()
	}
	if v, err := xattr(filepath.Join(dirs["upper"], "d"), "user.overlay.opaque"); err != nil || v != "y" {
		return fmt.Sprintf("opaque directory not marked (%q, %v)", v, err)
	}
	return ""
}

func sendOr(c *child, r reply) int {
	if err := c.send(r); err != nil {
		return 3
	}
	return 0
}

// extract writes the image tree streamed on the data descriptor into
// cfg.Dir and its manifest into cfg.Manifest.
func (c *child) extract(cfg config) int {
	x := newExtractor(cfg.Dir, cfg.MaxBytes)
	if err := x.run(tar.NewReader(bufio.NewReaderSize(c.data, pipeBuffer))); err != nil {
		return c.fail(fmt.Errorf("extracting the image: %w", err))
	}
	_, _ = io.Copy(io.Discard, c.data)
	if err := writeManifest(cfg.Dir, cfg.Manifest, x.sums); err != nil {
		return c.fail(err)
	}
	return sendOr(c, reply{Bytes: x.written})
}

// removeDirs removes trees whose files belong to the namespace's ids.
func (c *child) removeDirs(dirs []string) int {
	for _, d := range dirs {
		if err := removeTree(d); err != nil {
			return c.fail(err)
		}
	}
	return sendOr(c, reply{})
}

// removeTree removes d, making its directories writable first.
func removeTree(d string) error {
	_ = filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(d)
}

// writeManifest records every path of the tree at dir, with the sums the
// extraction computed, in file.
func writeManifest(dir, file string, sums map[string]string) error {
	m := map[string]snapEntry{}
	err := walkTree(dir, nil, func(name, p string, fi fs.FileInfo) error {
		e, err := describe(p, fi, false)
		if err != nil {
			return err
		}
		e.Ino = 0
		e.SHA256 = sums[name]
		m[name] = e
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the tree: %w", err)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(m); err != nil {
		return err
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

// corruptError is a cached tree that does not match its manifest.
type corruptError struct{ what string }

func (e *corruptError) Error() string { return e.what }

// readManifest reads a tree's manifest.
func readManifest(file string) (map[string]snapEntry, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, &corruptError{"manifest: " + err.Error()}
	}
	var m map[string]snapEntry
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		return nil, &corruptError{"manifest: " + err.Error()}
	}
	return m, nil
}

// verifyTree checks the tree at dir against its manifest: the same paths
// with the same type, mode, owners, size, link target and file times.
func verifyTree(dir string, m map[string]snapEntry) error {
	seen := 0
	err := walkTree(dir, nil, func(name, p string, fi fs.FileInfo) error {
		want, ok := m[name]
		if !ok {
			return &corruptError{fmt.Sprintf("%s is not in the manifest", name)}
		}
		got, err := describe(p, fi, false)
		if err != nil {
			return err
		}
		if got.Mode != want.Mode || got.UID != want.UID || got.GID != want.GID || got.Size != want.Size ||
			got.Target != want.Target || got.MtimeNs != want.MtimeNs {
			return &corruptError{fmt.Sprintf("%s differs from the manifest", name)}
		}
		seen++
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(m) {
		missing := ""
		for name := range m {
			if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
				missing = name
				break
			}
		}
		return &corruptError{fmt.Sprintf("%d of the manifest's %d paths are missing (%s)", len(m)-seen, len(m), missing)}
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
