// Package sandbox runs commands of an image (maintainer scripts) isolated
// from the host, and turns what they change into layer entries.
//
// Every sandbox process is drydock itself, started from a sealed
// in-memory copy of its executable in new user, mount, PID, network, IPC
// and UTS namespaces. As root, the user namespace maps every id to itself;
// unprivileged, it maps the user to root and the user's subordinate ranges
// (/etc/subuid, /etc/subgid, through newuidmap and newgidmap) from id 1,
// so scripts that give files to system users work either way, and the
// layer records the owners the image sees.
//
// The image's tree is extracted once per image digest and id map into a
// cache (with a manifest checked at every use: a corrupt tree is rebuilt).
// A Tree mounts it read-only under overlayfs, with a fresh writable layer
// (or, where overlayfs cannot mount in a user namespace, works on a
// reflink or plain copy of it), applies the patch's changeset, records
// the writable layer, mounts /proc and a /dev of five harmless devices,
// pivots into the image's root and detaches the host's: from then on no
// command sees a host file, and the network namespace has no interface
// but a down loopback. Commands run as root of the namespace, one at a
// time; whatever a command leaves running is killed when it ends. Diff
// then reads the writable layer (in the namespace again, as the image's
// ids) and adds what changed to the changeset, with a fixed modification
// time so the result is reproducible; runtime directories (tmp, run, dev,
// proc) and logs are not kept.
//
// Only images of the host's architecture run: drydock never emulates.
// Where the sandbox cannot run, Available says exactly what to configure.
package sandbox

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/cache"
	"github.com/drydock-project/drydock/internal/patch/layer"
)

// Defaults.
const (
	// DefaultTreeCacheSize bounds the cache of extracted image trees.
	DefaultTreeCacheSize = 4 << 30
	// treeFormat names the layout of cached trees in their keys.
	treeFormat = "tree-v2"
)

// Sandbox opens trees to run an image's commands in (backend.Sandbox).
type Sandbox struct {
	mode      backend.SandboxMode
	cacheDir  string
	maxCache  int64
	workDir   string
	log       *slog.Logger
	noOverlay bool

	once    sync.Once
	idmap   *idMap
	overlay bool
	err     error // why the sandbox is unavailable
	trees   *cache.Dir
}

// Option configures New.
type Option func(*Sandbox) error

// WithCacheDir keeps extracted image trees under dir, at most max bytes
// (0: DefaultTreeCacheSize).
func WithCacheDir(dir string, max int64) Option {
	return func(s *Sandbox) error {
		if dir == "" || max < 0 {
			return fmt.Errorf("sandbox.WithCacheDir(%q, %d): want a directory and a size >= 0", dir, max)
		}
		s.cacheDir, s.maxCache = dir, max
		return nil
	}
}

// WithWorkDir puts the writable layers under dir (default: a tmpfs when
// one has room, else the temporary directory).
func WithWorkDir(dir string) Option {
	return func(s *Sandbox) error {
		if dir == "" {
			return errors.New("sandbox.WithWorkDir: empty directory")
		}
		s.workDir = dir
		return nil
	}
}

// WithLogger logs what the sandbox does.
func WithLogger(l *slog.Logger) Option {
	return func(s *Sandbox) error {
		if l == nil {
			return errors.New("sandbox.WithLogger: nil logger")
		}
		s.log = l
		return nil
	}
}

// WithoutOverlay copies the cached tree for each run instead of mounting
// it under overlayfs (what happens anyway where overlayfs cannot mount).
func WithoutOverlay() Option {
	return func(s *Sandbox) error { s.noOverlay = true; return nil }
}

