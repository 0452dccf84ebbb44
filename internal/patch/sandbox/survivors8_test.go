package sandbox

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/testimage"
)

// Tests added for the eighth `make mutate` pass (test/mutation/SURVIVORS.md).
//
// Like survivors7_test.go they run in this process what the sandbox's own
// processes run (the manifest written at extraction and checked before
// every session, the copy mode's tree copy, the child's replies) and the
// parent's side of the channels, so that gremlins sees them. Root only
// where files get owners.

func rootOnly(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("root only: the tree's files get owners")
	}
}

// extractTree extracts entries into a new directory and records its
// manifest there, as the extraction process does.
func extractTree(t *testing.T, entries ...tarEntry) (root, manifest string) {
	t.Helper()
	dir := t.TempDir()
	root, manifest = filepath.Join(dir, "root"), filepath.Join(dir, "manifest")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	x := newExtractor(root, 0)
	if err := x.run(tarOf(t, entries...)); err != nil {
		t.Fatal(err)
	}
	if err := writeManifest(root, manifest, x.sums); err != nil {
		t.Fatal(err)
	}
	return root, manifest
}

var manifestTree = []tarEntry{
	{name: "etc/", typ: tar.TypeDir, mode: 0o755},
	{name: "etc/passwd", typ: tar.TypeReg, body: "root:x:0:0\n"},
	{name: "usr/bin/su", typ: tar.TypeReg, body: "su binary", mode: 0o4755, uid: 0},
	{name: "var/lib/x", typ: tar.TypeReg, body: "owned", uid: 7},
	{name: "etc/link", typ: tar.TypeSymlink, link: "passwd"},
	{name: "etc/hard", typ: tar.TypeLink, link: "etc/passwd"},
}

