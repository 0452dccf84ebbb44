package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/regstore"
)

// sharedStorage makes two driver stacks over the same storage, as two
// replicas have: two filesystem drivers on one directory, two S3 stacks
// (each with its own cache) on one bucket, and the same with the index in
// one PostgreSQL database.
var sharedStorage = []struct {
	name string
	new  func(t *testing.T) (a, b storagedriver.StorageDriver)
}{
	{"filesystem", func(t *testing.T) (storagedriver.StorageDriver, storagedriver.StorageDriver) {
		dir := t.TempDir()
		p := filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 100}
		return filesystem.New(p), filesystem.New(p)
	}},
	{"s3", func(t *testing.T) (storagedriver.StorageDriver, storagedriver.StorageDriver) {
		params := s3Bucket(t)
		return s3Stack(t, params, nil), s3Stack(t, params, nil)
	}},
	{"s3+postgres", func(t *testing.T) (storagedriver.StorageDriver, storagedriver.StorageDriver) {
		params, tg := s3Bucket(t), dbtest.Postgres(t)
		index := func() *regstore.SQLDriver {
			d, err := regstore.NewSQLDriver(context.Background(), tg.Open(t, regstore.Component))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		return s3Stack(t, params, index()), s3Stack(t, params, index())
	}},
}

// TestUploadAcrossReplicas sends each request of a chunked upload to the
// other replica, then reads the blob from both: no sticky sessions needed.
func TestUploadAcrossReplicas(t *testing.T) {
	for _, st := range sharedStorage {
		t.Run(st.name, func(t *testing.T) {
			da, db := st.new(t)
			a, b := newTestClient(t, da), newTestClient(t, db)
			content := make([]byte, 3<<20+123)
			_, _ = rand.Read(content)
			d := digest.FromBytes(content)
			loc := a.do("POST", "/v2/r/blobs/uploads/", nil).header.Get("Location")
			replicas := []*testClient{b, a, b}
			cuts := []int{0, 1 << 20, 2 << 20, len(content)}
			for i, c := range replicas {
				c.expect(c.do("PATCH", loc, content[cuts[i]:cuts[i+1]], fmt.Sprintf("Content-Range: %d-%d", cuts[i], cuts[i+1]-1)), http.StatusAccepted, "")
			}
			r := a.do("GET", loc, nil)
			if got := r.header.Get("Range"); got != "0-"+strconv.Itoa(len(content)-1) {
				t.Fatalf("status on the other replica: Range %q", got)
			}
			b.expect(b.do("PUT", loc+"?digest="+d.String(), nil), http.StatusCreated, "")
			for _, c := range []*testClient{a, b} {
				if got := c.do("GET", "/v2/r/blobs/"+d.String(), nil).body; !bytes.Equal(got, content) {
					t.Errorf("blob read back differs (%d bytes)", len(got))
				}
			}
		})
	}
}

// TestConcurrentChunksNeverCorrupt races two chunks with different bytes
// for the same range of one upload, on two replicas, then completes the
// upload with one of the two digests: whichever wins, a blob is never
// stored under a digest its bytes do not have.
func TestConcurrentChunksNeverCorrupt(t *testing.T) {
	for _, st := range sharedStorage {
		t.Run(st.name, func(t *testing.T) {
			da, db := st.new(t)
			a, b := newTestClient(t, da), newTestClient(t, db)
			stored := 0
			for i := range 12 {
				x, y := make([]byte, 64<<10), make([]byte, 64<<10)
				_, _ = rand.Read(x)
				_, _ = rand.Read(y)
				loc := a.do("POST", "/v2/race/blobs/uploads/", nil).header.Get("Location")
				var wg sync.WaitGroup
				for _, p := range []struct {
					c    *testClient
					body []byte
				}{{a, x}, {b, y}} {
					wg.Go(func() { p.c.doNoFatal("PATCH", loc, p.body, "Content-Range: 0-65535") })
				}
				wg.Wait()
				want := digest.FromBytes(x)
				if i%2 == 1 {
					want = digest.FromBytes(y)
				}
				r := []*testClient{a, b}[i%2].doNoFatal("PUT", loc+"?digest="+want.String(), nil)
				switch r.status {
				case http.StatusCreated:
					stored++
				case http.StatusBadRequest, http.StatusNotFound:
				default:
					t.Fatalf("PUT answered %d: %s", r.status, r.body)
				}
			}
			// Every stored blob holds the bytes of its digest.
			ctx := context.Background()
			checked := 0
			err := da.Walk(ctx, "/docker/registry/v2/blobs", func(fi storagedriver.FileInfo) error {
				if fi.IsDir() || !strings.HasSuffix(fi.Path(), "/data") {
					return nil
				}
				parts := strings.Split(fi.Path(), "/")
				d := digest.NewDigestFromEncoded(digest.Algorithm(parts[5]), parts[7])
				rc, err := da.Reader(ctx, fi.Path(), 0)
				if err != nil {
					return err
				}
				defer rc.Close()
				h := d.Algorithm().Hash()
				if _, err := io.Copy(h, rc); err != nil {
					return err
				}
				if got := digest.NewDigest(d.Algorithm(), h); got != d {
					t.Errorf("CORRUPT: %s holds bytes hashing to %s", d, got)
				}
				checked++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if stored == 0 || checked != stored {
				t.Errorf("%d uploads stored, %d blobs checked: the race never let one through", stored, checked)
			}
		})
	}
}
