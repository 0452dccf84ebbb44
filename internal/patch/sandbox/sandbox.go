// Package sandbox runs commands of an image (maintainer scripts) in an
// isolated copy of its root filesystem and turns what they change into
// layer entries.
//
// A Tree is the image's layers plus a changeset, extracted into a private
// directory. Run executes a command chrooted into it with util-linux's
// unshare: new mount, PID, network, IPC and UTS namespaces (no network),
// the tree as root. Run as root, drydock extracts files with their owners
// and the command runs as root inside the chroot; run as another user,
// a user namespace makes the invoking user root inside (files are then
// owned by that user, and a command that chowns to other users fails). Diff compares the tree with what was extracted and adds
// every change to the changeset, with a fixed modification time so the
// result is reproducible; runtime directories (tmp, run, dev, proc) and
// log files are not kept.
//
// Only images of the host's architecture can run: drydock never emulates.
package sandbox

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/layer"
)

// ErrUnavailable is wrapped when the host cannot provide a sandbox.
var ErrUnavailable = errors.New("no sandbox available")

// Sandbox opens trees to run an image's commands in (backend.Sandbox).
type Sandbox struct {
	mode backend.SandboxMode
	dir  string
}

// New returns a sandbox for mode; trees are extracted under dir ("": a
// tmpfs when one has room, else the temporary directory).
func New(mode backend.SandboxMode, dir string) *Sandbox { return &Sandbox{mode: mode, dir: dir} }

// Mode is the mode the sandbox was made for.
func (s *Sandbox) Mode() backend.SandboxMode { return s.mode }

// Available reports whether commands of an image of platform p can run
// here.
func (s *Sandbox) Available(p v1.Platform) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: sandboxes need Linux", ErrUnavailable)
	}
	if p.OS != "linux" || p.Architecture != runtime.GOARCH {
		return fmt.Errorf("%w: the image is %s, this machine %s/%s, and drydock does not emulate", ErrUnavailable, p.String(), runtime.GOOS, runtime.GOARCH)
	}
	return Available()
}

// Open extracts img with cs applied on top.
func (s *Sandbox) Open(ctx context.Context, img v1.Image, cs *layer.Changeset) (backend.Tree, error) {
	return Materialize(ctx, img, cs, s.dir)
}

// Stage writes data to run/drydock/name in the tree (not kept by Diff).
func (t *Tree) Stage(name string, data []byte) error {
	if strings.ContainsAny(name, "/\x00") || name == "" || name == "." || name == ".." {
		return fmt.Errorf("sandbox: stage %q: not a plain file name", name)
	}
	dir := filepath.Join(t.Dir, "run", "drydock")
	if fi, err := os.Lstat(filepath.Join(t.Dir, "run")); err == nil && !fi.IsDir() {
		return fmt.Errorf("sandbox: the image's /run is not a directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, name), data, 0o755)
}

// Available reports whether this host provides the sandbox's tools.
func Available() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: sandboxes need Linux", ErrUnavailable)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return fmt.Errorf("%w: unshare (util-linux) not found", ErrUnavailable)
	}
	return nil
}

// Tree is an extracted root filesystem.
type Tree struct {
	Dir   string
	sums  map[string][32]byte // content digests computed while extracting
	snap  map[string]snapEntry
	owner map[string][2]int // as recorded in the image, for non-root runs
}

type snapEntry struct {
	mode   fs.FileMode
	size   int64
	mtime  time.Time
	ino    uint64
	target string
	sum    [32]byte
}

// Materialize extracts img with cs applied on top into a new directory
// under tempDir ("": DefaultDir's choice).
func Materialize(ctx context.Context, img v1.Image, cs *layer.Changeset, tempDir string) (*Tree, error) {
	if tempDir == "" {
		var need int64
		if ls, err := img.Layers(); err == nil {
			for _, l := range ls {
				if n, err := l.Size(); err == nil {
					need += 4 * n // compressed size, a rough guess of the extracted size
				}
			}
		}
		tempDir = DefaultDir(os.TempDir(), need)
	}
	dir, err := os.MkdirTemp(tempDir, "sandbox-*")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	t := &Tree{Dir: dir, snap: map[string]snapEntry{}, owner: map[string][2]int{}, sums: map[string][32]byte{}}
	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()
	rc := mutate.Extract(img)
	err = t.extract(ctx, tar.NewReader(rc))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("sandbox: extract image: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(cs.Write(pw)) }()
	err = t.extract(ctx, tar.NewReader(pr))
	pr.Close()
	if err != nil {
		return nil, fmt.Errorf("sandbox: apply changes: %w", err)
	}
	if err := t.snapshot(); err != nil {
		return nil, err
	}
	ok = true
	return t, nil
}

// Close removes the tree.
func (t *Tree) Close() error {
	if t.Dir == "" {
		return nil
	}
	// Make everything writable so RemoveAll can descend.
	filepath.WalkDir(t.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	err := os.RemoveAll(t.Dir)
	t.Dir = ""
	return err
}

// within returns the host path of the image path name, refusing to leave
// the tree: every parent must be a real directory (no symlink is
// followed while extracting).
func (t *Tree) within(name string) (string, error) {
	name = path.Clean("/" + name)[1:]
	if name == "" {
		return t.Dir, nil
	}
	cur := t.Dir
	parts := strings.Split(name, "/")
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(cur, 0o755); err != nil {
				return "", err
			}
			continue
		}
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			// A lower layer's symlink (e.g. lib -> usr/lib) on the way:
			// the layers drydock writes never do this; refuse.
			return "", fmt.Errorf("%s: parent %s is not a directory", name, strings.TrimPrefix(cur, t.Dir))
		}
	}
	return filepath.Join(cur, parts[len(parts)-1]), nil
}