// TestManifestCatchesTampering: a cached tree is used only as its
// manifest recorded it. Each change a host process could make to the
// cache (a mode, an owner, a size, a time, a link's target, a path added
// or removed) makes verifyTree report the tree corrupt, which Open takes
// as the signal to extract it again.
func TestManifestCatchesTampering(t *testing.T) {
	rootOnly(t)
	root, manifest := extractTree(t, manifestTree...)
	m, err := readManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyTree(root, m); err != nil {
		t.Fatalf("the untouched tree: %v", err)
	}
	// What the manifest holds: every path, files with their sums, no
	// inode (a copy of the cache must still verify).
	var names []string
	for _, name := range sortedKeys(m) {
		e := m[name]
		names = append(names, name)
		if e.Ino != 0 {
			t.Errorf("%s: inode %d recorded", name, e.Ino)
		}
		if e.Mode.IsRegular() && len(e.SHA256) != 64 {
			t.Errorf("%s: sum %q", name, e.SHA256)
		}
	}
	if got, want := strings.Join(names, " "), "etc etc/hard etc/link etc/passwd usr usr/bin usr/bin/su var var/lib var/lib/x"; got != want {
		t.Errorf("manifest paths %q, want %q", got, want)
	}
	if m["etc/hard"].SHA256 != m["etc/passwd"].SHA256 || m["usr/bin/su"].Mode != 0o755|fs.ModeSetuid || m["var/lib/x"].UID != 7 {
		t.Errorf("manifest entries: %+v %+v %+v", m["etc/hard"], m["usr/bin/su"], m["var/lib/x"])
	}

	old := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name   string
		tamper func(root string) error
		want   string
	}{
		{"mode", func(r string) error { return os.Chmod(filepath.Join(r, "usr/bin/su"), 0o755) }, "usr/bin/su differs"},
		{"owner", func(r string) error { return os.Lchown(filepath.Join(r, "var/lib/x"), 8, 7) }, "var/lib/x differs"},
		{"group", func(r string) error { return os.Lchown(filepath.Join(r, "var/lib/x"), 7, 8) }, "var/lib/x differs"},
		{"size", func(r string) error {
			p := filepath.Join(r, "var/lib/x")
			if err := os.Truncate(p, 2); err != nil {
				return err
			}
			return os.Chtimes(p, old, old)
		}, "var/lib/x differs"},
		{"time", func(r string) error {
			return os.Chtimes(filepath.Join(r, "var/lib/x"), old.Add(time.Second), old.Add(time.Second))
		}, "var/lib/x differs"},
		{"link target", func(r string) error { // the same length: only the target differs
			p := filepath.Join(r, "etc/link")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("shadow"[:6], p)
		}, "etc/link differs"},
		{"added", func(r string) error { return os.WriteFile(filepath.Join(r, "etc/new"), nil, 0o644) }, "etc/new is not in the manifest"},
		{"removed", func(r string) error { return os.Remove(filepath.Join(r, "etc/hard")) }, "1 of the manifest's 10 paths are missing (etc/hard)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, manifest := extractTree(t, manifestTree...)
			if err := tc.tamper(root); err != nil {
				t.Fatal(err)
			}
			m, err := readManifest(manifest)
			if err != nil {
				t.Fatal(err)
			}
			err = verifyTree(root, m)
			var ce *corruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("verifyTree: %v, want a corrupt tree: %q", err, tc.want)
			}
		})
	}

	// A manifest missing or not a manifest: corrupt too.
	if _, err := readManifest(filepath.Join(t.TempDir(), "none")); !isCorrupt(err) {
		t.Errorf("a missing manifest: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "manifest")
	if err := os.WriteFile(bad, []byte("not gob"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readManifest(bad); !isCorrupt(err) {
		t.Errorf("a garbled manifest: %v", err)
	}
	// The tree unreadable: its error, not a manifest's.
	if err := writeManifest(filepath.Join(t.TempDir(), "none"), bad, nil); err == nil || !strings.Contains(err.Error(), "recording the tree") {
		t.Errorf("writeManifest of a missing tree: %v", err)
	}
}

func isCorrupt(err error) bool {
	var ce *corruptError
	return errors.As(err, &ce)
}

// TestCopyTree: the copy mode's copy of the cached tree keeps owners,
// modes (setuid, setgid, sticky), files' times and hard links, copies a
// link as a link (no chmod through it: its target here is a host file
// that must keep its mode), and leaves devices and FIFOs out.
func TestCopyTree(t *testing.T) {
	rootOnly(t)
	host := filepath.Join(t.TempDir(), "host-file")
	if err := os.WriteFile(host, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, _ := extractTree(t,
		tarEntry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "bin/su", typ: tar.TypeReg, body: "su", mode: 0o4755},
		tarEntry{name: "bin/sg", typ: tar.TypeReg, body: "sg", mode: 0o2711, uid: 5},
		tarEntry{name: "bin/hard", typ: tar.TypeLink, link: "bin/su"},
		tarEntry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		tarEntry{name: "srv/", typ: tar.TypeDir, mode: 0o2750, uid: 33},
		tarEntry{name: "srv/data", typ: tar.TypeReg, body: "data", mode: 0o640, uid: 33},
		tarEntry{name: "etc/host", typ: tar.TypeSymlink, link: host},
		tarEntry{name: "etc/rel", typ: tar.TypeSymlink, link: "../bin/su", uid: 7},
	)
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	want := snapshotTree(t, src)
	delete(want, "fifo")
	got := snapshotTree(t, dst)
	for name, w := range want {
		g, ok := got[name]
		w.Ino, g.Ino = 0, 0
		if !ok || g != w {
			t.Errorf("%s: copied as %+v, want %+v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: copied, and should not be", name)
		}
	}
	ino := func(name string) uint64 {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	if ino("bin/hard") != ino("bin/su") || ino("bin/sg") == ino("bin/su") {
		t.Errorf("hard links: bin/hard %d, bin/su %d, bin/sg %d", ino("bin/hard"), ino("bin/su"), ino("bin/sg"))
	}
	if fi, err := os.Stat(host); err != nil || fi.Mode() != 0o600 {
		t.Errorf("the host file a copied link points to: %v, %v", fi.Mode(), err)
	}
}

// TestReadLineBound: a line longer than the reader's buffer is read
// whole; one longer than the bound is refused.
func TestReadLineBound(t *testing.T) {
	in := strings.Repeat("a", 40) + "\n" + strings.Repeat("b", 41) + "\nshort\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 16)
	line, err := readLine(r, 40)
	if err != nil || string(line) != strings.Repeat("a", 40) {
		t.Fatalf("a line of the bound: %q, %v", line, err)
	}
	if _, err := readLine(r, 40); err == nil || !strings.Contains(err.Error(), "longer than 40 bytes") {
		t.Fatalf("a line past the bound: %v", err)
	}
}

// TestLimitedBuffer: a process's stderr is kept up to the bound, and
// writing more never fails the process.
func TestLimitedBuffer(t *testing.T) {
	l := &limitedBuffer{max: 10}
	for _, s := range []string{"012345", "6789ab", "cd"} {
		if n, err := l.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q): %d, %v", s, n, err)
		}
	}
	if l.String() != "0123456789" {
		t.Errorf("kept %q", l.String())
	}
}

// TestReplies: what the child replies is what the parent gets: an
// unavailable sandbox as *UnavailableError (errors.Is ErrUnavailable), a
// tree found corrupt as an error Open recognises ("corrupt: "), no
// overlayfs as *noOverlayError.
func TestReplies(t *testing.T) {
	roundTrip := func(err error) (int, error) {
		r, w, perr := os.Pipe()
		if perr != nil {
			t.Fatal(perr)
		}
		defer r.Close()
		code := (&child{reply: w}).fail(err)
		w.Close()
		p := &proc{reply: bufio.NewReader(r)}
		var rep reply
		return code, p.recv(&rep)
	}
	for _, tc := range []struct {
		name   string
		err    error
		want   string
		unavai bool
	}{
		{"unavailable", fmt.Errorf("setup: %w", unavailable("no %s", "way")), "no sandbox: setup: no sandbox: no way", true},
		{"corrupt", fmt.Errorf("checking: %w", &corruptError{"etc differs"}), "sandbox: corrupt: etc differs", false},
		{"other", errors.New("disk full"), "sandbox: disk full", false},
	} {
		code, err := roundTrip(tc.err)
		if code != 1 || err == nil || err.Error() != tc.want || errors.Is(err, ErrUnavailable) != tc.unavai {
			t.Errorf("%s: exit %d, %v (unavailable %v), want %q", tc.name, code, err, errors.Is(err, ErrUnavailable), tc.want)
		}
	}

	recv := func(lines string) (reply, error) {
		p := &proc{reply: bufio.NewReader(strings.NewReader(lines))}
		var r reply
		err := p.recv(&r)
		return r, err
	}
	var no *noOverlayError
	if _, err := recv(`{"error":"no upper","no_overlay":true}` + "\n"); !errors.As(err, &no) || err.Error() != "sandbox: no upper" {
		t.Errorf("no overlay: %v", err)
	}
	if r, err := recv(`{"bytes":12}` + "\n"); err != nil || r.Bytes != 12 {
		t.Errorf("a reply: %+v, %v", r, err)
	}
	if _, err := recv("{\n"); err == nil || !strings.Contains(err.Error(), "bad reply") {
		t.Errorf("a bad reply: %v", err)
	}
	if _, err := recv(""); !errors.Is(err, io.EOF) {
		t.Errorf("no reply: %v", err)
	}
	b, _ := json.Marshal(reply{Error: "x"})
	if _, err := recv(string(b) + "\n"); err == nil || err.Error() != "sandbox: x" {
		t.Errorf("an error reply: %v", err)
	}
}

// TestStartError: a refused namespace says what to configure.
func TestStartError(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.EPERM, "creating a user namespace was refused"},
		{syscall.EACCES, "creating a user namespace was refused"},
		{syscall.ENOSPC, "user.max_user_namespaces is reached"},
		{syscall.EINVAL, "this kernel lacks user, mount, PID or network namespaces"},
	} {
		err := startError(&fs.PathError{Op: "fork/exec", Path: "/proc/self/fd/6", Err: tc.errno})
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want unavailable: %q", tc.errno, err, tc.want)
		}
	}
	err := startError(&fs.PathError{Op: "fork/exec", Path: "/proc/self/fd/6", Err: syscall.ENOMEM})
	if errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "sandbox: starting") {
		t.Errorf("ENOMEM: %v", err)
	}
}

