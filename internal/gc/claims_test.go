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
// collection twice: before the release, with the key still claimed, until
// release is closed; and right after it, until proceed is closed.
type holdingCycle struct {
	*Cycle
	key       string
	claimed   chan struct{} // closed once key is claimed
	releasing chan struct{} // closed when key's claim is about to end
	release   chan struct{}
	proceed   chan struct{}
}

func (h *holdingCycle) Claim(ctx context.Context, keys []string) ([]string, error) {
	got, err := h.Cycle.Claim(ctx, keys)
	if slices.Contains(got, h.key) {
		close(h.claimed)
	}
	return got, err
}

func (h *holdingCycle) Release(ctx context.Context, keys []string) error {
	hold := slices.Contains(keys, h.key)
	if hold {
		close(h.releasing)
		<-h.release
	}
	err := h.Cycle.Release(ctx, keys)
	if hold {
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
	h := &holdingCycle{Cycle: c, key: registry.LayerKey(repo, links[0]), claimed: make(chan struct{}),
		releasing: make(chan struct{}), release: make(chan struct{}), proceed: make(chan struct{})}
	var collectErr error
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		_, collectErr = s.reg.Collect(ctx, registry.CollectOptions{Coordinator: h})
	}()
	release := sync.OnceFunc(func() { close(h.release) })
	proceed := sync.OnceFunc(func() { close(h.proceed) })
	defer func() { release(); proceed(); <-collected }()
	for _, ch := range []chan struct{}{h.claimed, h.releasing} {
		select {
		case <-ch:
		case <-collected:
			t.Fatalf("the collection ended without claiming and releasing %s: %v", h.key, collectErr)
		}
	}
	g, err := s.member.Enter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The claim is held until release is closed: the write waits. (Told
	// by the write itself, not by which goroutine the scheduler runs
	// first after the release.)
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = g.Protect(wctx, h.key)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write of a claimed key went on (Protect = %v); want it waiting for the release", err)
	}
	release()
	protected := make(chan error, 1)
	go func() { protected <- g.Protect(ctx, h.key) }()
	select {
	case err := <-protected:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the write still waits a minute after the release")
	}
	g.Done()
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
