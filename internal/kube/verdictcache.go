package kube

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/drydock-project/drydock/internal/gate"
)

// maxCachedVerdicts bounds the verdict cache; past it, expired entries
// are dropped, and if none is, the whole cache.
const maxCachedVerdicts = 10000

// verdictCache reuses a digest's verdict for a short time, so a burst of
// admissions of one image (a Deployment scaling to 200 pods, a pod of 8
// containers) decides it once. A verdict is reused only while both the
// injected clock and the wall clock have moved less than ttl since it was
// decided: moving the gate's clock past an exception's expiry, or a
// policy edit, shows within ttl. Concurrent misses for one digest share
// one decision. The cache holds no state of its own: every entry is a
// copy of what the gate decided from the store.
type verdictCache struct {
	src   Verdicts
	ttl   time.Duration
	now   func() time.Time
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]cachedVerdict
}

type cachedVerdict struct {
	v       gate.Verdict
	decided time.Time // by the injected clock
	wall    time.Time // by the wall clock (monotonic)
}

func newVerdictCache(src Verdicts, ttl time.Duration, now func() time.Time) *verdictCache {
	if now == nil {
		now = time.Now
	}
	return &verdictCache{src: src, ttl: ttl, now: now, entries: map[string]cachedVerdict{}}
}

func (c *verdictCache) get(ctx context.Context, repo, digest string) (gate.Verdict, error) {
	key := repo + "@" + digest
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.entries[key]
		c.mu.Unlock()
		if ok && c.fresh(e) {
			return e.v, nil
		}
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		// The decision outlives one request's cancellation: other
		// admissions wait for it.
		v, err := c.src.Reevaluate(context.WithoutCancel(ctx), repo, digest)
		if err != nil {
			return gate.Verdict{}, err
		}
		if c.ttl > 0 {
			c.put(key, cachedVerdict{v: v, decided: c.now(), wall: time.Now()})
		}
		return v, nil
	})
	if err != nil {
		return gate.Verdict{}, err
	}
	return v.(gate.Verdict), nil
}

func (c *verdictCache) fresh(e cachedVerdict) bool {
	d := c.now().Sub(e.decided)
	return d >= 0 && d < c.ttl && time.Since(e.wall) < c.ttl
}

func (c *verdictCache) put(key string, e cachedVerdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedVerdicts {
		for k, old := range c.entries {
			if !c.fresh(old) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedVerdicts {
			clear(c.entries)
		}
	}
	c.entries[key] = e
}
