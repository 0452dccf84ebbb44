package workflow_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/patch/sandbox"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
	"github.com/drydock-project/drydock/internal/workflow"
)

func TestMain(m *testing.M) {
	sandbox.Init() // the patcher's sandbox re-executes this test binary
	code := m.Run()
	realdb.Remove()
	os.Exit(code)
}

// fakeClock is the engine's injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// harness is an engine over a real registry (filesystem storage), a real
// job queue and store (SQLite), the real scanner with the real-data
// vulnerability database, and the real patcher.
type harness struct {
	t     testing.TB
	reg   *registry.Registry
	store workflow.Store
	queue *jobs.Queue
	eng   *workflow.Engine
	clock *fakeClock
	opts  workflow.Options
	dbs   *database.Opener
}

type harnessOption func(*workflow.Options)

// newHarness builds the engine, with two workflow workers (tests of
// concurrent runs need two); start it with h.start. Without withDB the
// database is left out (tests of schedules that need no scan).
func newHarness(t testing.TB, withDB bool, opts ...harnessOption) *harness {
	t.Helper()
	return newHarnessN(t, withDB, 2, opts...)
}

// newHarnessN is newHarness with n workflow workers (the server's default
// is 1).
func newHarnessN(t testing.TB, withDB bool, workers int, opts ...harnessOption) *harness {
	t.Helper()
	return newHarnessWith(t, withDB, workers, harnessParts{}, opts...)
}

// harnessParts are what a harness adds to its registry and job queue (a
// gate's manifest listener, the gate's scan workers).
type harnessParts struct {
	registry []registry.Option
	queue    []jobs.Option
}

// newHarnessWith is newHarnessN with parts added.
func newHarnessWith(t testing.TB, withDB bool, workers int, parts harnessParts, opts ...harnessOption) *harness {
	t.Helper()
	dir := t.TempDir()
	reg, err := registry.New(t.Context(), filesystem.New(filesystem.DriverParameters{RootDirectory: filepath.Join(dir, "registry"), MaxThreads: 50}), parts.registry...)
	if err != nil {
		t.Fatal(err)
	}
	dbs, err := database.NewOpener(database.Config{}, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := workflow.Open(t.Context(), dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := jobs.Open(t.Context(), dbs, append([]jobs.Option{jobs.WithPollInterval(50 * time.Millisecond),
		jobs.WithQueue("workflow", workers), jobs.WithRetryBackoff(func(int) time.Duration { return 100 * time.Millisecond })}, parts.queue...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	dbPath := filepath.Join(dir, "vulndb", "drydock-vuln.db")
	if withDB {
		realdb.Copy(t, dbPath)
	}
	clock := &fakeClock{now: time.Date(2026, 12, 6, 14, 7, 0, 0, time.UTC)}
	o := workflow.Options{Store: st, Queue: q, Registry: reg, DBPath: dbPath, QueueName: "workflow", Clock: clock,
		LockRetry: 200 * time.Millisecond,
		Patcher:   &workflow.LibraryPatcher{Sandbox: os.Geteuid() == 0, Tool: "drydock-test"}}
	for _, f := range opts {
		f(&o)
	}
	eng, err := workflow.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, reg: reg, store: st, queue: q, eng: eng, clock: clock, opts: o, dbs: dbs}
}

// start starts the job queue (without the periodic tick: tests tick).
func (h *harness) start() {
	h.t.Helper()
	if err := h.queue.Start(context.WithoutCancel(h.t.Context())); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = h.queue.Stop(ctx)
	})
}

func (h *harness) ref(repoTag string) name.Reference {
	h.t.Helper()
	r, err := name.ParseReference("drydock.internal/"+repoTag, name.Insecure)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// push writes an image (or index) into the registry as repo:tag.
func (h *harness) push(art any, repoTag string) string {
	h.t.Helper()
	o := []remote.Option{remote.WithTransport(h.reg.Transport()), remote.WithContext(h.t.Context())}
	var d v1.Hash
	var err error
	switch a := art.(type) {
	case v1.Image:
		if err = remote.Write(h.ref(repoTag), a, o...); err == nil {
			d, err = a.Digest()
		}
	case v1.ImageIndex:
		if err = remote.WriteIndex(h.ref(repoTag), a, o...); err == nil {
			d, err = a.Digest()
		}
	}
	if err != nil {
		h.t.Fatalf("push %s: %v", repoTag, err)
	}
	return d.String()
}

// digest returns the digest repo:tag holds, "" when absent.
func (h *harness) digest(repo, tag string) string {
	h.t.Helper()
	d, err := h.reg.Resolve(h.t.Context(), repo, tag)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

func (h *harness) tags(repo string) []string {
	tags, _ := h.reg.Tags(h.t.Context(), repo)
	return tags
}

// waitRun waits for a run to end and returns it.
func (h *harness) waitRun(id string, timeout time.Duration) *workflow.Run {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := h.store.Run(h.t.Context(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		if r.State.Finished() {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s did not end in %s: %s\n%s", id, timeout, r.State, h.log(id))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// log returns a run's log as text.
func (h *harness) log(id string) string {
	lines, err := h.store.Logs(h.t.Context(), id, 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Task + " " + l.Text + "\n")
	}
	return b.String()
}

func config(conv, repo string, tags ...string) string {
	q := make([]string, len(tags))
	for i, t := range tags {
		q[i] = `"` + t + `"`
	}
	return `{"version":"v1","tag-convention":"` + conv + `","repositories":[{"repository":"` + repo + `","tags":[` + strings.Join(q, ",") + `],"enabled":true}]}`
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func openImage(t testing.TB, s testimage.Spec) *testimage.Image {
	t.Helper()
	return testimage.Require(t, s)
}
