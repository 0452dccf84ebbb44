package kube

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// maxCachedDecisions bounds a decision cache; past it, expired entries
// are dropped, and if none is, the whole cache.
const maxCachedDecisions = 10000

// decisionCache reuses what was decided about one digest (its verdict,
// its promotion attestation) for a short time, so a burst of admissions
// of one image (a Deployment scaling to 200 pods, a pod of 8 containers)
// decides it once. A decision is reused only while both the injected
// clock and the wall clock have moved less than ttl since it was made:
// moving the gate's clock past an exception's expiry, a policy edit or a
// deleted attestation shows within ttl. Concurrent misses for one digest
// share one decision. The cache holds no state of its own: every entry is
// a copy of what was read from the store or the registry.
type decisionCache[V any] struct {
	load  func(ctx context.Context, repo, digest string) (V, error)
	ttl   time.Duration
	now   func() time.Time
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]cachedDecision[V]
}

type cachedDecision[V any] struct {
	v       V
	decided time.Time // by the injected clock
	wall    time.Time // by the wall clock (monotonic)
}

func newDecisionCache[V any](load func(ctx context.Context, repo, digest string) (V, error), ttl time.Duration, now func() time.Time) *decisionCache[V] {
	if now == nil {
		now = time.Now
	}
	return &decisionCache[V]{load: load, ttl: ttl, now: now, entries: map[string]cachedDecision[V]{}}
}

func (c *decisionCache[V]) get(ctx context.Context, repo, digest string) (V, error) {
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
		v, err := c.load(context.WithoutCancel(ctx), repo, digest)
		if err != nil {
			return v, err
		}
		if c.ttl > 0 {
			c.put(key, cachedDecision[V]{v: v, decided: c.now(), wall: time.Now()})
		}
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

func (c *decisionCache[V]) fresh(e cachedDecision[V]) bool {
	d := c.now().Sub(e.decided)
	return d >= 0 && d < c.ttl && time.Since(e.wall) < c.ttl
}

func (c *decisionCache[V]) put(key string, e cachedDecision[V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedDecisions {
		for k, old := range c.entries {
			if !c.fresh(old) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedDecisions {
			clear(c.entries)
		}
	}
	c.entries[key] = e
}
