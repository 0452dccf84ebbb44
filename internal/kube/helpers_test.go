package kube

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/registry"
)

// testRegistry is the real embedded registry on in-memory storage, written
// to over HTTP (the registry is not the subject here, only its contents).
type testRegistry struct {
	*registry.Registry
	t    testing.TB
	host string
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	reg, err := registry.New(context.Background(), inmemory.New())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &testRegistry{Registry: reg, t: t, host: strings.TrimPrefix(srv.URL, "http://")}
}

// push writes a random image as repo:tag and returns its digest; the same
// seed gives the same image.
func (r *testRegistry) push(repo, tag string, seed int64) string {
	r.t.Helper()
	img, err := random.Image(64, 1, random.WithSource(seeded(seed)))
	if err != nil {
		r.t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		r.t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// fakeVerdicts stands in for the gatekeeper: a state per digest, counting
// the decisions asked for.
type fakeVerdicts struct {
	mu     sync.Mutex
	states map[string]gate.State
	asked  int
}

func (f *fakeVerdicts) set(digest string, s gate.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.states == nil {
		f.states = map[string]gate.State{}
	}
	f.states[digest] = s
}

func (f *fakeVerdicts) Reevaluate(_ context.Context, repo, digest string) (gate.Verdict, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	s, ok := f.states[digest]
	if !ok {
		s = gate.StatePending
	}
	v := gate.Verdict{State: s}
	if s == gate.StateFail {
		v.Reasons = []gate.Reason{{Rule: gate.RuleException, Message: "exception CVE-2023-1 expired"}}
	}
	return v, nil
}

func (f *fakeVerdicts) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.asked }

// testClock is an injectable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func newTestClock() *testClock           { return &testClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }
func seeded(seed int64) *seededSource    { return &seededSource{x: uint64(seed)*2654435761 + 1} }
func (s *seededSource) Int63() int64     { s.next(); return int64(s.x >> 1) }
func (s *seededSource) Seed(seed int64)  { s.x = uint64(seed) }
func (s *seededSource) Uint64() uint64   { s.next(); return s.x }
func (s *seededSource) next()            { s.x ^= s.x << 13; s.x ^= s.x >> 7; s.x ^= s.x << 17 }

type seededSource struct{ x uint64 }
