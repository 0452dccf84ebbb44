package gc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/testenv"
)

// TestCollectKeepsReachable: a collection deletes exactly what no tag
// reaches (an untagged image, a deleted tag's image, a stray blob, the
// referrer of a collected subject) and keeps tagged images, an index's
// untagged children, referrers of kept subjects and shared layers; a dry
// run reports the same and deletes nothing, and so does a paced run.
func TestCollectKeepsReachable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(t testing.TB) dbtest.Target) {
		s := newSetup(t, newTarget(t))
		shared := s.pushBlob("app", randomBytes(2000))
		a := s.pushImage("app", "a", 2, []ocispec.Descriptor{shared}, nil)
		b := s.pushImage("app", "b", 2, []ocispec.Descriptor{shared}, nil)
		c := s.pushImage("app", "", 1, nil, nil) // by digest only
		ra := s.pushImage("app", "", 1, nil, &a.desc)
		rc := s.pushImage("app", "", 1, nil, &c.desc)
		x := s.pushImage("app", "", 1, nil, nil)
		y := s.pushImage("app", "", 1, nil, nil)
		idx := s.pushIndex("app", "multi", x.desc, y.desc)
		stray := s.pushBlob("app", randomBytes(500))
		s.mount("other", shared.Digest, "app")
		other := s.pushImage("other", "latest", 0, []ocispec.Descriptor{shared}, nil)
		if code, _, _ := s.do("DELETE", "/v2/app/manifests/b", nil); code != http.StatusAccepted {
			t.Fatalf("untag: %d", code)
		}

		want := map[digest.Digest]bool{}
		for _, img := range []image{b, c, rc} {
			want[img.desc.Digest] = true
			for _, bl := range img.blobs[:len(img.blobs)] {
				if bl.Digest != shared.Digest {
					want[bl.Digest] = true
				}
			}
		}
		want[stray.Digest] = true

		dry := s.collect(registry.CollectOptions{DryRun: true})
		before := s.blobsOnDisk()
		// Paced: the rests change when, never what.
		rep := s.collect(registry.CollectOptions{Pace: 0.5})
		if got := deletedBlobs(rep); !sameSet(got, want) {
			t.Errorf("deleted blobs %v, want %v", got, want)
		}
		if got := deletedBlobs(dry); !sameSet(got, want) {
			t.Errorf("dry run listed blobs %v, want %v", got, want)
		}
		if len(dry.Items) != len(rep.Items) {
			t.Errorf("dry run listed %d items, the run deleted %d:\n%v\n%v", len(dry.Items), len(rep.Items), dry.Items, rep.Items)
		}
		after := s.blobsOnDisk()
		for d := range before {
			if after[d] == want[d] {
				t.Errorf("blob %s: on disk %v after, deletion wanted %v", d, after[d], want[d])
			}
		}
		if rep.Deleted[registry.KindManifest] != 3 || rep.Deleted[registry.KindReferrer] != 1 {
			t.Errorf("deleted %v, want 3 manifests (b, c, c's referrer) and c's referrers entry", rep.Deleted)
		}
		s.mustPull("app", "a", a)
		s.mustPull("app", ra.desc.Digest.String(), ra)
		s.mustPull("app", "multi", image{})
		s.mustPull("app", x.desc.Digest.String(), x)
		s.mustPull("app", y.desc.Digest.String(), y)
		s.mustPull("other", "latest", other)
		if code := s.status("/v2/app/manifests/" + idx.Digest.String()); code != http.StatusOK {
			t.Errorf("index: %d", code)
		}
		for _, gone := range []string{"/v2/app/manifests/" + c.desc.Digest.String(), "/v2/app/manifests/" + b.desc.Digest.String(),
			"/v2/app/blobs/" + stray.Digest.String()} {
			if code := s.status(gone); code != http.StatusNotFound {
				t.Errorf("GET %s after collection: %d, want 404", gone, code)
			}
		}
		// The referrers of a kept subject are listed, the collected
		// subject's referrer is gone.
		_, _, body := s.do("GET", "/v2/app/referrers/"+a.desc.Digest.String(), nil)
		if !contains(string(body), ra.desc.Digest.String()) {
			t.Errorf("referrers of a: %s", body)
		}
		// A second collection finds nothing.
		if again := s.collect(registry.CollectOptions{}); len(again.Items) != 0 {
			t.Errorf("second collection deleted %v", again.Items)
		}
	})
}

