package sandbox

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/testenv"
)

// Tests added for the seventh `make mutate` pass (test/mutation/SURVIVORS.md).
//
// The diff runs in a sandbox process (this test binary executed again in
// the namespaces), whose coverage gremlins does not see: it counted all
// of diff.go as not covered. These tests run child.diff in this process,
// over trees laid out as the sandbox leaves them (overlayfs's upper
// directory over the image's tree, or the copy mode's root beside the
// tree's manifest), and apply its stream to the changeset as Tree.Diff
// does. Root only: a whiteout is a character device, owners are chowned.

// dnode is one path of a test tree.
type dnode struct {
	path     string
	kind     byte        // 'f' file, 'd' directory, 'l' symbolic link, 'w' overlayfs whiteout, 'r' removed
	mode     fs.FileMode // files and directories: permissions, setuid, setgid, sticky
	uid, gid int
	data     string // a file's content, a link's target
	opaque   bool   // an overlayfs opaque directory
}

func dfile(p string, mode fs.FileMode, data string) dnode {
	return dnode{path: p, kind: 'f', mode: mode, data: data}
}
func ddir(p string, mode fs.FileMode) dnode { return dnode{path: p, kind: 'd', mode: mode} }
func dlink(p, target string) dnode          { return dnode{path: p, kind: 'l', data: target} }
func dwhiteout(p string) dnode              { return dnode{path: p, kind: 'w'} }
func dremove(p string) dnode                { return dnode{path: p, kind: 'r'} }

// lay writes nodes under root in order (a missing parent is made 0755
// root:root, as the image's are), files dated mtime. A directory that is
// there already keeps its entries.
func lay(t *testing.T, root string, mtime time.Time, nodes ...dnode) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(root, n.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch n.kind {
		case 'f':
			if err = os.RemoveAll(p); err == nil {
				err = os.WriteFile(p, []byte(n.data), 0o600)
			}
		case 'd':
			if fi, lerr := os.Lstat(p); lerr != nil || !fi.IsDir() {
				if err = os.RemoveAll(p); err == nil {
					err = os.Mkdir(p, 0o700)
				}
			}
		case 'l':
			if err = os.RemoveAll(p); err == nil {
				err = os.Symlink(n.data, p)
			}
		case 'w':
			if err = os.RemoveAll(p); err == nil {
				err = unix.Mknod(p, unix.S_IFCHR, 0)
			}
		case 'r':
			if err = os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err == nil {
			err = os.Lchown(p, n.uid, n.gid) // before the mode: a chown clears setuid
		}
		if err == nil && (n.kind == 'f' || n.kind == 'd') {
			err = os.Chmod(p, n.mode)
		}
		if err == nil && n.kind == 'f' {
			err = os.Chtimes(p, mtime, mtime)
		}
		if err == nil && n.opaque {
			err = unix.Lsetxattr(p, "user.overlay.opaque", []byte("y"), 0)
		}
		if err != nil {
			t.Fatalf("laying out %s: %v", n.path, err)
		}
	}
}

