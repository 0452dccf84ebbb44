package regstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/s3test"
)

func newSQLDriver(t *testing.T, tg dbtest.Target) *SQLDriver {
	t.Helper()
	d, err := NewSQLDriver(context.Background(), tg.Open(t, Component))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSQLDriver checks the index driver's file and directory semantics on
// every engine: what distribution's drivers promise and the registry uses.
func TestSQLDriver(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		ctx := context.Background()
		tg := newTarget(t)
		d := newSQLDriver(t, tg)
		const root = "/docker/registry/v2/repositories/a/_manifests"
		files := map[string]string{
			root + "/tags/v1/current/link":                "sha256:1",
			root + "/tags/v2/current/link":                "sha256:2",
			root + "/tags/v10/current/link":               "sha256:10",
			root + "/revisions/sha256/abc/link":           "sha256:abc",
			"/docker/registry/v2/repositories/a0/_layers": "not under a/",
		}
		for p, c := range files {
			if err := d.PutContent(ctx, p, []byte(c)); err != nil {
				t.Fatal(err)
			}
		}
		other := newSQLDriver(t, tg) // another replica
		if b, err := other.GetContent(ctx, root+"/tags/v1/current/link"); err != nil || string(b) != "sha256:1" {
			t.Fatalf("GetContent = %q, %v", b, err)
		}
		tags, err := other.List(ctx, root+"/tags")
		want := []string{root + "/tags/v1", root + "/tags/v10", root + "/tags/v2"}
		if err != nil || !slices.Equal(tags, want) {
			t.Errorf("List(tags) = %v, %v; want %v", tags, err, want)
		}
		if l, err := other.List(ctx, "/docker/registry/v2/repositories/a"); err != nil || len(l) != 1 || l[0] != "/docker/registry/v2/repositories/a/_manifests" {
			t.Errorf("List(repo a) = %v, %v (a0 is not a's child)", l, err)
		}
		if fi, err := other.Stat(ctx, root+"/tags"); err != nil || !fi.IsDir() {
			t.Errorf("Stat(dir) = %+v, %v", fi, err)
		}
		if fi, err := other.Stat(ctx, root+"/tags/v2/current/link"); err != nil || fi.IsDir() || fi.Size() != 8 || fi.ModTime().IsZero() {
			t.Errorf("Stat(file) = %+v, %v", fi, err)
		}
		var nf storagedriver.PathNotFoundError
		if _, err := other.Stat(ctx, root+"/tags/v3"); !errors.As(err, &nf) {
			t.Errorf("Stat(missing) = %v", err)
		}
		if _, err := other.List(ctx, root+"/nothing"); !errors.As(err, &nf) {
			t.Errorf("List(missing) = %v", err)
		}
		if err := other.Move(ctx, root+"/tags/v2/current/link", root+"/tags/v3/current/link"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.GetContent(ctx, root+"/tags/v2/current/link"); !errors.As(err, &nf) {
			t.Errorf("moved file still there: %v", err)
		}
		rc, err := d.Reader(ctx, root+"/tags/v3/current/link", 7)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(rc); string(b) != "2" {
			t.Errorf("Reader at 7 = %q", b)
		}
		w, err := d.Writer(ctx, root+"/tags/v3/current/link", true)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte("+"))
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if b, _ := other.GetContent(ctx, root+"/tags/v3/current/link"); string(b) != "sha256:2+" {
			t.Errorf("after append: %q", b)
		}
		if err := other.Delete(ctx, root+"/tags"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Stat(ctx, root+"/tags"); !errors.As(err, &nf) {
			t.Errorf("deleted directory: %v", err)
		}
		if _, err := d.Stat(ctx, root+"/revisions/sha256/abc/link"); err != nil {
			t.Errorf("a sibling went with the delete: %v", err)
		}
		if err := d.Delete(ctx, root+"/tags"); !errors.As(err, &nf) {
			t.Errorf("deleting again: %v", err)
		}
		if err := d.PutContent(ctx, root+"/empty", nil); err != nil {
			t.Fatal(err)
		}
		if b, err := d.GetContent(ctx, root+"/empty"); err != nil || len(b) != 0 {
			t.Errorf("empty file: %q %v", b, err)
		}
	})
}

