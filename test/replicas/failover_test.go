package replicas

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/jackc/pgx/v5"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/s3test"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestScanFinishedByAnotherReplica kills the replica that is running a
// scan and checks that the other replica finishes it: the job is run
// again by another River client, the image gets its verdict from a
// completed scan, and there is still one job for the digest.
//
// The scan is held running by a proxy in front of the object store that
// holds back reads of the image's layers (the push never reads them, the
// scan does), so the kill lands mid-scan every time.
func TestScanFinishedByAnotherReplica(t *testing.T) {
	t.Parallel() // mostly waiting (for River's rescuer, for the outage)
	hold := newHolder(t, s3test.Shared(t).Endpoint)
	c := newCluster(t, 2, clusterOptions{s3Endpoint: hold.url, gate: map[string]any{"scanTimeout": "20s", "stuckAfter": "25s"}})
	for _, r := range c.replicas {
		realdb.Copy(t, vulndb.DefaultPath(r.data))
	}
	c.addUser("ci", "ci-password", "push:quarantine", "pull:quarantine")
	a, b := c.replicas[0], c.replicas[1]
	c.start(a)
	cl := &client{addr: a.addr, auth: &authn.Basic{Username: "ci", Password: "ci-password"}}
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		hold.hold(d.Hex)
	}
	ref := cl.tag("quarantine/failover", "v1")
	if err := remote.Write(ref, img, cl.opts(context.Background())...); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	p := pushed{ref: ref, digest: digest}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	job := func() (state string, attempt int, by []string) {
		t.Helper()
		if err := conn.QueryRow(ctx, `SELECT state, attempt, COALESCE(attempted_by, '{}') FROM river_job
			WHERE kind = 'gate.scan' AND args->>'digest' = $1`, p.digest.String()).Scan(&state, &attempt, &by); err != nil {
			t.Fatalf("reading the scan job: %v", err)
		}
		return
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st, _, _ := job(); st == "running" {
			break
		}
		if time.Now().After(deadline) {
			st, n, by := job()
			t.Fatalf("the scan job is %s (attempt %d by %v), not running", st, n, by)
		}
	}
	_, _, by := job()
	t.Logf("scan running on replica 0 (River client %v); killing it", by)
	a.kill()
	hold.release()
	c.start(b)
	var st string
	var attempt int
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		if st, attempt, by = job(); st == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scan job is %s (attempt %d by %v) 3 minutes after its replica died", st, attempt, by)
		}
	}
	if attempt < 2 || len(by) < 2 || by[len(by)-1] == by[0] {
		t.Errorf("job completed at attempt %d by %v: not by another replica", attempt, by)
	}
	var scanned string
	if err := conn.QueryRow(ctx, `SELECT scanned_at FROM scans WHERE digest = $1 AND error = ''`, p.digest.String()).Scan(&scanned); err != nil || scanned == "" {
		t.Errorf("no completed scan recorded for the digest: %v", err)
	}
	c.waitScans(t, []string{p.digest.String()}, time.Minute)
	t.Logf("finished by River client %s at attempt %d", by[len(by)-1], attempt)
}

// holder is a reverse proxy in front of the S3 server that holds back
// reads (GET) of the objects whose key names one of a set of digests,
// until released.
type holder struct {
	url      string
	mu       sync.Mutex
	held     map[string]bool
	released chan struct{}
}

func newHolder(t *testing.T, target string) *holder {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	h := &holder{held: map[string]bool{}, released: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && h.holds(r.URL.Path) {
			select {
			case <-h.released:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(h.release)
	h.url = srv.URL
	return h
}

func (h *holder) hold(hex string) {
	h.mu.Lock()
	h.held[hex] = true
	h.mu.Unlock()
}

func (h *holder) holds(path string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for hex := range h.held {
		if strings.Contains(path, hex) {
			return true
		}
	}
	return false
}

func (h *holder) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.released:
	default:
		close(h.released)
	}
}