// New returns a sandbox for mode.
func New(mode backend.SandboxMode, opts ...Option) (*Sandbox, error) {
	s := &Sandbox{mode: mode, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.maxCache == 0 {
		s.maxCache = DefaultTreeCacheSize
	}
	return s, nil
}

// Mode is the mode the sandbox was made for.
func (s *Sandbox) Mode() backend.SandboxMode { return s.mode }

// Available reports whether commands of an image of platform p can run
// here; the error says what is missing and how to configure it.
func (s *Sandbox) Available(p v1.Platform) error {
	if runtime.GOOS != "linux" {
		return unavailable("sandboxes need Linux")
	}
	if p.OS != "linux" || p.Architecture != runtime.GOARCH {
		return unavailable("the image is %s, this machine %s/%s, and drydock does not emulate", p.String(), runtime.GOOS, runtime.GOARCH)
	}
	return s.setup()
}

// setup checks the host once: user namespaces, the id map, overlayfs.
func (s *Sandbox) setup() error {
	s.once.Do(func() {
		s.err = s.probe()
	})
	return s.err
}

// sysctls that switch user namespaces off, and the remedy of each.
func sysctlCheck(rootless bool) error {
	read := func(p string) (int, bool) {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return n, err == nil
	}
	if n, ok := read("/proc/sys/user/max_user_namespaces"); ok && n == 0 {
		return unavailable("user namespaces are disabled on this host: user.max_user_namespaces is 0; allow them, as root: sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d to keep it)")
	}
	if !rootless {
		return nil
	}
	if n, ok := read("/proc/sys/kernel/unprivileged_userns_clone"); ok && n == 0 {
		return unavailable("unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone is 0; allow them, as root: sysctl -w kernel.unprivileged_userns_clone=1 (or run drydock as root)")
	}
	if n, ok := read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); ok && n == 1 {
		return unavailable("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns is 1): give drydock an AppArmor profile with \"userns,\", or set the sysctl to 0, as root")
	}
	return nil
}

func (s *Sandbox) probe() error {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		return unavailable("/proc is not mounted: %v", err)
	}
	rootless := os.Geteuid() != 0
	if err := sysctlCheck(rootless); err != nil {
		return err
	}
	m, err := currentMap()
	if err != nil {
		return err
	}
	s.idmap = m
	// Whether overlayfs works is found by the first session, which falls
	// back to copying the tree.
	s.overlay = !s.noOverlay
	cdir := s.cacheDir
	if cdir == "" {
		cdir = filepath.Join(os.TempDir(), "drydock-sandbox-trees-"+strconv.Itoa(os.Geteuid()))
	}
	s.trees, err = cache.Open(cdir, s.maxCache, cache.WithRemove(s.remove))
	return err
}

// Rootless reports whether the sandbox maps the user's subordinate ids
// (drydock runs unprivileged); valid after Available succeeded.
func (s *Sandbox) Rootless() bool { return s.idmap != nil && s.idmap.Rootless }

// work returns where writable layers go: a tmpfs with room, else the
// temporary directory.
func (s *Sandbox) work() (string, error) {
	if s.workDir != "" {
		return s.workDir, nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && int64(st.Bavail)*int64(st.Bsize) > 1<<30 {
		if f, err := os.MkdirTemp("/dev/shm", "drydock-probe-*"); err == nil {
			os.Remove(f)
			return "/dev/shm", nil
		}
	}
	return os.TempDir(), nil
}

// remove removes a tree whose files belong to the namespace's ids.
func (s *Sandbox) remove(dir string) error {
	if !s.idmap.Rootless {
		return removeTree(dir)
	}
	p, err := start(s.idmap, config{Op: opRemove, Dirs: []string{dir}}, noData)
	if err != nil {
		return err
	}
	defer p.close()
	var r reply
	if err := p.recv(&r); err != nil {
		return err
	}
	return p.wait()
}

// treeKey names the cached tree of img under the current id map.
func (s *Sandbox) treeKey(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(treeFormat + "\n" + d.String() + "\n" + s.idmap.fingerprint()))
	return hex.EncodeToString(h[:]), nil
}

// tree returns img's extracted tree from the cache, extracting it first
// when missing.
func (s *Sandbox) tree(ctx context.Context, img v1.Image) (*cache.Entry, error) {
	key, err := s.treeKey(img)
	if err != nil {
		return nil, err
	}
	if e, err := s.trees.Get(key); err != nil || e != nil {
		return e, err
	}
	start := time.Now()
	e, err := s.trees.Put(key, func(dir string) (int64, error) { return s.extract(ctx, img, dir) })
	if err != nil {
		return nil, err
	}
	s.log.Info("sandbox: extracted the image's tree", "dir", e.Path, "seconds", time.Since(start).Seconds())
	return e, nil
}

