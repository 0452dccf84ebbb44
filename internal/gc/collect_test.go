package gc

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// TestCollectWritesBack: a collection with a writeback interval syncs the
// storage while it runs (here twice before its marking goes on) and stops
// when it returns; the report counts the syncs that succeeded. A dry run,
// or no interval, never syncs; a sync that fails is logged once and the
// collection still succeeds.
func TestCollectWritesBack(t *testing.T) {
	var synced, failing atomic.Int64
	var fail atomic.Bool
	var logged testenv.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	s := newSetup(t, dbtest.SQLite(t), registry.WithLogger(log), registry.WithStorageSync(func() error {
		if fail.Load() {
			failing.Add(1)
			return errors.New("disk on fire")
		}
		synced.Add(1)
		return nil
	}))
	s.pushImage("app", "", 2, nil, nil) // garbage
	s.pushImage("app", "kept", 2, nil, nil)

	// waitAtMark holds the collection at its marking until the syncs
	// counted by n reach 2.
	waitAtMark := func(n *atomic.Int64) func(registry.Progress) {
		return func(p registry.Progress) {
			if p.Phase != registry.PhaseMark || p.Done != 0 {
				return
			}
			for deadline := time.Now().Add(20 * time.Second); n.Load() < 2; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("%d syncs in 20 s at 1 ms intervals", n.Load())
					return
				}
			}
		}
	}
	rep := s.collect(registry.CollectOptions{Writeback: time.Millisecond, Progress: waitAtMark(&synced)})
	after := synced.Load()
	if after < 2 || int64(rep.Writebacks) != after {
		t.Errorf("report counts %d writebacks, the storage saw %d (want at least 2)", rep.Writebacks, after)
	}
	if rep.Deleted[registry.KindManifest] != 1 {
		t.Errorf("deleted %v, want the untagged manifest", rep.Deleted)
	}
	time.Sleep(20 * time.Millisecond)
	if n := synced.Load(); n != after {
		t.Errorf("%d syncs after the collection returned", n-after)
	}

	rest := func(registry.Progress) { time.Sleep(5 * time.Millisecond) }
	for _, o := range []registry.CollectOptions{
		{DryRun: true, Writeback: time.Millisecond, Progress: rest},
		{Progress: rest},
	} {
		if rep := s.collect(o); rep.Writebacks != 0 || synced.Load() != after {
			t.Errorf("dry run %v, writeback %v: %d syncs (%d reported)", o.DryRun, o.Writeback, synced.Load()-after, rep.Writebacks)
		}
	}

	fail.Store(true)
	rep = s.collect(registry.CollectOptions{Writeback: time.Millisecond, Progress: waitAtMark(&failing)})
	if rep.Writebacks != 0 {
		t.Errorf("%d writebacks counted of syncs that all failed", rep.Writebacks)
	}
	if n := strings.Count(logged.String(), "disk on fire"); n != 1 {
		t.Errorf("failed syncs logged %d times, want once:\n%s", n, logged.String())
	}
}
