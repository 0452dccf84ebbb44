package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/regstore"
	"github.com/drydock-project/drydock/internal/s3test"
)

// modelImage is a manifest the model knows, with every digest it makes
// reachable (itself, its blobs, an index's children and theirs).
type modelImage struct {
	digest    digest.Digest
	reach     []digest.Digest
	index     bool
	children  []*modelImage
	referrers []*modelImage
}

// client is one concurrent client of the interleaving test: it alone
// changes its repository's tags, so its model of them is exact; it
// mounts blobs from the other clients' repositories, which they may
// delete meanwhile.
type client struct {
	t    *testing.T
	s    *setup
	id   int
	repo string
	rnd  *rand.Rand
	tags map[string]*modelImage // the model: tag -> image
	// live are the tags promoted into live/<repo> (by Registry.Copy, as
	// the gatekeeper promotes): tag -> the image with the referrers it
	// had when promoted (Copy brings them along).
	live map[string]*modelImage
	// pool are blobs published for mounting: digest -> content and
	// repository (shared by all clients).
	pool *blobPool
	ops  map[string]int
	// retries counts pushes a collection made fail (a blob deleted
	// between its upload and the manifest), which the client pushed again.
	retries int
}

type blobPool struct {
	mu    sync.Mutex
	blobs []poolBlob
}

type poolBlob struct {
	repo    string
	content []byte
}

func (p *blobPool) add(repo string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.blobs) < 64 {
		p.blobs = append(p.blobs, poolBlob{repo, b})
	} else {
		p.blobs[rand.IntN(len(p.blobs))] = poolBlob{repo, b}
	}
}

func (p *blobPool) pick(rnd *rand.Rand) (poolBlob, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.blobs) == 0 {
		return poolBlob{}, false
	}
	return p.blobs[rnd.IntN(len(p.blobs))], true
}

// upload pushes content (monolithic POST); false when the registry
// refused it.
func (c *client) upload(content []byte) (ocispec.Descriptor, bool) {
	d := digest.FromBytes(content)
	code, _, _ := c.s.do("POST", "/v2/"+c.repo+"/blobs/uploads/?digest="+d.String(), content)
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(content))}, code == http.StatusCreated
}