// TestStageRefusesPaths: a staged file's name is one plain name: no
// path out of /run/drydock. (Only refusals run here: a name staged for
// real is written in the sandbox's root, TestSandboxRoundTrip's.)
func TestStageRefusesPaths(t *testing.T) {
	if _, err := os.Lstat("/run/drydock"); err == nil {
		t.Skip("/run/drydock exists on this host")
	}
	defer os.Remove("/run/drydock") // made only by a broken stage
	for _, name := range []string{"", ".", "..", "../etc/passwd", "a/b", "/x", "a\x00b"} {
		if err := stage(name, []byte("x")); err == nil || !strings.Contains(err.Error(), "not a plain file name") {
			t.Errorf("stage(%q): %v", name, err)
		}
	}
}

// TestCopyExecutable: the sealed copy is the executable byte for byte,
// through sendfile's chunks.
func TestCopyExecutable(t *testing.T) {
	data := bytes.Repeat([]byte("drydock\x00\x01\x02"), 300_000) // 3 MB
	src := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(src, data, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fd, err := unix.MemfdCreate("test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	out := os.NewFile(uintptr(fd), "test")
	defer out.Close()
	if err := copyExecutable(out, in); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", out.Fd()))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("copied %d bytes (%v), want %d equal", len(got), err, len(data))
	}
}

// TestOptions: bad options are refused; a cancelled context stops the
// image's stream; writeBuffered delivers all of it.
func TestOptions(t *testing.T) {
	for _, o := range []Option{WithCacheDir("", 0), WithCacheDir("d", -1), WithWorkDir(""), WithLogger(nil)} {
		if _, err := New("auto", o); err == nil {
			t.Error("a bad option was taken")
		}
	}
	s, err := New("auto", WithCacheDir("d", 0), WithWorkDir("w"))
	if err != nil || s.maxCache != DefaultTreeCacheSize || s.cacheDir != "d" {
		t.Fatalf("New: %+v, %v", s, err)
	}
	if w, err := s.work(); w != "w" || err != nil {
		t.Errorf("work: %q, %v", w, err)
	}
	if s.Rootless() {
		t.Error("Rootless before Available")
	}
	// The cache directory given is the one used (as root: rootless, the
	// probe reads the user's subordinate ranges).
	if os.Geteuid() == 0 {
		dir := t.TempDir()
		s, _ := New("auto", WithCacheDir(dir, 0))
		if err := s.Available(hostPlatform()); err != nil {
			if testimage.InCI() {
				t.Fatal(err)
			}
			t.Log(err)
		} else if s.trees.Root() != dir || s.Rootless() {
			t.Errorf("cache %s, rootless %v; want %s, false", s.trees.Root(), s.Rootless(), dir)
		}
	}
	if s, _ := New("auto", WithCacheDir("d", 5)); s.maxCache != 5 {
		t.Errorf("WithCacheDir's size: %d", s.maxCache)
	}
	// Another platform is refused before the host is probed.
	other := hostPlatform()
	other.Architecture = "s390x-not"
	if err := s.Available(other); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "does not emulate") {
		t.Errorf("another architecture: %v", err)
	}
	other = hostPlatform()
	other.OS = "windows"
	if err := s.Available(other); !errors.Is(err, ErrUnavailable) {
		t.Errorf("another OS: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (ctxReader{ctx, strings.NewReader("x")}).Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled read: %v", err)
	}
	var buf bytes.Buffer
	big := strings.Repeat("z", pipeBuffer+10)
	if err := writeBuffered(&buf, func(w io.Writer) error { _, err := io.WriteString(w, big); return err }); err != nil || buf.String() != big {
		t.Errorf("writeBuffered: %d bytes, %v", buf.Len(), err)
	}
	if err := writeBuffered(&buf, func(io.Writer) error { return errors.New("x") }); err == nil {
		t.Error("writeBuffered hid fn's error")
	}
}

