package workflow_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/workflow"
)

// signRecorder is the engine's SignPatch hook, recording each call (the
// gate's SignPatch is tested in internal/gatekeeper).
type signRecorder struct {
	mu    sync.Mutex
	calls []attest.PatchWritten
}

func (s *signRecorder) option(o *workflow.Options) {
	o.SignPatch = func(_ context.Context, p attest.PatchWritten) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls = append(s.calls, p)
		return nil
	}
}

// check: the written patch p was signed once, after its write, with what
// its provenance needs: the patched and the original digests and the
// engine's plans (package changes with their archive URLs).
func (s *signRecorder) check(t *testing.T, p *workflow.Task, repo, tag string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.calls, func(c attest.PatchWritten) bool { return c.Repository == repo && c.Tag == tag })
	if i < 0 {
		t.Fatalf("%s:%s was not signed (calls %+v)", repo, tag, s.calls)
	}
	c := s.calls[i]
	if c.Digest.String() != p.Patch.Digest || c.Original.String() != p.Patch.SourceDigest || c.OriginalRepository == "" {
		t.Errorf("signed %s@%s from %s@%s, want %s from %s", c.Repository, c.Digest, c.OriginalRepository, c.Original, p.Patch.Digest, p.Patch.SourceDigest)
	}
	n := 0
	for _, pl := range c.Plans {
		for _, ch := range pl.Changes {
			if !strings.HasSuffix(ch.URL, ".deb") {
				t.Errorf("change %+v without its archive URL", ch)
			}
			n++
		}
	}
	if n < len(p.Patch.Packages) || n == 0 {
		t.Errorf("signed with %d package changes, the patch made %d", n, len(p.Patch.Packages))
	}
}