// extract writes img's flattened tree into dir/root, with its manifest.
func (s *Sandbox) extract(ctx context.Context, img v1.Image, dir string) (int64, error) {
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return 0, err
	}
	p, err := start(s.idmap, config{Op: opExtract, Dir: root, Manifest: filepath.Join(dir, "manifest")}, dataIn)
	if err != nil {
		return 0, err
	}
	defer p.close()
	werr := make(chan error, 1)
	go func() {
		rc := mutate.Extract(img)
		err := writeBuffered(p.data, func(w io.Writer) error {
			_, err := io.Copy(w, ctxReader{ctx, rc})
			return err
		})
		rc.Close()
		p.data.Close()
		werr <- err
	}()
	var r reply
	err = p.recv(&r)
	if e := <-werr; err == nil && e != nil {
		err = fmt.Errorf("sandbox: reading the image: %w", e)
	}
	if err != nil {
		return 0, err
	}
	return r.Bytes, p.wait()
}

// pipeBuffer is the buffer of each side of a tar stream through a data
// pipe. archive/tar writes every 512-byte header and every file by itself:
// unbuffered, extracting an image of 7,500 files took as many pipe writes
// and wake-ups of the reader on the other side.
const pipeBuffer = 1 << 20

// writeBuffered calls fn with a buffered writer to w and flushes it. fn
// sees only Write: bufio.Writer's ReadFrom would hand an io.Copy straight
// to the pipe's own, unbuffered.
func writeBuffered(w io.Writer, fn func(io.Writer) error) error {
	bw := bufio.NewWriterSize(w, pipeBuffer)
	if err := fn(struct{ io.Writer }{bw}); err != nil {
		return err
	}
	return bw.Flush()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open makes img with cs applied ready to run commands in.
func (s *Sandbox) Open(ctx context.Context, img v1.Image, cs *layer.Changeset) (backend.Tree, error) {
	if err := s.setup(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		t, err := s.open(ctx, img, cs)
		var noOverlay *noOverlayError
		switch {
		case err == nil || attempt > 1:
			return t, err
		case errors.As(err, &noOverlay) && s.overlay:
			s.log.Info("sandbox: copying image trees instead of mounting them with overlayfs", "reason", noOverlay.why)
			s.overlay = false
		case strings.Contains(err.Error(), "corrupt: "):
			s.log.Warn("sandbox: the cached image tree is corrupt: extracting it again", "error", err)
		default:
			return t, err
		}
	}
}

func (s *Sandbox) open(ctx context.Context, img v1.Image, cs *layer.Changeset) (_ *Tree, err error) {
	entry, err := s.tree(ctx, img)
	if err != nil {
		return nil, err
	}
	work, err := s.work()
	if err != nil {
		entry.Release()
		return nil, err
	}
	dir, err := os.MkdirTemp(work, "drydock-sandbox-*")
	if err != nil {
		entry.Release()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	t := &Tree{s: s, entry: entry, dir: dir}
	defer func() {
		if err != nil {
			if strings.Contains(err.Error(), "corrupt: ") {
				t.entryCorrupt = true
			}
			t.Close()
		}
	}()
	cfg := config{Op: opSession, Lower: filepath.Join(entry.Path, "root"), Manifest: filepath.Join(entry.Path, "manifest"),
		Root: filepath.Join(dir, "root"), Overlay: s.overlay, Dir: filepath.Join(dir, "probe")}
	if s.overlay {
		cfg.Upper, cfg.Work = filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	}
	for _, d := range []string{cfg.Root, cfg.Upper, cfg.Work} {
		if d != "" {
			if err := os.Mkdir(d, 0o755); err != nil {
				return nil, fmt.Errorf("sandbox: %w", err)
			}
		}
	}
	t.cfg = cfg
	if t.p, err = start(s.idmap, cfg, dataIn); err != nil {
		return nil, err
	}
	werr := make(chan error, 1)
	go func() {
		err := writeBuffered(t.p.data, cs.Write)
		t.p.data.Close()
		werr <- err
	}()
	var r reply
	err = t.recvCtx(ctx, &r)
	if e := <-werr; err == nil && e != nil {
		err = fmt.Errorf("sandbox: writing the changes: %w", e)
	}
	if err != nil {
		return nil, err
	}
	t.snapshot = r.Snapshot
	// The process that records the changes starts now, while the
	// commands run: its start-up is off the critical path.
	t.differ = make(chan spawned, 1)
	go func() {
		p, err := spawn(s.idmap, dataOut)
		t.differ <- spawned{p, err}
	}()
	return t, nil
}

// spawned is a process started ahead of need, or why it could not be.
type spawned struct {
	p   *proc
	err error
}

// Tree is an image ready to run commands in (backend.Tree).
type Tree struct {
	s            *Sandbox
	entry        *cache.Entry
	entryCorrupt bool
	dir          string // the writable layer and mount point; removed by Diff or Close
	cfg          config
	p            *proc
	snapshot     map[string]snapEntry
	cleaned      bool
	differ       chan spawned // the diff's process, spawned by open
}

// takeDiffer returns the process spawned for the diff (nil if none was).
func (t *Tree) takeDiffer() (*proc, error) {
	if t.differ == nil {
		return nil, nil
	}
	sp := <-t.differ
	t.differ = nil
	return sp.p, sp.err
}

// recvCtx waits for a reply; ctx's end kills the sandbox.
func (t *Tree) recvCtx(ctx context.Context, r *reply) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			if t.p.cmd != nil && t.p.cmd.Process != nil {
				t.p.cmd.Process.Kill()
			}
		case <-done:
		}
	}()
	err := t.p.recv(r)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Stage makes data readable inside the sandbox at backend.StagePath(name).