// TestExtractorBounds: an extraction takes as many entries and bytes as
// its bounds allow, and refuses the next.
func TestExtractorBounds(t *testing.T) {
	rootOnly(t)
	three := []tarEntry{{name: "a", typ: tar.TypeReg, body: "12"}, {name: "b", typ: tar.TypeReg, body: "34"}, {name: "c/", typ: tar.TypeDir}}
	x := newExtractor(t.TempDir(), 0)
	x.limit = 3
	if err := x.run(tarOf(t, three...)); err != nil {
		t.Fatalf("3 entries under a bound of 3: %v", err)
	}
	x = newExtractor(t.TempDir(), 0)
	x.limit = 3
	if err := x.run(tarOf(t, append(three, tarEntry{name: "d", typ: tar.TypeReg})...)); err == nil || !strings.Contains(err.Error(), "more than 3 entries") {
		t.Errorf("4 entries under a bound of 3: %v", err)
	}
	if x := newExtractor(t.TempDir(), 0); x.limit != maxEntries || x.max != defaultMaxTree {
		t.Errorf("default bounds: %d entries, %d bytes", x.limit, x.max)
	}
	if err := newExtractor(t.TempDir(), 4).run(tarOf(t, three...)); err != nil {
		t.Errorf("4 bytes under a bound of 4: %v", err)
	}
	err := newExtractor(t.TempDir(), 3).run(tarOf(t, three...))
	if err == nil || !strings.Contains(err.Error(), "b: more than 3 bytes") {
		t.Errorf("4 bytes under a bound of 3: %v", err)
	}
}