func TestRoute(t *testing.T) {
	for p, want := range map[string]place{
		"/": inBoth, "/docker": inBoth, "/docker/registry/v2": inBoth,
		"/docker/registry/v2/repositories":                           inBoth,
		"/docker/registry/v2/repositories/quarantine/app":            inBoth,
		"/docker/registry/v2/repositories/quarantine/app/_manifests": inIndex,
		"/docker/registry/v2/repositories/a/_layers/sha256/x/link":   inIndex,
		"/docker/registry/v2/repositories/a/_referrers/sha256/x/y":   inIndex,
		"/docker/registry/v2/repositories/a/_uploads/id/state":       inBlobs,
		"/docker/registry/v2/repositoriesx/a/_manifests":             inBlobs,
		"/docker/registry/v2/blobs/sha256/ab/abcd/data":              inBlobs,
		"/docker/registry/v2/_tmp/x":                                 inBlobs,
	} {
		if got := route(p); got != want {
			t.Errorf("route(%s) = %d, want %d", p, got, want)
		}
	}
}

// TestCacheServesContentAddressedReads reads a blob through the cache over
// a real S3 server, stops the server, and reads it again: a manifest HEAD
// or GET needs no round trip once read, and nothing else is cached.
func TestCacheServesContentAddressedReads(t *testing.T) {
	srv := s3test.New(t)
	blobs, err := factory.Create(context.Background(), "s3aws", srv.Parameters(srv.NewBucket(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := NewCache(blobs, 0)
	data := "/docker/registry/v2/blobs/sha256/ab/ab" + string(bytes.Repeat([]byte("0"), 62)) + "/data"
	other := "/docker/registry/v2/repositories/a/_uploads/x/state"
	if _, err := c.Stat(ctx, data); err == nil {
		t.Fatal("missing blob found")
	}
	for p, content := range map[string]string{data: "{\"manifest\":1}", other: "state"} {
		if err := c.PutContent(ctx, p, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	// Absence was not cached: the blob is found once written.
	if fi, err := c.Stat(ctx, data); err != nil || fi.Size() != 14 {
		t.Fatalf("Stat after write = %v, %v", fi, err)
	}
	rc, err := c.Reader(ctx, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(rc)
	rc.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Stat(ctx, data); err != nil || fi.Size() != 14 {
		t.Errorf("Stat with S3 down = %v, %v", fi, err)
	}
	if b, err := c.GetContent(ctx, data); err != nil || string(b) != "{\"manifest\":1}" {
		t.Errorf("GetContent with S3 down = %q, %v", b, err)
	}
	if _, err := c.GetContent(ctx, other); err == nil {
		t.Error("a mutable path was served from the cache")
	}
}

// TestOpenSync: the filesystem driver's storage reads without updating
// access times and has a sync, which works
// before its root exists and after; object or in-memory storage has none;
// a root that cannot be opened is an error that names it.
func TestOpenSync(t *testing.T) {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sync == nil {
		t.Fatal("the filesystem driver's storage has no sync")
	}
	if _, ok := s.Driver.(*noAtime); !ok {
		t.Errorf("the filesystem driver reads through %T, want NoAtime", s.Driver)
	}
	if err := s.Sync(); err != nil {
		t.Errorf("sync before the root exists: %v", err)
	}
	if err := s.Driver.PutContent(t.Context(), "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Errorf("sync: %v", err)
	}

	mem := config.Default()
	mem.Data = t.TempDir()
	mem.Storage.Driver = "inmemory"
	if err := mem.Validate(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), mem, nil); err != nil || s.Sync != nil {
		t.Errorf("in-memory storage: sync %v, %v; want none", s.Sync != nil, err)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SyncFilesystem(filepath.Join(file, "root"))(); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("a root under a file: %v", err)
	}
}
