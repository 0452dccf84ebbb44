package vulndb_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/vulndb"
)

func TestPushPull(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	build(t, src, records(t, "osv", adv("CVE-2024-1", "", vulndb.StatusFixed, "1")), records(t, "debian-tracker", adv("CVE-2024-2", "", vulndb.StatusNoDSA, "")))

	ref := host + "/drydock/vulndb:1"
	d1, err := vulndb.Push(ctx, src, ref)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := vulndb.Push(ctx, src, "http://"+ref)
	if err != nil || d1 != d2 {
		t.Errorf("pushing twice: %v %v, %v (want the same digest)", d1, d2, err)
	}
	desc, err := remote.Get(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != d1 || !strings.Contains(string(desc.Manifest), `"artifactType":"application/vnd.drydock.vulndb.v1"`) ||
		!strings.Contains(string(desc.Manifest), `"org.drydock.vulndb.sources":"debian-tracker,osv"`) {
		t.Errorf("manifest %s (%v)", desc.Manifest, desc.Digest)
	}

	dst := filepath.Join(dir, "pulled", "drydock-vuln.db")
	meta, err := vulndb.Pull(ctx, ref+"@"+d1.String(), dst)
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, dst)
	want := open(t, src).Meta()
	if !reflect.DeepEqual(meta, want) || !reflect.DeepEqual(db.Meta(), want) {
		t.Errorf("pulled meta %+v, want %+v", meta, want)
	}
	a, b := mustRead(t, src), mustRead(t, dst)
	if string(a) != string(b) {
		t.Error("pulled file differs from the pushed one")
	}

	// Not a database: an image at the ref is refused, the local DB kept.
	img, _ := random.Image(100, 1)
	if err := remote.Write(mustRef(t, host+"/drydock/vulndb:img"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := vulndb.Pull(ctx, host+"/drydock/vulndb:img", dst); err == nil || !strings.Contains(err.Error(), "not a drydock database") {
		t.Errorf("pulling an image: %v", err)
	}
	if _, err := vulndb.Pull(ctx, host+"/drydock/vulndb:missing", dst); err == nil || !strings.Contains(err.Error(), "vulndb:missing") {
		t.Errorf("pulling a missing tag: %v", err)
	}
	if _, err := vulndb.Push(ctx, filepath.Join(dir, "nope.db"), ref); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pushing a missing file: %v", err)
	}
	if string(mustRead(t, dst)) != string(a) {
		t.Error("failed pulls changed the local database")
	}
	assertNoTempFiles(t, filepath.Dir(dst))
}

// corrupting flips the last byte of every blob the registry serves.
type corrupting struct{ http.ResponseWriter }

func (c corrupting) Write(b []byte) (int, error) {
	if len(b) > 0 {
		b = append([]byte(nil), b...)
		b[len(b)-1] ^= 0xff
	}
	return c.ResponseWriter.Write(b)
}

func TestPullRefusesCorruptBlob(t *testing.T) {
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var corrupt atomic.Bool
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if corrupt.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			w = corrupting{w}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	build(t, src, records(t, "osv", adv("CVE-2024-1", "", vulndb.StatusFixed, "1")))
	ref := strings.TrimPrefix(reg.URL, "http://") + "/drydock/vulndb:1"
	if _, err := vulndb.Push(ctx, src, ref); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst.db")
	build(t, dst, records(t, "osv", adv("CVE-2024-9", "", vulndb.StatusFixed, "9")))
	before := mustRead(t, dst)
	corrupt.Store(true)
	if _, err := vulndb.Pull(ctx, ref, dst); err == nil || !strings.Contains(err.Error(), "pulling database from") {
		t.Errorf("pull of a corrupt blob: %v, want an error (gzip checksum or digest)", err)
	}
	if string(mustRead(t, dst)) != string(before) {
		t.Error("a failed pull changed the local database")
	}
	assertNoTempFiles(t, dir)
}