func (t *Tree) Stage(name string, data []byte) error {
	if t.p == nil {
		return errors.New("sandbox: tree is closed")
	}
	if err := t.p.send(request{Op: "stage", Name: name, Data: data}); err != nil {
		return err
	}
	var r reply
	return t.p.recv(&r)
}

// Run runs argv with env as root in the sandbox and returns its output
// (the first MiB); an exit status other than 0 is an error.
func (t *Tree) Run(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	if t.p == nil {
		return nil, errors.New("sandbox: tree is closed")
	}
	if err := t.p.send(request{Op: "run", Argv: argv, Env: env}); err != nil {
		return nil, t.p.failure(err)
	}
	var r reply
	if err := t.recvCtx(ctx, &r); err != nil {
		return r.Output, err
	}
	if r.Exit != 0 {
		return r.Output, fmt.Errorf("sandbox: %s: exit status %d", strings.Join(argv, " "), r.Exit)
	}
	return r.Output, nil
}

// Diff ends the sandbox's commands and adds to cs what they changed, dated
// mtime.
func (t *Tree) Diff(cs *layer.Changeset, mtime time.Time) error {
	if t.p == nil {
		return errors.New("sandbox: tree is closed")
	}
	_ = t.p.send(request{Op: "exit"})
	err := t.p.wait()
	t.p.close()
	t.p = nil
	if err != nil {
		return err
	}
	cfg := t.cfg
	cfg.Op, cfg.Snapshot, cfg.Dirs = opDiff, t.snapshot, []string{t.dir}
	p, err := t.takeDiffer()
	if p != nil {
		err = p.configure(cfg)
	} else {
		if err != nil {
			t.s.log.Warn("sandbox: starting the diff's process ahead failed: trying again", "error", err)
		}
		p, err = start(t.s.idmap, cfg, dataOut)
	}
	if err != nil {
		return err
	}
	defer p.close()
	aerr := applyDiff(tar.NewReader(bufio.NewReaderSize(p.data, pipeBuffer)), cs, mtime, maxEntries)
	if aerr != nil {
		p.close()
		return fmt.Errorf("sandbox: diff: %w", aerr)
	}
	var r reply
	if err := p.recv(&r); err != nil {
		return err
	}
	if err := p.wait(); err != nil {
		return err
	}
	t.cleaned = true
	os.Remove(t.dir)
	return nil
}

// Close stops the sandbox and removes its writable layer.
func (t *Tree) Close() error {
	var err error
	if t.p != nil {
		t.p.close()
		t.p = nil
	}
	if p, _ := t.takeDiffer(); p != nil {
		p.close()
	}
	if !t.cleaned && t.dir != "" {
		err = t.s.remove(t.dir)
		t.cleaned = true
	}
	if t.entry != nil {
		if t.entryCorrupt {
			_ = t.s.trees.Discard(t.entry)
		} else {
			t.entry.Release()
		}
		t.entry = nil
	}
	return err
}