// TestExtractorKeepsDirectories: a directory entry over a directory that
// is there (a changeset's directory over the image's, as the session
// applies it) takes the entry's owner and mode and keeps what the
// directory holds.
func TestExtractorKeepsDirectories(t *testing.T) {
	rootOnly(t)
	root := t.TempDir()
	err := newExtractor(root, 0).run(tarOf(t,
		tarEntry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "etc/passwd", typ: tar.TypeReg, body: "root"},
		tarEntry{name: "etc/", typ: tar.TypeDir, mode: 0o750, uid: 5},
	))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/passwd")); err != nil || string(b) != "root" {
		t.Errorf("etc/passwd after etc/ again: %q, %v", b, err)
	}
	fi, err := os.Lstat(filepath.Join(root, "etc"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode() != fs.ModeDir|0o750 || st.Uid != 5 || st.Gid != 5 {
		t.Errorf("etc: %v %d:%d, want drwxr-x--- 5:5", fi.Mode(), st.Uid, st.Gid)
	}
}

// TestExtractorDevicesAndTruncation: a device or FIFO entry is not made,
// and removes what was at its path; a stream cut inside a file fails
// naming that file.
func TestExtractorDevicesAndTruncation(t *testing.T) {
	rootOnly(t)
	root := t.TempDir()
	err := newExtractor(root, 0).run(tarOf(t,
		tarEntry{name: "dev/sda", typ: tar.TypeReg, body: "a file first"},
		tarEntry{name: "dev/sda", typ: tar.TypeBlock},
		tarEntry{name: "dev/fifo", typ: tar.TypeFifo},
	))
	if err != nil {
		t.Fatal(err)
	}
	if des, err := os.ReadDir(filepath.Join(root, "dev")); err != nil || len(des) != 0 {
		t.Errorf("dev holds %v (%v), want nothing", des, err)
	}

	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	if err := w.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4096}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	err = newExtractor(t.TempDir(), 0).run(tar.NewReader(bytes.NewReader(buf.Bytes()[:512+1000])))
	if err == nil || !strings.HasPrefix(err.Error(), "big: ") {
		t.Errorf("a stream cut inside big: %v", err)
	}
}

