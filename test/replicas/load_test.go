package replicas

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"

	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// loadSettings are the load test's size: the 50 clients for 60 s,
// a replica killed and restarted every 10 s.
const (
	loadClients  = 50
	loadDuration = 60 * time.Second
	killEvery    = 10 * time.Second
)

// pullRetries is how often a client pulls again after a transport failure
// (a connection cut by a killed replica), as docker and crane users do.
const pullRetries = 3

// TestLoadWithReplicaKills runs 50 clients pushing new images and pulling
// completed ones through the balancer for 60 s while one of three
// replicas is SIGKILLed and restarted every 10 s. Then: no pull of a
// completed push failed, every tag resolves to a complete image whose
// blobs match their digests, every blob in the bucket holds the bytes of
// its digest, every image has its verdict from exactly one scan job, and
// the audit chain verifies.
func TestLoadWithReplicaKills(t *testing.T) {
	if testing.Short() {
		t.Skip("the load test takes minutes; skipped with -short")
	}
	c := newCluster(t, 3, clusterOptions{})
	c.addUser("load", "load-password", "push:quarantine", "pull:quarantine")
	c.startAll()
	cl := &client{addr: c.Addr(), auth: &authn.Basic{Username: "load", Password: "load-password"}}
	l := newLedger()
	var pushFailures, pullRetried atomic.Int64
	ctx, stop := context.WithTimeout(context.Background(), loadDuration)
	defer stop()
	var wg sync.WaitGroup
	for w := range loadClients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; ctx.Err() == nil; i++ {
				p, err := cl.push(ctx, fmt.Sprintf("quarantine/load%d", w%5), fmt.Sprintf("c%d-%d", w, i))
				if err == nil {
					l.addPushed(p)
				} else if ctx.Err() == nil {
					pushFailures.Add(1)
				}
				q, ok := l.randomPushed(r)
				if !ok || ctx.Err() != nil {
					continue
				}
				for attempt := 1; ; attempt++ {
					err := cl.pull(context.Background(), q)
					if err == nil {
						break
					}
					if s := status(err); (s == 0 || s >= 500) && attempt < pullRetries && !strings.Contains(err.Error(), "resolves to") {
						pullRetried.Add(1)
						time.Sleep(time.Second)
						continue
					}
					l.fail("pull", fmt.Errorf("pull of completed push %s: %w", q.ref, err))
					break
				}
				l.mu.Lock()
				l.pulls++
				l.mu.Unlock()
			}
		})
	}
	kills := 0
	killer := time.NewTicker(killEvery)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-killer.C:
			r := c.replicas[kills%len(c.replicas)]
			r.kill()
			kills++
			c.start(r)
		}
	}
	killer.Stop()
	wg.Wait()

	t.Logf("%d clients, %s, %d replica kills: %d pushes completed (%d failed, as a killed replica cuts them), %d pulls of completed pushes (%d retried after a cut connection)",
		loadClients, loadDuration, kills, len(l.pushed), pushFailures.Load(), l.pulls, pullRetried.Load())
	for _, r := range c.replicas {
		t.Logf("replica %d served %d requests", r.i, r.requests())
	}
	for _, err := range l.errs {
		t.Errorf("FAILED PULL: %v", err)
	}
	// The machine's speed varies (2 cores shared with other work): the
	// check is only that the load ran, with kills among it.
	if kills < int(loadDuration/killEvery)-1 || len(l.pushed) < loadClients/5 {
		t.Errorf("only %d kills and %d pushes: the load did not run", kills, len(l.pushed))
	}
	checkAll(t, cl, l)
	c.checkBlobs(t)
	var digests []string
	for _, p := range l.pushed {
		digests = append(digests, p.digest.String())
	}
	c.waitScans(t, digests, 3*time.Minute)
	t.Logf("audit chain intact: %d entries", c.auditVerify())
}

// checkBlobs reads every blob in the cluster's bucket and checks that its
// bytes hash to its digest.
func (c *cluster) checkBlobs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	d, err := factory.Create(ctx, "s3aws", c.s3params)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = d.Walk(ctx, "/docker/registry/v2/blobs", func(fi storagedriver.FileInfo) error {
		if fi.IsDir() || !strings.HasSuffix(fi.Path(), "/data") {
			return nil
		}
		parts := strings.Split(fi.Path(), "/")
		want := digest.NewDigestFromEncoded(digest.Algorithm(parts[5]), parts[7])
		rc, err := d.Reader(ctx, fi.Path(), 0)
		if err != nil {
			return err
		}
		defer rc.Close()
		h := want.Algorithm().Hash()
		if _, err := io.Copy(h, rc); err != nil {
			return err
		}
		if got := digest.NewDigest(want.Algorithm(), h); got != want {
			t.Errorf("CORRUPT BLOB: %s holds bytes hashing to %s", want, got)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d blobs in the bucket, each read back and hashed", n)
}
