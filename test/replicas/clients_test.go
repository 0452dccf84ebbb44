package replicas

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// pushed is an image whose push completed (its manifest PUT answered 201).
type pushed struct {
	ref    name.Tag
	digest v1.Hash
}

// ledger records what clients did, for the checks at the end.
type ledger struct {
	mu       sync.Mutex
	pushed   []pushed
	failures map[string]int // failed operation kind -> count
	errs     []error        // failures that must not happen
	pulls    int
}

func newLedger() *ledger { return &ledger{failures: map[string]int{}} }

func (l *ledger) addPushed(p pushed) {
	l.mu.Lock()
	l.pushed = append(l.pushed, p)
	l.mu.Unlock()
}

func (l *ledger) randomPushed(r *rand.Rand) (pushed, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pushed) == 0 {
		return pushed{}, false
	}
	return l.pushed[r.IntN(len(l.pushed))], true
}

func (l *ledger) fail(kind string, err error) {
	l.mu.Lock()
	l.failures[kind]++
	if err != nil {
		l.errs = append(l.errs, err)
	}
	l.mu.Unlock()
}

// client pushes and pulls through the load balancer as a user, with
// go-containerregistry's own retries (as crane and most clients have).
type client struct {
	addr string
	auth authn.Authenticator
}

func (c *client) opts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(c.auth),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 5})}
}

func (c *client) tag(repo, tag string) name.Tag {
	t, err := name.NewTag(c.addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		panic(err)
	}
	return t
}

// push pushes a new random image (two small layers) to repo:tag.
func (c *client) push(ctx context.Context, repo, tag string) (pushed, error) {
	img, err := random.Image(24<<10, 2)
	if err != nil {
		return pushed{}, err
	}
	ref := c.tag(repo, tag)
	if err := remote.Write(ref, img, c.opts(ctx)...); err != nil {
		return pushed{}, err
	}
	d, err := img.Digest()
	return pushed{ref: ref, digest: d}, err
}

// pull resolves p's tag and reads and checks every blob of the image.
func (c *client) pull(ctx context.Context, p pushed) error {
	img, err := remote.Image(p.ref, c.opts(ctx)...)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if d != p.digest {
		return fmt.Errorf("%s resolves to %s, pushed %s", p.ref, d, p.digest)
	}
	return validate.Image(img)
}

// status is the HTTP status of a registry error, 0 for other errors.
func status(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

// checkAll pulls every completed push again and checks it.
func checkAll(t *testing.T, c *client, l *ledger) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	bad := 0
	for _, p := range l.pushed {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.pull(context.Background(), p); err != nil {
				mu.Lock()
				bad++
				mu.Unlock()
				t.Errorf("completed push %s: %v", p.ref, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d completed pushes pulled and checked blob by blob, %d failed", len(l.pushed), bad)
}