// pushImage pushes an image of fresh layers, perhaps one mounted from
// another repository, and perhaps a subject; under tag, or by digest when
// tag is "". It retries when a collection deleted an unreferenced blob
// before the manifest arrived (grace 0).
func (c *client) pushImage(tag string, subject *modelImage) (*modelImage, bool) {
	for attempt := 0; attempt < 5; attempt++ {
		cfgBytes := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"n":"%d-%d"}`, c.id, c.rnd.Int64())
		cfg, ok := c.upload(cfgBytes)
		if !ok {
			continue
		}
		cfg.MediaType = ocispec.MediaTypeImageConfig
		var layers []ocispec.Descriptor
		for range 1 + c.rnd.IntN(2) {
			b := randomBytes(64 + c.rnd.IntN(512))
			l, ok := c.upload(b)
			if !ok {
				continue
			}
			layers = append(layers, l)
			if c.rnd.IntN(2) == 0 {
				c.pool.add(c.repo, b)
			}
		}
		if pb, ok := c.pool.pick(c.rnd); ok && pb.repo != c.repo && c.rnd.IntN(2) == 0 {
			d := digest.FromBytes(pb.content)
			code, _, _ := c.s.do("POST", "/v2/"+c.repo+"/blobs/uploads/?mount="+d.String()+"&from="+pb.repo, nil)
			c.ops["mount"]++
			if code == http.StatusCreated {
				layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(pb.content))})
			} else if l, ok := c.upload(pb.content); ok {
				layers = append(layers, l)
			}
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers}
		m.SchemaVersion = 2
		if subject != nil {
			m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject.digest, Size: 1}
			m.ArtifactType = "application/vnd.example.report"
		}
		body, _ := json.Marshal(m)
		d := digest.FromBytes(body)
		ref := tag
		if ref == "" {
			ref = d.String()
		}
		code, _, _ := c.s.do("PUT", "/v2/"+c.repo+"/manifests/"+ref, body, "Content-Type: "+ocispec.MediaTypeImageManifest)
		if code == http.StatusCreated {
			img := &modelImage{digest: d, reach: []digest.Digest{d, cfg.Digest}}
			for _, l := range layers {
				img.reach = append(img.reach, l.Digest)
			}
			return img, true
		}
		if code != http.StatusBadRequest {
			c.t.Errorf("client %d: put manifest: %d", c.id, code)
			return nil, false
		}
		c.retries++
	}
	return nil, false
}

// images are the model's distinct tagged images.
func (c *client) images() []*modelImage {
	var out []*modelImage
	for _, tag := range slices.Sorted(mapKeys(c.tags)) {
		if img := c.tags[tag]; !slices.Contains(out, img) {
			out = append(out, img)
		}
	}
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// step runs one random operation and checks one tag of the model.
func (c *client) step() {
	tag := fmt.Sprintf("t%d", c.rnd.IntN(6))
	imgs := c.images()
	var op string
	switch n := c.rnd.IntN(100); {
	case n < 30 || len(imgs) == 0:
		op = "push"
		if img, ok := c.pushImage(tag, nil); ok {
			c.tags[tag] = img
		}
	case n < 35:
		op = "promote"
		img := imgs[c.rnd.IntN(len(imgs))]
		// A promotion links the blobs, then stores the manifest: with no
		// grace at all, a collection between the two may delete the new
		// links (unreferenced then), and the manifest is refused, as a
		// push's is. Nothing is lost: the promotion is repeated.
		var err error
		for range 5 {
			if _, err = c.s.reg.Copy(context.Background(), c.repo, c.liveRepo(), img.digest, registry.CopyOptions{Tags: []string{tag}}); err == nil ||
				!strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") {
				break
			}
			c.retries++
		}
		if err != nil {
			c.t.Errorf("client %d: promote %s: %v", c.id, img.digest, err)
			return
		}
		// Promotion copies the referrers the image has now; those of an
		// earlier promotion of the same digest are in live/ already and
		// stay while any tag keeps it, so every live tag of the digest
		// now keeps the newest (largest) set.
		p := promoted(img)
		for t, li := range c.live {
			if li.digest == img.digest {
				c.live[t] = p
			}
		}
		c.live[tag] = p
	case n < 45:
		op = "tag" // another tag for an image the client has
		img := imgs[c.rnd.IntN(len(imgs))]
		code, _, body := c.s.do("GET", "/v2/"+c.repo+"/manifests/"+img.digest.String(), nil, "Accept: "+ocispec.MediaTypeImageManifest+","+ocispec.MediaTypeImageIndex)
		if code != http.StatusOK {
			c.t.Errorf("client %d: tag: the model's %s answers %d", c.id, img.digest, code)
			return
		}
		mt := ocispec.MediaTypeImageManifest
		if img.index {
			mt = ocispec.MediaTypeImageIndex
		}
		if code, _, _ := c.s.do("PUT", "/v2/"+c.repo+"/manifests/"+tag, body, "Content-Type: "+mt); code != http.StatusCreated {
			c.t.Errorf("client %d: tag %s: %d", c.id, tag, code)
			return
		}
		c.tags[tag] = img
	case n < 58:
		op = "untag"
		if _, ok := c.tags[tag]; !ok {
			return
		}
		if code, _, _ := c.s.do("DELETE", "/v2/"+c.repo+"/manifests/"+tag, nil); code != http.StatusAccepted {
			c.t.Errorf("client %d: untag %s: %d", c.id, tag, code)
			return
		}
		delete(c.tags, tag)
	case n < 66:
		op = "delete"
		img := imgs[c.rnd.IntN(len(imgs))]
		if code, _, _ := c.s.do("DELETE", "/v2/"+c.repo+"/manifests/"+img.digest.String(), nil); code != http.StatusAccepted {
			c.t.Errorf("client %d: delete %s: %d", c.id, img.digest, code)
			return
		}
		for t, i := range c.tags {
			if i == img {
				delete(c.tags, t)
			}
		}
	case n < 80:
		op = "referrer"
		subject := imgs[c.rnd.IntN(len(imgs))]
		if subject.index {
			return
		}
		if ref, ok := c.pushImage("", subject); ok {
			subject.referrers = append(subject.referrers, ref)
		}
	default:
		op = "index" // an index of two images; only the index is tagged
		var children []*modelImage
		for range 2 {
			img, ok := c.pushImage("", nil)
			if !ok {
				return
			}
			children = append(children, img)
		}
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
		idx.SchemaVersion = 2
		for _, ch := range children {
			idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: ch.digest, Size: int64(len(mustGet(c, ch.digest)))})
		}
		body, _ := json.Marshal(idx)
		code, _, _ := c.s.do("PUT", "/v2/"+c.repo+"/manifests/"+tag, body, "Content-Type: "+ocispec.MediaTypeImageIndex)
		if code == http.StatusBadRequest {
			c.retries++ // a child collected before the index arrived
			return
		}
		if code != http.StatusCreated {
			c.t.Errorf("client %d: put index: %d", c.id, code)
			return
		}
		img := &modelImage{digest: digest.FromBytes(body), index: true, children: children, reach: []digest.Digest{digest.FromBytes(body)}}
		c.tags[tag] = img
	}
	c.ops[op]++
	// Check one tag of the model: it resolves to its image, all of it.
	if imgs := slices.Sorted(mapKeys(c.tags)); len(imgs) > 0 {
		t := imgs[c.rnd.IntN(len(imgs))]
		c.check(c.repo, t, c.tags[t])
	}
	if imgs := slices.Sorted(mapKeys(c.live)); len(imgs) > 0 {
		t := imgs[c.rnd.IntN(len(imgs))]
		c.check(c.liveRepo(), t, c.live[t])
	}
}

// liveRepo is where the client's images are promoted.
func (c *client) liveRepo() string { return "live/" + c.repo }

// promoted is img as a promotion copies it: with its referrers and
// children as they are now.
func promoted(img *modelImage) *modelImage {
	cp := *img
	cp.referrers = nil
	for _, r := range img.referrers {
		cp.referrers = append(cp.referrers, promoted(r))
	}
	cp.children = nil
	for _, ch := range img.children {
		cp.children = append(cp.children, promoted(ch))
	}
	return &cp
}

func mustGet(c *client, d digest.Digest) []byte {
	_, _, b := c.s.do("GET", "/v2/"+c.repo+"/manifests/"+d.String(), nil, "Accept: "+ocispec.MediaTypeImageManifest)
	return b
}

// reachable lists what img keeps: itself, its children and the
// referrers of each, with their blobs.
func reachable(img *modelImage) []digest.Digest {
	out := slices.Clone(img.reach)
	for _, r := range img.referrers {
		out = append(out, reachable(r)...)
	}
	for _, ch := range img.children {
		out = append(out, reachable(ch)...)
	}
	return out
}

// check verifies that tag resolves to img and that everything img keeps
// reads back with its digest.
func (c *client) check(repo, tag string, img *modelImage) {
	code, h, _ := c.s.do("HEAD", "/v2/"+repo+"/manifests/"+tag, nil, "Accept: "+ocispec.MediaTypeImageManifest+","+ocispec.MediaTypeImageIndex)
	if code != http.StatusOK || h.Get("Docker-Content-Digest") != img.digest.String() {
		c.t.Errorf("client %d: dangling or moved tag %s:%s: %d %s, want %s", c.id, repo, tag, code, h.Get("Docker-Content-Digest"), img.digest)
		return
	}
	manifests := map[digest.Digest]bool{}
	var walk func(*modelImage)
	walk = func(m *modelImage) {
		manifests[m.digest] = true
		for _, r := range m.referrers {
			walk(r)
		}
		for _, ch := range m.children {
			walk(ch)
		}
	}
	walk(img)
	for _, d := range reachable(img) {
		kind := "blobs"
		if manifests[d] {
			kind = "manifests"
		}
		code, _, body := c.s.do("GET", "/v2/"+repo+"/"+kind+"/"+d.String(), nil,
			"Accept: "+ocispec.MediaTypeImageManifest+","+ocispec.MediaTypeImageIndex)
		if code != http.StatusOK || digest.FromBytes(body) != d {
			c.t.Errorf("client %d: LOST %s %s reachable from %s:%s: %d", c.id, kind, d, repo, tag, code)
		}
	}
}

// TestInterleaving: concurrent clients push, tag, untag, delete, mount,
// attach referrers and push indexes while collections run back to back
// with no grace at all; a model of each client's tags says what must
// survive. Every tag always resolves, everything it reaches always
// reads (0 lost blobs, 0 dangling tags), and after a final collection the
// storage holds exactly the reachable content.
func TestInterleaving(t *testing.T) {
	interleave(t, newSetup(t, dbtest.SQLite(t)), 8, 260) // 2,080 client operations
}

// interleave runs the interleaving test with clients clients of
// opsPerClient operations each against s.
func interleave(t *testing.T, s *setup, clients, opsPerClient int) {
	pool := &blobPool{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var cycles, protected, deleted atomic.Int64
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for ctx.Err() == nil {
			c, err := s.member.Lead(ctx)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("lead: %v", err)
				}
				return
			}
			// Every other cycle yields to the writes (for at most 5 ms
			// per batch): the same rule, other interleavings.
			yield := time.Duration(cycles.Load()%2) * 5 * time.Millisecond
			rep, err := s.reg.Collect(ctx, registry.CollectOptions{Coordinator: c, Yield: yield})
			if ferr := c.Finish(context.Background()); ferr != nil && ctx.Err() == nil {
				t.Errorf("finish: %v", ferr)
			}
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("collect: %v", err)
				}
				return
			}
			cycles.Add(1)
			protected.Add(int64(rep.Protected))
			deleted.Add(int64(rep.Deleted[registry.KindBlob]))
		}
	}()

	start := time.Now()
	cs := make([]*client, clients)
	var wg sync.WaitGroup
	for i := range cs {
		cs[i] = &client{t: t, s: s, id: i, repo: fmt.Sprintf("team%d/app", i), rnd: rand.New(rand.NewPCG(uint64(i), 42)),
			tags: map[string]*modelImage{}, live: map[string]*modelImage{}, pool: pool, ops: map[string]int{}}
		wg.Go(func() {
			for range opsPerClient {
				cs[i].step()
			}
		})
	}
	wg.Wait()
	cancel()
	<-gcDone

	total, retries := map[string]int{}, 0
	for _, c := range cs {
		for k, v := range c.ops {
			total[k] += v
		}
		retries += c.retries
	}
	t.Logf("operations %v; %d collections deleted %d blobs, kept %d objects a write protected; %d pushes repeated after a collection",
		total, cycles.Load(), deleted.Load(), protected.Load(), retries)
	if cycles.Load() < 3 {
		t.Errorf("only %d collections ran during the operations", cycles.Load())
	}
	if deleted.Load() == 0 {
		// Nothing deleted while the clients wrote: "nothing lost" would
		// then prove nothing about the barrier.
		t.Errorf("the %d collections during the operations deleted no blob", cycles.Load())
	}

	// After a final collection: every tag is whole, the tag lists are the
	// model's, and the storage holds exactly what the tags reach.
	s.collect(registry.CollectOptions{})
	want := map[digest.Digest]bool{}
	for _, c := range cs {
		for repo, tags := range map[string]map[string]*modelImage{c.repo: c.tags, c.liveRepo(): c.live} {
			var listed struct {
				Tags []string `json:"tags"`
			}
			code, _, body := s.do("GET", "/v2/"+repo+"/tags/list", nil)
			if code == http.StatusOK {
				_ = json.Unmarshal(body, &listed)
			}
			slices.Sort(listed.Tags)
			if model := slices.Sorted(mapKeys(tags)); !slices.Equal(listed.Tags, model) {
				t.Errorf("client %d: %s tags %v, model %v", c.id, repo, listed.Tags, model)
			}
			for tag, img := range tags {
				c.check(repo, tag, img)
				for _, d := range reachable(img) {
					want[d] = true
				}
			}
		}
	}
	got := s.blobsOnDisk()
	var extra, missing []digest.Digest
	for d := range got {
		if !want[d] {
			extra = append(extra, d)
		}
	}
	for d := range want {
		if !got[d] {
			missing = append(missing, d)
		}
	}
	if len(extra) > 0 || len(missing) > 0 {
		t.Errorf("after the final collection: %d unreachable blobs stored, %d reachable missing (of %d)", len(extra), len(missing), len(want))
	}
	t.Logf("%d reachable blobs stored; %d client operations in %s", len(want), clients*opsPerClient, time.Since(start).Round(time.Millisecond))
	if total["promote"] == 0 {
		t.Error("no promotion among the operations")
	}
}

// TestInterleavingPostgresS3: the interleaving test on the replicas'
// storage: the collector's state and the registry's index on a real
// PostgreSQL, blobs on a real S3 server (fewer operations, for CI time).
func TestInterleavingPostgresS3(t *testing.T) {
	tg := dbtest.Postgres(t)
	srv := s3test.Shared(t)
	cfg := config.Default()
	cfg.Database = tg.Config
	cfg.Storage = config.Storage{Driver: "s3aws", Parameters: srv.Parameters(srv.NewBucket(t))}
	s := newSetupOn(t, tg, func(t testing.TB) storagedriver.StorageDriver {
		st, err := regstore.Open(t.Context(), cfg, tg.Opener(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if st.Index == nil {
			t.Fatal("the registry index is not in PostgreSQL")
		}
		return st.Driver
	}, nil)
	interleave(t, s, 4, 75) // 300 client operations
}