// TestSandboxCommandStatus: a command killed by a signal reports 128 plus
// the signal, as a shell does; one that cannot start, 127; and nothing a
// command left behind (64 daemons here) is still there, running or
// unreaped, when the next one starts. The image's
// /dev here is a symbolic link to a host path, and it has no /proc: the
// sandbox mounts its own in their place all the same.
func TestSandboxCommandStatus(t *testing.T) {
	s := newSandbox(t)
	cs := newChangeset(t)
	if err := cs.AddSymlink("dev", "/tmp", 0, 0, testMtime); err != nil {
		t.Fatal(err)
	}
	if err := cs.AddWhiteout("proc", testMtime); err != nil {
		t.Fatal(err)
	}
	tree, err := s.Open(t.Context(), bookworm(t), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	out, err := tree.Run(t.Context(), nil, "sh", "-c", `ls -A /dev | tr '\n' ' '; test -d /dev && test -r /proc/self/stat && echo mounted`)
	if want := "fd full null random shm stderr stdin stdout urandom zero mounted\n"; err != nil || string(out) != want {
		t.Errorf("/dev over a link, /proc missing: %q, %v; want %q", out, err, want)
	}
	if _, err := tree.Run(t.Context(), nil, "sh", "-c", "kill -KILL $$"); err == nil || !strings.HasSuffix(err.Error(), "exit status 137") {
		t.Errorf("a command killed by SIGKILL: %v, want exit status 137", err)
	}
	if _, err := tree.Run(t.Context(), nil, "no-such-command"); err == nil || !strings.HasSuffix(err.Error(), "exit status 127") {
		t.Errorf("a command that does not exist: %v, want exit status 127", err)
	}
	if _, err := tree.Run(t.Context(), nil, "sh", "-c", "for i in $(seq 1 64); do sleep 300 >/dev/null 2>&1 & done"); err != nil {
		t.Fatal(err)
	}
	out, err = tree.Run(t.Context(), nil, "sh", "-c", `for p in /proc/[0-9]*; do cat $p/stat 2>/dev/null; echo; done`)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "(sleep) ") {
			t.Errorf("a process of the previous command is still there (running or not reaped): %s", line)
		}
	}
}

// TestWalkTreeBound: a walk visits as many paths as its bound allows
// (the skipped ones counted: they are read), and refuses the next.
func TestWalkTreeBound(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	walk := func(limit int) error {
		seen = nil
		return walkTreeUpTo(root, limit, func(name string) bool { return name == "c" }, func(name, _ string, _ fs.FileInfo) error {
			seen = append(seen, name)
			return nil
		})
	}
	if err := walk(3); err != nil || strings.Join(seen, " ") != "a a/b" {
		t.Errorf("3 paths under a bound of 3: %v, %v", seen, err)
	}
	if err := walk(2); err == nil || !strings.Contains(err.Error(), "more than 2 entries") {
		t.Errorf("3 paths under a bound of 2: %v", err)
	}
}