func (t *Tree) extract(ctx context.Context, tr *tar.Reader) error {
	euid := os.Geteuid()
	for n := 0; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)[1:]
		if name == "" {
			continue
		}
		dir, base := path.Split(name)
		if strings.HasPrefix(base, ".wh.") {
			// mutate.Extract has applied whiteouts of the image; ours come
			// from the changeset.
			target := path.Join(dir, strings.TrimPrefix(base, ".wh."))
			if p, err := t.within(target); err == nil {
				os.RemoveAll(p)
			}
			continue
		}
		p, err := t.within(name)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(p); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		mode := fs.FileMode(h.Mode & 0o777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(io.MultiWriter(f, h), tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			t.sums[name] = sum
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := t.within(path.Clean("/" + h.Linkname)[1:])
			if err != nil {
				return err
			}
			if err := os.Link(src, p); err != nil {
				return err
			}
			t.sums[name] = t.sums[path.Clean("/" + h.Linkname)[1:]]
			continue
		default:
			continue // devices, FIFOs: not needed to run scripts
		}
		t.owner[name] = [2]int{h.Uid, h.Gid}
		if euid == 0 {
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				return err
			}
		}
		if h.Typeflag != tar.TypeSymlink {
			if err := os.Chmod(p, mode|specialBits(h.Mode)); err != nil {
				return err
			}
		}
	}
}

func specialBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
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

func (t *Tree) walk(fn func(name string, fi fs.FileInfo) error) error {
	return filepath.Walk(t.Dir, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p, t.Dir), "/")
		if name == "" {
			return nil
		}
		if ignored(name) {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return fn(name, fi)
	})
}

func (t *Tree) entryOf(name string, fi fs.FileInfo) (snapEntry, error) {
	e := snapEntry{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.ino = st.Ino
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(filepath.Join(t.Dir, name))
		if err != nil {
			return e, err
		}
		e.target = target
	case fi.Mode().IsRegular():
		f, err := os.Open(filepath.Join(t.Dir, name))
		if err != nil {
			return e, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return e, err
		}
		copy(e.sum[:], h.Sum(nil))
	}
	return e, nil
}

func (t *Tree) snapshot() error {
	return t.walk(func(name string, fi fs.FileInfo) error {
		if sum, ok := t.sums[name]; ok && fi.Mode().IsRegular() {
			e := snapEntry{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime(), sum: sum}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				e.ino = st.Ino
			}
			t.snap[name] = e
			return nil
		}
		e, err := t.entryOf(name, fi)
		if err != nil {
			return err
		}
		t.snap[name] = e
		return nil
	})
}

// DefaultDir picks where to extract a tree of about need bytes: the
// shared-memory tmpfs when it has room (creating thousands of small files
// there is several times faster than on a disk), else dir.
func DefaultDir(dir string, need int64) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && int64(st.Bavail)*int64(st.Bsize) > 2*need {
		if f, err := os.MkdirTemp("/dev/shm", "drydock-probe-*"); err == nil {
			os.Remove(f)
			return "/dev/shm"
		}
	}
	return dir
}

// Run executes argv (inside the tree) with env in the sandbox and returns
// its combined output.
func (t *Tree) Run(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	args := []string{"--mount", "--pid", "--fork", "--net", "--ipc", "--uts", "--kill-child"}
	if os.Geteuid() != 0 {
		args = append(args, "--user", "--map-root-user")
	}
	args = append(args, "--root="+t.Dir, "--wd=/", "--")
	args = append(args, argv...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root"}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("sandbox: %s: %w", strings.Join(argv, " "), err)
	}
	return out, nil
}

// Diff adds to cs what commands changed in the tree since Materialize:
// new and modified files, directories, symlinks (with mtime), and
// whiteouts for removed paths.
func (t *Tree) Diff(cs *layer.Changeset, mtime time.Time) error {
	seen := map[string]bool{}
	err := t.walk(func(name string, fi fs.FileInfo) error {
		seen[name] = true
		old, had := t.snap[name]
		if had && old.mode == fi.Mode() && old.size == fi.Size() && old.mtime.Equal(fi.ModTime()) {
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Ino == old.ino {
				return nil
			}
		}
		e, err := t.entryOf(name, fi)
		if err != nil {
			return err
		}
		if had && old.mode == e.mode && old.sum == e.sum && old.target == e.target {
			return nil // rewritten with the same content
		}
		uid, gid := t.ownerOf(name, fi)
		mode := fi.Mode()
		switch {
		case mode.IsDir():
			return cs.AddDir(name, mode, uid, gid, mtime)
		case mode&fs.ModeSymlink != 0:
			return cs.AddSymlink(name, e.target, uid, gid, mtime)
		case mode.IsRegular():
			f, err := os.Open(filepath.Join(t.Dir, name))
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = cs.AddFile(name, mode, uid, gid, mtime, f, fi.Size())
			return err
		}
		return nil // sockets, FIFOs, devices created by scripts: not kept
	})
	if err != nil {
		return fmt.Errorf("sandbox: diff: %w", err)
	}
	var gone []string
	for name := range t.snap {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		if dir := path.Dir(name); dir != "." && slices.Contains(gone, dir) {
			continue // the parent's whiteout covers it
		}
		if e := cs.Get(name); e != nil && e.Kind != layer.Whiteout {
			cs.Remove(name)
		}
		if err := cs.AddWhiteout(name, mtime); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tree) ownerOf(name string, fi fs.FileInfo) (int, int) {
	if os.Geteuid() == 0 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			return int(st.Uid), int(st.Gid)
		}
	}
	if o, ok := t.owner[name]; ok {
		return o[0], o[1]
	}
	return 0, 0
}
