package gc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/regstore"
)

// setup is a registry over a real filesystem driver whose writes go
// through a member of the collection barrier on a real database.
type setup struct {
	t      testing.TB
	db     *database.DB
	member *Member
	drv    storagedriver.StorageDriver
	root   string
	reg    *registry.Registry
	srv    *httptest.Server
	// synced, when set, is told each storage sync's start and duration
	// (filesystem driver only).
	synced *atomic.Pointer[func(start time.Time, d time.Duration)]
}

func newSetup(t testing.TB, tg dbtest.Target, opts ...registry.Option) *setup {
	return newSetupWith(t, tg, nil, opts...)
}

// newSetupWith is newSetup with more registry options built on the
// collector's database once it is migrated (quotas).
func newSetupWith(t testing.TB, tg dbtest.Target, more func(db *database.DB) []registry.Option, opts ...registry.Option) *setup {
	return newSetupOn(t, tg, nil, more, opts...)
}

// newSetupOn is newSetupWith on the storage storage returns (nil: the
// filesystem driver in a temporary directory).
func newSetupOn(t testing.TB, tg dbtest.Target, storage func(testing.TB) storagedriver.StorageDriver, more func(db *database.DB) []registry.Option, opts ...registry.Option) *setup {
	t.Helper()
	ctx := context.Background()
	db := tg.Open(t, Component)
	m, err := Join(ctx, db, WithPollInterval(10e6))
	if err != nil {
		t.Fatal(err)
	}
	if more != nil {
		opts = append(opts, more(db)...)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; _ = m.Close() })
	root := t.TempDir()
	drv := regstore.NoAtime(filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100}), root)
	synced := new(atomic.Pointer[func(time.Time, time.Duration)])
	syncfs := regstore.SyncFilesystem(root)
	base := []registry.Option{registry.WithBarrier(m), registry.WithStorageSync(func() error {
		start := time.Now()
		err := syncfs()
		if f := synced.Load(); f != nil {
			(*f)(start, time.Since(start))
		}
		return err
	})}
	if storage != nil {
		drv = storage(t)
		base = base[:1]
	}
	reg, err := registry.New(ctx, drv, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &setup{t: t, db: db, member: m, drv: drv, root: root, reg: reg, srv: srv, synced: synced}
}

// do sends a request to the registry and returns the status and body.
func (s *setup) do(method, path string, body []byte, headers ...string) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// pushBlob uploads content to repo (monolithic POST) and returns its
// descriptor.
func (s *setup) pushBlob(repo string, content []byte) ocispec.Descriptor {
	s.t.Helper()
	d := digest.FromBytes(content)
	code, _, body := s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content)
	if code != http.StatusCreated {
		s.t.Fatalf("push blob to %s: %d %s", repo, code, body)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(content))}
}

// mount links blob d from repository from into repo; it reports whether
// the registry mounted it (201) or offered an upload instead (202).
func (s *setup) mount(repo string, d digest.Digest, from string) bool {
	s.t.Helper()
	code, _, body := s.do("POST", "/v2/"+repo+"/blobs/uploads/?mount="+d.String()+"&from="+from, nil)
	switch code {
	case http.StatusCreated:
		return true
	case http.StatusAccepted:
		return false
	}
	s.t.Fatalf("mount %s into %s: %d %s", d, repo, code, body)
	return false
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// image is a pushed manifest with what it references.
type image struct {
	desc  ocispec.Descriptor
	blobs []ocispec.Descriptor
	body  []byte
}

// pushImage pushes a config and layers (shared ones given, plus fresh ones)
// and a manifest referencing them, under ref (a tag, or "" for by digest).
func (s *setup) pushImage(repo, ref string, fresh int, shared []ocispec.Descriptor, subject *ocispec.Descriptor) image {
	s.t.Helper()
	cfg := s.pushBlob(repo, []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"n":%q}`, digest.FromBytes(randomBytes(8)))))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	layers := append([]ocispec.Descriptor(nil), shared...)
	for range fresh {
		layers = append(layers, s.pushBlob(repo, randomBytes(1000)))
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers, Subject: subject}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	desc := s.putManifest(repo, ref, ocispec.MediaTypeImageManifest, body)
	return image{desc: desc, blobs: append([]ocispec.Descriptor{cfg}, layers...), body: body}
}

// putManifest puts body under ref (a tag, or "" for its digest).
func (s *setup) putManifest(repo, ref, mediaType string, body []byte) ocispec.Descriptor {
	s.t.Helper()
	d := digest.FromBytes(body)
	if ref == "" {
		ref = d.String()
	}
	code, _, rb := s.do("PUT", "/v2/"+repo+"/manifests/"+ref, body, "Content-Type: "+mediaType)
	if code != http.StatusCreated {
		s.t.Fatalf("put manifest %s:%s: %d %s", repo, ref, code, rb)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
}

// pushIndex pushes an index of the given manifests under ref.
func (s *setup) pushIndex(repo, ref string, children ...ocispec.Descriptor) ocispec.Descriptor {
	s.t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	idx.SchemaVersion = 2
	body, _ := json.Marshal(idx)
	return s.putManifest(repo, ref, ocispec.MediaTypeImageIndex, body)
}

// status returns the status of a GET.
func (s *setup) status(path string) int {
	s.t.Helper()
	code, _, _ := s.do("GET", path, nil)
	return code
}

// mustPull checks that repo:ref resolves and that every blob of img reads.
func (s *setup) mustPull(repo, ref string, img image) {
	s.t.Helper()
	if code := s.status("/v2/" + repo + "/manifests/" + ref); code != http.StatusOK {
		s.t.Errorf("%s:%s: manifest %d", repo, ref, code)
	}
	for _, b := range img.blobs {
		code, _, body := s.do("GET", "/v2/"+repo+"/blobs/"+b.Digest.String(), nil)
		if code != http.StatusOK || digest.FromBytes(body) != b.Digest {
			s.t.Errorf("%s: blob %s: %d", repo, b.Digest, code)
		}
	}
}

// collect runs a collection led by the setup's member.
func (s *setup) collect(o registry.CollectOptions) *registry.Report {
	s.t.Helper()
	ctx := context.Background()
	if !o.DryRun {
		c, err := s.member.Lead(ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		defer c.Finish(ctx)
		o.Coordinator = c
	}
	rep, err := s.reg.Collect(ctx, o)
	if err != nil {
		s.t.Fatal(err)
	}
	return rep
}

// blobsOnDisk lists the digests of the blobs stored on the filesystem.
func (s *setup) blobsOnDisk() map[digest.Digest]bool {
	s.t.Helper()
	out := map[digest.Digest]bool{}
	err := s.drv.Walk(context.Background(), "/docker/registry/v2/blobs", func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() && strings.HasSuffix(fi.Path(), "/data") {
			parts := strings.Split(fi.Path(), "/")
			out[digest.Digest(parts[len(parts)-4]+":"+parts[len(parts)-2])] = true
		}
		return nil
	})
	if err != nil && !strings.Contains(err.Error(), "not found") {
		s.t.Fatal(err)
	}
	return out
}
