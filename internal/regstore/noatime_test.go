package regstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"golang.org/x/sys/unix"
)

func atime(t *testing.T, name string) time.Time {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	return time.Unix(st.Atim.Unix())
}

// TestNoAtime: reads through NoAtime leave access times alone where a
// plain read updates them, and keep the filesystem driver's semantics.
func TestNoAtime(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	fsd := filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100})
	d := NoAtime(fsd, root)
	files := map[string]string{"/a/b/link": "sha256:1", "/a/c/data": "0123456789", "/control": "x"}
	for p, c := range files {
		if err := fsd.PutContent(ctx, p, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	// Access times an hour old, older than the change times Chtimes sets:
	// relatime updates them on the next plain read.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, p := range []string{"/a/b/link", "/a/c/data", "/control", "/a", "/a/b", "/a/c"} {
		if err := os.Chtimes(filepath.Join(root, p), past, past); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.ReadFile(filepath.Join(root, "control")); err != nil {
		t.Fatal(err)
	}
	if atime(t, filepath.Join(root, "control")).Equal(past) {
		t.Skipf("a plain read does not update access times on the filesystem of %s (mounted noatime?): nothing to check", root)
	}

	if b, err := d.GetContent(ctx, "/a/b/link"); err != nil || string(b) != "sha256:1" {
		t.Errorf("GetContent = %q, %v", b, err)
	}
	rc, err := d.Reader(ctx, "/a/c/data", 4)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err != nil || string(b) != "456789" {
		t.Errorf("Reader at 4 = %q, %v", b, err)
	}
	rc.Close()
	rc, err = d.Reader(ctx, "/a/c/data", 100)
	if err != nil {
		t.Fatalf("Reader past the end: %v", err)
	}
	if b, err := io.ReadAll(rc); err != nil || len(b) != 0 {
		t.Errorf("Reader past the end = %q, %v; want nothing", b, err)
	}
	rc.Close()
	if l, err := d.List(ctx, "/a"); err != nil || !slices.Equal(sorted(l), []string{"/a/b", "/a/c"}) {
		t.Errorf("List(/a) = %v, %v", l, err)
	}
	var walked []string
	err = d.Walk(ctx, "/", func(fi storagedriver.FileInfo) error {
		walked = append(walked, fi.Path())
		return nil
	})
	if want := []string{"/a", "/a/b", "/a/b/link", "/a/c", "/a/c/data", "/control"}; err != nil || !slices.Equal(sorted(walked), want) {
		t.Errorf("Walk(/) = %v, %v; want %v", walked, err, want)
	}
	for _, p := range []string{"/a/b/link", "/a/c/data", "/a", "/a/b", "/a/c"} {
		if got := atime(t, filepath.Join(root, p)); !got.Equal(past) {
			t.Errorf("%s: access time %v after reads through NoAtime, want %v unchanged", p, got, past)
		}
	}

	for _, tc := range []struct {
		name string
		do   func() error
		want any
	}{
		{"GetContent missing", func() error { _, err := d.GetContent(ctx, "/a/none"); return err }, storagedriver.PathNotFoundError{}},
		{"List missing", func() error { _, err := d.List(ctx, "/none"); return err }, storagedriver.PathNotFoundError{}},
		{"Reader invalid path", func() error { _, err := d.Reader(ctx, "/a/../../etc/passwd", 0); return err }, storagedriver.InvalidPathError{}},
		{"Reader of the root", func() error { _, err := d.Reader(ctx, "/", 0); return err }, storagedriver.InvalidPathError{}},
		{"List of a parent", func() error { _, err := d.List(ctx, "/.."); return err }, storagedriver.InvalidPathError{}},
		{"GetContent of a dot", func() error { _, err := d.GetContent(ctx, "/a/./b/link"); return err }, storagedriver.InvalidPathError{}},
		{"List invalid path", func() error { _, err := d.List(ctx, "a"); return err }, storagedriver.InvalidPathError{}},
		{"Reader negative offset", func() error { _, err := d.Reader(ctx, "/a/c/data", -1); return err }, storagedriver.InvalidOffsetError{}},
		{"List of a file", func() error { _, err := d.List(ctx, "/control"); return err }, storagedriver.Error{}},
	} {
		err := tc.do()
		ok := false
		switch tc.want.(type) {
		case storagedriver.PathNotFoundError:
			var e storagedriver.PathNotFoundError
			ok = errors.As(err, &e) && e.DriverName == "filesystem"
		case storagedriver.InvalidPathError:
			var e storagedriver.InvalidPathError
			ok = errors.As(err, &e)
		case storagedriver.InvalidOffsetError:
			var e storagedriver.InvalidOffsetError
			ok = errors.As(err, &e)
		case storagedriver.Error:
			var e storagedriver.Error
			ok = errors.As(err, &e)
		}
		if !ok {
			t.Errorf("%s: error %v (%T), want a %T", tc.name, err, err, tc.want)
		}
	}
	if d.Name() != "filesystem" {
		t.Errorf("Name = %q", d.Name())
	}
}

// TestNoAtimeNotOwner: a file the process does not own (and may not
// open with O_NOATIME) is read anyway. As root, one thread gives up its
// filesystem capabilities with setfsuid.
func TestNoAtimeNotOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to read as another user on one thread")
	}
	ctx := context.Background()
	root := t.TempDir()
	fsd := filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100})
	if err := fsd.PutContent(ctx, "/x/link", []byte("sha256:1")); err != nil {
		t.Fatal(err)
	}
	for dir := filepath.Join(root, "x"); ; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if dir == filepath.Dir(root) {
			break
		}
	}
	if err := os.Chmod(filepath.Join(root, "x", "link"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := NoAtime(fsd, root)
	type result struct {
		direct    error
		got       []byte
		err       error
		setupFail error
	}
	done := make(chan result)
	go func() {
		// The thread is not unlocked: it ends with the goroutine, with
		// its changed filesystem uid.
		runtime.LockOSThread()
		var r result
		// setfsuid reports the previous uid, never an error: set it
		// twice and check that the second call saw the first.
		unix.SetfsuidRetUid(65534)
		if prev, _ := unix.SetfsuidRetUid(65534); prev != 65534 {
			r.setupFail = errors.New("setfsuid did not take")
			done <- r
			return
		}
		_, r.direct = os.OpenFile(filepath.Join(root, "x", "link"), os.O_RDONLY|unix.O_NOATIME, 0)
		r.got, r.err = d.GetContent(ctx, "/x/link")
		done <- r
	}()
	r := <-done
	if r.setupFail != nil {
		t.Fatal(r.setupFail)
	}
	if !errors.Is(r.direct, unix.EPERM) {
		t.Fatalf("O_NOATIME as another user: %v, want EPERM (the case under test does not arise)", r.direct)
	}
	if r.err != nil || string(r.got) != "sha256:1" {
		t.Errorf("GetContent as another user = %q, %v; want the content", r.got, r.err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestNoAtimeKeepsWritesInside: the calls NoAtime passes to the wrapped
// driver refuse paths with "." or ".." elements, which distribution's
// filesystem driver would resolve outside its root, and work as before on
// valid paths.
func TestNoAtimeKeepsWritesInside(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	root := filepath.Join(parent, "store")
	outside := filepath.Join(parent, "outside")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := NoAtime(filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}), root)
	if err := d.PutContent(ctx, "/a/data", []byte("inside")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"PutContent", func() error { return d.PutContent(ctx, "/a/../../put", []byte("x")) }},
		{"PutContent over a file outside", func() error { return d.PutContent(ctx, "/a/../../outside", []byte("x")) }},
		{"Writer", func() error {
			w, err := d.Writer(ctx, "/a/../../written", false)
			if err == nil {
				_, _ = w.Write([]byte("x"))
				_ = w.Commit(ctx)
				_ = w.Close()
			}
			return err
		}},
		{"Stat", func() error { _, err := d.Stat(ctx, "/a/../../outside"); return err }},
		{"Move out", func() error { return d.Move(ctx, "/a/data", "/a/../../moved") }},
		{"Move in", func() error { return d.Move(ctx, "/a/../../outside", "/b/taken") }},
		{"Delete", func() error { return d.Delete(ctx, "/a/../../outside") }},
		{"Delete of a dot", func() error { return d.Delete(ctx, "/a/.") }},
	} {
		var e storagedriver.InvalidPathError
		if err := tc.do(); !errors.As(err, &e) {
			t.Errorf("%s: error %v (%T), want an InvalidPathError", tc.name, err, err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Errorf("the file outside the root reads %q, %v; want it untouched", b, err)
	}
	for _, n := range []string{"put", "written", "moved"} {
		if _, err := os.Lstat(filepath.Join(parent, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists outside the root (%v)", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "a", "data")); err != nil {
		t.Errorf("the file inside the root: %v", err)
	}

	// Valid paths behave as the wrapped driver's.
	w, err := d.Writer(ctx, "/b/w", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := d.Stat(ctx, "/b/w"); err != nil || fi.Size() != 5 {
		t.Errorf("Stat after Writer: %v, %v", fi, err)
	}
	if err := d.Move(ctx, "/b/w", "/c/w"); err != nil {
		t.Errorf("Move: %v", err)
	}
	if err := d.Delete(ctx, "/c"); err != nil {
		t.Errorf("Delete: %v", err)
	}
	var nf storagedriver.PathNotFoundError
	if _, err := d.Stat(ctx, "/c/w"); !errors.As(err, &nf) {
		t.Errorf("Stat after Delete: %v, want PathNotFoundError", err)
	}
}
