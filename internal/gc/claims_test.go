package gc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/registry"
)

// holdingCycle is a cycle whose release of one key (key) holds the
// collection, right after the release, until proceed is closed.
type holdingCycle struct {
	*Cycle
	key      string
	claimed  chan struct{} // closed once key is claimed
	released chan struct{} // closed once key's claim has ended
	proceed  chan struct{}
}

func (h *holdingCycle) Claim(ctx context.Context, keys []string) ([]string, error) {
	got, err := h.Cycle.Claim(ctx, keys)
	if slices.Contains(got, h.key) {
		close(h.claimed)
	}
	return got, err
}

func (h *holdingCycle) Release(ctx context.Context, keys []string) error {
	err := h.Cycle.Release(ctx, keys)
	if slices.Contains(keys, h.key) {
		close(h.released)
		<-h.proceed
	}
	return err
}

// TestClaimsEndChunkByChunk: a write protecting an object the sweep has
// claimed waits for that object's deletion, not for the deletions of the
// rest of its repository (with gc.yield, several seconds for a repository
// of thousands of links): the sweep ends its claims chunk by chunk.
func TestClaimsEndChunkByChunk(t *testing.T) {
	s := newSetup(t, dbtest.SQLite(t))
	ctx := context.Background()
	// 200 unreferenced blob links: four chunks of deletions.
	const repo, n = "many/links", 200
	v2 := filepath.Join(s.root, "docker", "registry", "v2")
	linkPath := func(d digest.Digest) string {
		return filepath.Join(v2, "repositories", repo, "_layers", "sha256", d.Encoded(), "link")
	}
	write := func(p string, data []byte) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var links []digest.Digest
	for i := range n {
		data := fmt.Appendf(nil, "blob %d", i)
		d := digest.FromBytes(data)
		write(filepath.Join(v2, "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data"), data)
		write(linkPath(d), []byte(d))
		links = append(links, d)
	}
	slices.Sort(links) // the sweep's order: links[0] is in the first chunk
	linked := func() int {
		k := 0
		for _, d := range links {
			if _, err := os.Stat(linkPath(d)); err == nil {
				k++
			}
		}
		return k
	}

	c, err := s.member.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Finish(ctx)
	h := &holdingCycle{Cycle: c, key: registry.LayerKey(repo, links[0]), claimed: make(chan struct{}), released: make(chan struct{}), proceed: make(chan struct{})}
	var collectErr error
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		_, collectErr = s.reg.Collect(ctx, registry.CollectOptions{Coordinator: h})
	}()
	proceed := sync.OnceFunc(func() { close(h.proceed) })
	defer func() { proceed(); <-collected }()
	select {
	case <-h.claimed:
	case <-collected:
		t.Fatalf("the collection ended without claiming %s: %v", h.key, collectErr)
	}
	g, err := s.member.Enter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	protected := make(chan error, 1)
	go func() { protected <- g.Protect(ctx, h.key) }()
	select {
	case err := <-protected:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the write still waits a minute after the claim")
	}
	g.Done()
	select {
	case <-h.released:
	default:
		t.Fatal("the write went on while its key was claimed")
	}
	left := linked()
	proceed()
	<-collected
	if collectErr != nil {
		t.Fatal(collectErr)
	}
	if _, err := os.Stat(linkPath(links[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the write went on before its link was deleted (%v)", err)
	}
	// The write waited for its chunk (64 deletions), not for the others.
	if left < n-2*64 {
		t.Errorf("when the write went on, %d of the %d links were deleted: it waited for more than its chunk", n-left, n)
	}
	if got := linked(); got != 0 {
		t.Errorf("%d unreferenced links left after the collection", got)
	}
}