// TestDiffRuntimeDirItself: what a command writes under /tmp or /var/log
// is left out, but a change of such a directory itself (its mode) is
// kept, as any directory's.
func TestDiffRuntimeDirItself(t *testing.T) {
	rootOnly(t)
	dir := t.TempDir()
	lower, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
	lay(t, lower, testMtime, diffImageTree...)
	if err := os.Mkdir(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	snap := snapshotTree(t, upper)
	lay(t, upper, diffMtime, ddir("tmp", 0o700), dfile("tmp/x", 0o644, "x\n"), ddir("var", 0o755), ddir("var/log", 0o755), dfile("var/log/y", 0o644, "y\n"))
	cs := newChangeset(t)
	if err := runDiff(t, config{Overlay: true, Lower: lower, Upper: upper, Snapshot: snap}, cs); err != nil {
		t.Fatal(err)
	}
	checkListing(t, cs, []string{`directory tmp 700 0:0 @diff`})
}

// TestExtractorLinkTime: a symbolic link gets its entry's time, as files
// do (not the link's target: it is not followed).
func TestExtractorLinkTime(t *testing.T) {
	rootOnly(t)
	root := t.TempDir()
	if err := newExtractor(root, 0).run(tarOf(t, tarEntry{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"})); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(root, "l"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000, 0); !fi.ModTime().Equal(want) {
		t.Errorf("l: time %v, want %v", fi.ModTime(), want)
	}
}

// TestSandboxCloseRemovesLayer: a tree closed without a diff (a script
// failed) leaves no writable layer behind, even one holding a directory
// of another id that its owner may not enter. TestSandboxRootless runs
// it rootless too, where only the namespace can remove such a layer.
func TestSandboxCloseRemovesLayer(t *testing.T) {
	s := newSandbox(t)
	bt, err := s.Open(t.Context(), bookworm(t), newChangeset(t))
	if err != nil {
		t.Fatal(err)
	}
	tree := bt.(*Tree)
	defer tree.Close()
	if out, err := tree.Run(t.Context(), nil, "sh", "-c", "mkdir -p /srv/x/y && echo f > /srv/x/y/f && chown -R 33:33 /srv/x && chmod 500 /srv/x /srv/x/y"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := tree.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(tree.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Close left the writable layer %s: %v", tree.dir, err)
	}
}

// TestWorkDirOnTmpfs: without WithWorkDir, writable layers go to
// /dev/shm when it has well over a GiB free (checked here with a margin:
// 2 GiB), to the temporary directory when it has well under (512 MiB).
func TestWorkDirOnTmpfs(t *testing.T) {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	s, err := New("auto")
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.work()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case free > 2<<30 && unix.Access("/dev/shm", unix.W_OK) == nil:
		if w != "/dev/shm" {
			t.Errorf("/dev/shm has %d bytes free: work dir %s", free, w)
		}
	case free < 512<<20:
		if w != os.TempDir() {
			t.Errorf("/dev/shm has %d bytes free: work dir %s", free, w)
		}
	default:
		t.Skipf("/dev/shm has %d bytes free: too close to the bound to tell", free)
	}
}

// TestSandboxOpenRefusesAChangesetItCannotWrite: a changeset that fails
// to stream (its spooled contents lost) fails Open; the sandbox must not
// run commands in the image without the changes.
func TestSandboxOpenRefusesAChangesetItCannotWrite(t *testing.T) {
	s := newSandbox(t)
	dir := t.TempDir()
	cs, err := layer.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	addBytes(t, cs, "etc/drydock-cs", 0, 0, "from the changeset\n")
	spools, _ := filepath.Glob(filepath.Join(dir, "*", "contents"))
	if len(spools) != 1 {
		t.Fatalf("spool files: %v", spools)
	}
	if err := os.Truncate(spools[0], 0); err != nil {
		t.Fatal(err)
	}
	tree, err := s.Open(t.Context(), bookworm(t), cs)
	if err == nil {
		tree.Close()
		t.Fatal("Open applied a changeset that could not be written")
	}
	if !strings.Contains(err.Error(), "writing the changes") {
		t.Errorf("Open: %v, want the changeset's error", err)
	}
}