// snapshotTree records the tree at root as the session does before the
// first command: each path as statEntry sees it, with the files' sums.
func snapshotTree(t *testing.T, root string) map[string]snapEntry {
	t.Helper()
	snap := map[string]snapEntry{}
	err := walkTree(root, ignored, func(name, p string, fi fs.FileInfo) error {
		e, err := statEntry(p, fi)
		if err == nil && fi.Mode().IsRegular() {
			e.SHA256, err = hashFile(p)
		}
		snap[name] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// diffMtime dates what the diff adds; the changeset's own entries have
// testMtime, so a listing tells which the diff wrote.
var diffMtime = testMtime.Add(time.Hour)

// runDiff runs the diff with cfg in this process and applies its stream to
// cs as Tree.Diff does. It returns the diff's error, or the stream's.
func runDiff(t *testing.T, cfg config, cs *layer.Changeset) error {
	t.Helper()
	dataR, dataW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	replyR, replyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer replyR.Close()
	applied := make(chan error, 1)
	go func() {
		err := applyDiff(tar.NewReader(dataR), cs, diffMtime, maxEntries)
		_, _ = io.Copy(io.Discard, dataR)
		dataR.Close()
		applied <- err
	}()
	cfg.Op = opDiff
	code := (&child{reply: replyW, data: dataW}).diff(cfg)
	dataW.Close() // the diff closes it, but not when it fails before writing
	replyW.Close()
	aerr := <-applied
	line, err := io.ReadAll(replyR)
	if err != nil {
		t.Fatal(err)
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("the diff's reply %q: %v", line, err)
	}
	if (code == 0) != (r.Error == "") {
		t.Fatalf("the diff exited %d, replying %q", code, r.Error)
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return aerr
}

// listing lists cs as "kind path mode uid:gid content @source" lines, sorted:
// the mode in octal with setuid (4000), setgid (2000) and sticky (1000),
// @diff for what the diff wrote, @cs for the changeset's own.
func listing(t *testing.T, cs *layer.Changeset) []string {
	t.Helper()
	var out []string
	for _, e := range cs.Entries() {
		line := e.Kind.String() + " " + e.Path
		switch e.Kind {
		case layer.Whiteout:
		case layer.Symlink:
			line += fmt.Sprintf(" -> %s %d:%d", e.Linkname, e.UID, e.GID)
		default:
			m := uint32(e.Mode.Perm())
			for bit, v := range map[fs.FileMode]uint32{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
				if e.Mode&bit != 0 {
					m |= v
				}
			}
			line += fmt.Sprintf(" %o %d:%d", m, e.UID, e.GID)
		}
		if e.Kind == layer.File {
			rc, err := cs.Open(e)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" %q", data)
		}
		switch {
		case e.ModTime.Equal(diffMtime):
			line += " @diff"
		case e.ModTime.Equal(testMtime):
			line += " @cs"
		default:
			line += " @" + e.ModTime.String()
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// diffImageTree is the image's tree of the diff tests.
var diffImageTree = []dnode{
	ddir("etc", 0o755),
	dfile("etc/keep", 0o644, "kept\n"),
	dfile("etc/same", 0o644, "rewritten, the same\n"),
	dfile("etc/changed", 0o644, "old!\n"),
	dfile("etc/chmod", 0o644, "chmod\n"),
	dfile("etc/chown", 0o644, "chown\n"),
	dfile("etc/gone", 0o644, "removed\n"),
	ddir("etc/gonedir", 0o755),
	dfile("etc/gonedir/x", 0o644, "x\n"),
	dfile("etc/cs-wh", 0o644, "whited out by the changeset\n"),
	dfile("etc/put-back", 0o644, "whited out, then put back\n"),
	ddir("etc/wh-dir", 0o755),
	dfile("etc/wh-dir/p", 0o644, "p\n"),
	dfile("etc/wh-dir/q", 0o644, "q\n"),
	dlink("etc/link", "keep"),
	dlink("etc/relink", "keep"),
	ddir("usr", 0o755), ddir("usr/bin", 0o755),
	dfile("usr/bin/tool", 0o755, "tool\n"),
	ddir("srv", 0o755),
	ddir("tmp", fs.ModeSticky|0o777),
	ddir("var", 0o755), ddir("var/spool", 0o755), ddir("var/log", 0o755),
	ddir("opt", 0o755), ddir("opt/app", 0o755),
	dfile("opt/app/a", 0o644, "a\n"),
	dfile("opt/app/b", 0o644, "b\n"),
	dfile("opt/app/f2", 0o644, "a file, then a directory\n"),
	ddir("opt/app/keepdir", 0o755),
	dfile("opt/app/keepdir/e", 0o644, "e\n"),
	ddir("opt/app/sub", 0o755),
	dfile("opt/app/sub/c", 0o644, "c\n"),
	dfile("opt/app/sub/d", 0o644, "d\n"),
	dfile("opt/app/z", 0o644, "z, after sub\n"),
}

// diffChanges fills cs with what the packages changed before the commands
// ran, and returns the same as the writable tree holds it ('w' a
// whiteout).
func diffChanges(t *testing.T, cs *layer.Changeset) []dnode {
	t.Helper()
	addBytes(t, cs, "etc/from-cs", 0, 0, "from the changeset\n")
	addBytes(t, cs, "etc/cs-removed", 0, 0, "removed by the commands\n")
	if err := cs.AddDir("etc/cs-dir", 0o755, 0, 0, testMtime); err != nil {
		t.Fatal(err)
	}
	addBytes(t, cs, "etc/cs-dir/f", 0, 0, "f\n")
	addBytes(t, cs, "etc/cs-changed", 0, 0, "before\n")
	addBytes(t, cs, "etc/cs-rewritten", 0, 0, "rewritten, the same\n")
	for _, p := range []string{"etc/cs-wh", "etc/put-back", "etc/wh-dir"} {
		if err := cs.AddWhiteout(p, testMtime); err != nil {
			t.Fatal(err)
		}
	}
	return []dnode{
		dfile("etc/from-cs", 0o644, "from the changeset\n"),
		dfile("etc/cs-removed", 0o644, "removed by the commands\n"),
		ddir("etc/cs-dir", 0o755),
		dfile("etc/cs-dir/f", 0o644, "f\n"),
		dfile("etc/cs-changed", 0o644, "before\n"),
		dfile("etc/cs-rewritten", 0o644, "rewritten, the same\n"),
		dwhiteout("etc/cs-wh"),
		dwhiteout("etc/put-back"),
		dwhiteout("etc/wh-dir"),
	}
}

// The commands' changes, as each mode's writable tree holds them after.
var (
	commandsBoth = []dnode{
		dremove("etc/cs-removed"), dremove("etc/cs-dir"),
		dfile("etc/cs-changed", 0o644, "after, longer\n"),
		dfile("etc/cs-rewritten", 0o644, "rewritten, the same\n"),
		dfile("etc/same", 0o644, "rewritten, the same\n"),
		dfile("etc/changed", 0o644, "new!\n"),
		dfile("etc/chmod", 0o600, "chmod\n"),
		{path: "etc/chown", kind: 'f', mode: 0o644, uid: 33, gid: 33, data: "chown\n"},
		dfile("etc/put-back", 0o644, "whited out, then put back\n"),
		dlink("etc/link", "keep"), dlink("etc/relink", "same"), dlink("etc/newlink", "keep"),
		dfile("usr/bin/tool", fs.ModeSetuid|0o755, "tool\n"),
		ddir("srv", fs.ModeSetgid|0o775),
		ddir("var/spool", fs.ModeSticky|0o777),
		dfile("var/log/new.log", 0o644, "log\n"), dfile("tmp/x", 0o644, "x\n"),
		ddir("proc", 0o555), ddir("dev", 0o755),
		{path: "new", kind: 'd', mode: 0o750, uid: 33, gid: 33},
		{path: "new/file", kind: 'f', mode: 0o640, uid: 33, gid: 33, data: "new\n"},
	}
	// overlayfs: copied-up parents keep the image's mode and owner;
	// removed image paths are whiteouts; a directory removed and made
	// again is opaque (so is one made over a whiteout).
	commandsOverlay = []dnode{
		ddir("usr", 0o755), ddir("usr/bin", 0o755), ddir("var", 0o755), ddir("var/log", 0o755),
		ddir("tmp", fs.ModeSticky|0o777),
		dwhiteout("etc/gone"), dwhiteout("etc/gonedir"),
		{path: "etc/wh-dir", kind: 'd', mode: 0o755, opaque: true},
		dfile("etc/wh-dir/p", 0o644, "p\n"),
		ddir("opt", 0o755),
		{path: "opt/app", kind: 'd', mode: 0o755, opaque: true},
		dfile("opt/app/a", 0o644, "a\n"),
		ddir("opt/app/f2", 0o755),
		{path: "opt/app/keepdir", kind: 'd', mode: 0o755, opaque: true},
		ddir("opt/app/sub", 0o755),
		dfile("opt/app/sub/c", 0o644, "c, changed\n"),
	}
	commandsCopy = []dnode{
		dremove("etc/gone"), dremove("etc/gonedir"),
		ddir("etc/wh-dir", 0o755),
		dfile("etc/wh-dir/p", 0o644, "p\n"),
		dremove("opt/app"), ddir("opt/app", 0o755),
		dfile("opt/app/a", 0o644, "a\n"),
		ddir("opt/app/f2", 0o755),
		ddir("opt/app/keepdir", 0o755),
		ddir("opt/app/sub", 0o755),
		dfile("opt/app/sub/c", 0o644, "c, changed\n"),
	}
)

// diffWant is the changeset after the diff, in both modes.
var diffWant = []string{
	`directory etc/wh-dir 755 0:0 @diff`,
	`file etc/changed 644 0:0 "new!\n" @diff`,
	`file etc/chmod 600 0:0 "chmod\n" @diff`,
	`file etc/chown 644 33:33 "chown\n" @diff`,
	`file etc/cs-changed 644 0:0 "after, longer\n" @diff`,
	`file etc/cs-rewritten 644 0:0 "rewritten, the same\n" @cs`,
	`whiteout etc/cs-wh @cs`,
	`file etc/from-cs 644 0:0 "from the changeset\n" @cs`,
	`whiteout etc/gone @diff`,
	`whiteout etc/gonedir @diff`,
	`symlink etc/newlink -> keep 0:0 @diff`,
	`file etc/put-back 644 0:0 "whited out, then put back\n" @diff`,
	`symlink etc/relink -> same 0:0 @diff`,
	`whiteout etc/wh-dir/q @diff`,
	`directory new 750 33:33 @diff`,
	`file new/file 640 33:33 "new\n" @diff`,
	`whiteout opt/app/b @diff`,
	`directory opt/app/f2 755 0:0 @diff`,
	`whiteout opt/app/keepdir/e @diff`,
	`file opt/app/sub/c 644 0:0 "c, changed\n" @diff`,
	`whiteout opt/app/sub/d @diff`,
	`whiteout opt/app/z @diff`,
	`directory srv 2775 0:0 @diff`,
	`file usr/bin/tool 4755 0:0 "tool\n" @diff`,
	`directory var/spool 1777 0:0 @diff`,
}

func checkListing(t *testing.T, cs *layer.Changeset, want []string) {
	t.Helper()
	got := listing(t, cs)
	want = slices.Sorted(slices.Values(want))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changeset after the diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDiffOverlayUpper: what the commands changed, read from overlayfs's
// upper directory: new and changed files, modes (setuid, setgid, sticky)
// and owners; content rewritten unchanged, copied-up parents and links
// made again alike left out; whiteouts for removed image paths, one for a
// removed directory; the image's paths an opaque directory hides whited
// out one by one, descending into the directories both have (and going on
// with the entries after them); removals of
// what only the changeset had; runtime paths and the sandbox's mount
// points left out; the writable layer removed at the end.
func TestDiffOverlayUpper(t *testing.T) {
	testenv.RequireRoot(t, "whiteouts are character devices")
	dir := t.TempDir()
	lower, upper, scratch := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "scratch")
	lay(t, lower, testMtime, diffImageTree...)
	cs := newChangeset(t)
	lay(t, upper, testMtime, append([]dnode{ddir("etc", 0o755)}, diffChanges(t, cs)...)...)
	lay(t, scratch, testMtime, dfile("x", 0o644, "x\n"))
	snap := snapshotTree(t, upper)
	lay(t, upper, diffMtime, append(commandsOverlay, commandsBoth...)...)
	if err := runDiff(t, config{Overlay: true, Lower: lower, Upper: upper, Snapshot: snap, Dirs: []string{scratch}}, cs); err != nil {
		t.Fatal(err)
	}
	checkListing(t, cs, diffWant)
	if _, err := os.Lstat(scratch); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the diff left %s: %v", scratch, err)
	}
}

// TestDiffCopyRoot: the same commands in the copy mode (the tree copied
// instead of overlayfs) give the same changeset. The copy mode reads what
// the image had from the tree's manifest; a path the changeset removed
// and the commands put back (a file, a directory) is written, however
// like the image's it is, or the changeset's whiteout would stay.
func TestDiffCopyRoot(t *testing.T) {
	testenv.RequireRoot(t, "owners are chowned")
	dir := t.TempDir()
	lower, root, scratch := filepath.Join(dir, "lower"), filepath.Join(dir, "root"), filepath.Join(dir, "scratch")
	manifest := filepath.Join(dir, "manifest")
	lay(t, lower, testMtime, diffImageTree...)
	if err := writeManifest(lower, manifest, nil); err != nil {
		t.Fatal(err)
	}
	lay(t, root, testMtime, diffImageTree...)
	cs := newChangeset(t)
	changes := diffChanges(t, cs)
	for i, n := range changes {
		if n.kind == 'w' { // the copy's extraction removes what a whiteout names
			changes[i] = dremove(n.path)
		}
	}
	lay(t, root, testMtime, changes...)
	lay(t, scratch, testMtime, dfile("x", 0o644, "x\n"))
	snap := snapshotTree(t, root)
	lay(t, root, diffMtime, append(commandsCopy, commandsBoth...)...)
	if err := runDiff(t, config{Lower: lower, Root: root, Manifest: manifest, Snapshot: snap, Dirs: []string{scratch}}, cs); err != nil {
		t.Fatal(err)
	}
	checkListing(t, cs, diffWant)
	if _, err := os.Lstat(scratch); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the diff left %s: %v", scratch, err)
	}
}

// TestDiffMaxBytes: the diff reads at most MaxBytes of the files the
// commands wrote (exactly MaxBytes passes), and a bound of 0 is the
// default one.
func TestDiffMaxBytes(t *testing.T) {
	testenv.RequireRoot(t, "like the sandbox, as root")
	for _, c := range []struct {
		max     int64
		wantErr string
	}{
		{10, ""},
		{9, "the commands wrote more than 9 bytes"},
		{0, ""},
	} {
		dir := t.TempDir()
		lower, upper := filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
		lay(t, lower, testMtime, ddir("etc", 0o755))
		lay(t, upper, testMtime, ddir("etc", 0o755))
		snap := snapshotTree(t, upper)
		lay(t, upper, diffMtime, dfile("etc/ten", 0o644, "0123456789"))
		cs := newChangeset(t)
		err := runDiff(t, config{Overlay: true, Lower: lower, Upper: upper, Snapshot: snap, MaxBytes: c.max}, cs)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("MaxBytes %d: %v", c.max, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("MaxBytes %d: error %v, want %q", c.max, err, c.wantErr)
		case c.wantErr == "":
			checkListing(t, cs, []string{`file etc/ten 644 0:0 "0123456789" @diff`})
		}
	}
}

// TestApplyDiffStream: what applyDiff does with the records the diff
// writes and with those it must refuse: an opaque marker drops the
// changeset's entries below its directory (not the directory), a
// whiteout marker replaces what the changeset had there, and a path
// leaving the root, a marker naming one, or a device is an error.
func TestApplyDiffStream(t *testing.T) {
	cs := newChangeset(t)
	if err := cs.AddDir("a", 0o755, 0, 0, testMtime); err != nil {
		t.Fatal(err)
	}
	addBytes(t, cs, "a/x", 0, 0, "x\n")
	addBytes(t, cs, "a/y/z", 0, 0, "z\n")
	addBytes(t, cs, "ab", 0, 0, "ab\n")
	addBytes(t, cs, "c/d/e", 0, 0, "e\n")
	err := applyDiff(tarOf(t,
		tarEntry{name: "a/.wh..wh..opq", typ: tar.TypeReg},
		tarEntry{name: "c/.wh.d", typ: tar.TypeReg},
		tarEntry{name: "f", typ: tar.TypeReg, mode: 0o4755, uid: 7, body: "f\n"},
		tarEntry{name: "g/", typ: tar.TypeDir, mode: 0o1777},
	), cs, diffMtime, maxEntries)
	if err != nil {
		t.Fatal(err)
	}
	checkListing(t, cs, []string{
		`directory a 755 0:0 @cs`,
		`file ab 644 0:0 "ab\n" @cs`,
		`whiteout c/d @diff`,
		`file f 4755 7:7 "f\n" @diff`,
		`directory g 1777 0:0 @diff`,
	})
	for _, e := range []tarEntry{
		{name: "../x", typ: tar.TypeReg},
		{name: "a/../../x", typ: tar.TypeReg},
		{name: "a/.wh...", typ: tar.TypeReg},
		{name: ".wh..wh..opq", typ: tar.TypeReg},
		{name: "dev/sda", typ: tar.TypeBlock},
	} {
		if err := applyDiff(tarOf(t, e), newChangeset(t), diffMtime, maxEntries); err == nil {
			t.Errorf("%s (type %q) applied", e.name, e.typ)
		}
	}
}

// TestApplyDiffLimit: a stream of limit entries is applied, one more is
// refused (the bound was one entry late: 2^20+1 changes passed).
func TestApplyDiffLimit(t *testing.T) {
	entries := []tarEntry{{name: "a/", typ: tar.TypeDir}, {name: "b/", typ: tar.TypeDir}, {name: "c/", typ: tar.TypeDir}, {name: "d/", typ: tar.TypeDir}}
	if err := applyDiff(tarOf(t, entries[:3]...), newChangeset(t), diffMtime, 3); err != nil {
		t.Errorf("3 entries, limit 3: %v", err)
	}
	if err := applyDiff(tarOf(t, entries...), newChangeset(t), diffMtime, 3); err == nil || err.Error() != "more than 3 changes" {
		t.Errorf("4 entries, limit 3: %v", err)
	}
}

// TestParseSubordinateBounds: a range may end at the last id (2^32-2,
// so start+count may be 2^32-1), not past it, and a line needs exactly
// three fields.
func TestParseSubordinateBounds(t *testing.T) {
	const file = "eve:4294967195:100\nfay:4294967196:100\ngus:0:4294967295\nhal:1:2:3\nivy:5\n"
	for _, tt := range []struct {
		name         string
		start, count uint32
	}{
		{"eve", 4294967195, 100}, // ends at the last id
		{"fay", 0, 0},            // one past it
		{"gus", 0, 4294967295},
		{"hal", 0, 0}, // four fields
		{"ivy", 0, 0}, // two
	} {
		s, c, err := parseSubordinate(strings.NewReader(file), tt.name, 1000)
		if err != nil || s != tt.start || c != tt.count {
			t.Errorf("%s: %d, %d, %v; want %d, %d", tt.name, s, c, err, tt.start, tt.count)
		}
	}
}