// TestCollectGrace: an untagged manifest and a stray blob younger than
// the grace period are kept, with what they reference.
func TestCollectGrace(t *testing.T) {
	s := newSetup(t, dbtest.SQLite(t))
	c := s.pushImage("app", "", 1, nil, nil)
	stray := s.pushBlob("app", randomBytes(300))
	rep := s.collect(registry.CollectOptions{Grace: time.Hour})
	if len(rep.Items) != 0 {
		t.Fatalf("deleted within the grace period: %v", rep.Items)
	}
	s.mustPull("app", c.desc.Digest.String(), c)
	rep = s.collect(registry.CollectOptions{})
	got := deletedBlobs(rep)
	if !got[c.desc.Digest] || !got[stray.Digest] {
		t.Fatalf("without grace: deleted %v", got)
	}
}

func deletedBlobs(rep *registry.Report) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, it := range rep.Items {
		if it.Kind == registry.KindBlob {
			out[digest.Digest(it.Digest)] = true
		}
	}
	return out
}

func sameSet(a, b map[digest.Digest]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestWriteback: the registry's writeback syncs its storage after a push
// and after a collection's deletions, and not while nothing changes (a
// dry run changes nothing); a sync that fails is retried at the next
// interval and logged once per run of failures; Writebacks counts the
// syncs that succeeded; it ends with its context, and without a sync or
// an interval it returns at once.
func TestWriteback(t *testing.T) {
	var synced, failed atomic.Int64
	var fail atomic.Bool
	var logged testenv.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	s := newSetup(t, dbtest.SQLite(t), registry.WithLogger(log), registry.WithStorageSync(func() error {
		if fail.Load() {
			failed.Add(1)
			return errors.New("disk on fire")
		}
		synced.Add(1)
		return nil
	}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		s.reg.Writeback(ctx, time.Millisecond)
		close(done)
	}()
	// settle waits until c has counted at least n and then 20 intervals
	// pass without a count (the last request's change can land after its
	// response), for at most 20 s: syncs that never stop fail the test.
	settle := func(c *atomic.Int64, n int64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			at := c.Load()
			time.Sleep(20 * time.Millisecond)
			if at >= n && c.Load() == at {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 20 s: %d syncs and counting, want %d and then none", c.Load(), n)
			}
		}
	}
	// reach waits until c has counted n, for at most 20 s.
	reach := func(c *atomic.Int64, n int64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); c.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d in 20 s, want %d", c.Load(), n)
			}
		}
	}

	if settle(&synced, 0); synced.Load() != 0 {
		t.Errorf("%d syncs with nothing written", synced.Load())
	}
	// A request's write of its own (an upload session), a library write
	// (through the barrier alone), images pushed.
	if code, _, _ := s.do("POST", "/v2/app/blobs/uploads/", nil); code != http.StatusAccepted {
		t.Fatalf("start an upload: %d", code)
	}
	settle(&synced, 1)
	n := synced.Load()
	if _, err := s.reg.PutBlob(t.Context(), "app", []byte("a library write")); err != nil {
		t.Fatal(err)
	}
	settle(&synced, n+1)
	n = synced.Load()
	s.pushImage("app", "", 2, nil, nil) // garbage for the collection below
	s.pushImage("app", "kept", 2, nil, nil)
	settle(&synced, n+1)
	n = synced.Load()
	s.collect(registry.CollectOptions{DryRun: true})
	if settle(&synced, n); synced.Load() != n {
		t.Errorf("a dry run (it deletes nothing) was followed by %d syncs", synced.Load()-n)
	}
	if rep := s.collect(registry.CollectOptions{}); rep.Deleted[registry.KindManifest] != 1 {
		t.Fatalf("deleted %v, want the untagged manifest", rep.Deleted)
	}
	if settle(&synced, n+1); s.reg.Writebacks() != synced.Load() {
		t.Errorf("Writebacks() = %d, the storage saw %d syncs", s.reg.Writebacks(), synced.Load())
	}

	// Two runs of failures, each retried until a sync succeeds.
	for range 2 {
		fail.Store(true)
		f := failed.Load()
		s.pushImage("app", "again", 1, nil, nil)
		reach(&failed, f+3)
		n = synced.Load()
		fail.Store(false)
		settle(&synced, n+1)
	}
	if k := strings.Count(logged.String(), "disk on fire"); k != 2 {
		t.Errorf("two runs of failed syncs logged %d times, want twice:\n%s", k, logged.String())
	}
	if s.reg.Writebacks() != synced.Load() {
		t.Errorf("Writebacks() = %d counts failures; %d succeeded", s.reg.Writebacks(), synced.Load())
	}
	cancel()
	<-done

	bare, err := registry.New(t.Context(), inmemory.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*registry.Registry{bare, s.reg} {
		returned := make(chan struct{})
		go func() {
			r.Writeback(t.Context(), 0) // bare: no sync either
			close(returned)
		}()
		select {
		case <-returned:
		case <-time.After(20 * time.Second):
			t.Fatal("Writeback without a sync or an interval still runs after 20 s")
		}
	}
}
