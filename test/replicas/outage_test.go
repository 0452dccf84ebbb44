package replicas

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-project/drydock/internal/database/pgtest"
	"github.com/drydock-project/drydock/internal/s3test"
)

// waitScans waits until every digest has a verdict and a finished scan
// job, then fails the test for a digest scanned by more jobs than it had
// pushes, or a verdict recorded twice.
func (c *cluster) waitScans(t *testing.T, digests []string, timeout time.Duration) {
	t.Helper()
	if len(digests) == 0 {
		t.Fatal("waitScans: no digests to wait for (nothing was pushed)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(timeout)
	for {
		var withVerdict, finished int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM images WHERE digest = ANY($1)`, digests).Scan(&withVerdict); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'gate.scan' AND args->>'digest' = ANY($1)
			AND state IN ('completed', 'cancelled', 'discarded')`, digests).Scan(&finished); err != nil {
			t.Fatal(err)
		}
		if withVerdict == len(digests) && finished >= len(digests) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d of %d pushed images have a verdict, %d scan jobs finished", timeout, withVerdict, len(digests), finished)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// One scan job per arrival: a digest gets a second job only when its
	// manifest was pushed again (a client retrying a PUT that a killed
	// replica had stored but not answered), never from two replicas
	// taking up one arrival.
	rows, err := conn.Query(ctx, `SELECT j.digest, j.n, COALESCE(a.n, 0) FROM
		(SELECT args->>'digest' AS digest, COUNT(*) AS n FROM river_job WHERE kind = 'gate.scan' AND args->>'digest' = ANY($1) GROUP BY 1) j
		LEFT JOIN (SELECT digest, COUNT(*) AS n FROM audit_log WHERE action = 'push' AND digest = ANY($1) GROUP BY 1) a ON a.digest = j.digest
		WHERE j.n > 1`, digests)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var jobs, pushes int
		if err := rows.Scan(&d, &jobs, &pushes); err != nil {
			t.Fatal(err)
		}
		if jobs > pushes {
			t.Errorf("%s was scanned by %d jobs for %d pushes, want one per arrival across the replicas", d, jobs, pushes)
		} else {
			t.Logf("%s pushed %d times (a retried PUT), scanned by %d jobs", d, pushes, jobs)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var dup int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT digest, verdict FROM verdict_history WHERE digest = ANY($1)
		GROUP BY digest, verdict HAVING COUNT(*) > 1) d`, digests).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup > 0 {
		t.Errorf("%d verdicts were recorded twice", dup)
	}
}

// TestPostgresOutage stops PostgreSQL for 10 s while clients push to two
// replicas: every replica's /readyz fails and says why, requests fail with
// a clean 503 (never another error, never a half-written image), and once
// PostgreSQL is back everything recovers by itself with nothing lost.
func TestPostgresOutage(t *testing.T) {
	t.Parallel() // mostly waiting (for River's rescuer, for the outage)
	pg := pgtest.New(t)
	c := newCluster(t, 2, clusterOptions{pg: pg})
	c.addUser("load", "load-password", "push:quarantine", "pull:quarantine")
	c.startAll()
	cl := &client{addr: c.Addr(), auth: &authn.Basic{Username: "load", Password: "load-password"}}
	l := newLedger()
	var phase atomic.Int32 // 0 before, 1 during, 2 after the outage
	var after atomic.Int32 // pushes completed after the outage
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				p, err := cl.push(ctx, "quarantine/outage", fmt.Sprintf("w%d-%d", w, i))
				switch {
				case err == nil:
					l.addPushed(p)
					if phase.Load() == 2 {
						after.Add(1)
					}
				case ctx.Err() != nil:
				case status(err) == http.StatusServiceUnavailable:
					l.fail(fmt.Sprintf("503 in phase %d", phase.Load()), nil)
				default:
					l.fail("unclean", fmt.Errorf("push during phase %d: %w", phase.Load(), err))
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		l.mu.Lock()
		n := len(l.pushed)
		l.mu.Unlock()
		if n >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d pushes completed in a minute before the outage", n)
		}
	}
	time.Sleep(time.Second) // pushes in flight when the database stops
	l.mu.Lock()
	before := len(l.pushed)
	l.mu.Unlock()
	phase.Store(1)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	// Readiness fails on every replica and names the database.
	for _, r := range c.replicas {
		for {
			code, body := r.ready()
			if code == http.StatusServiceUnavailable && strings.Contains(body, "database unavailable") {
				t.Logf("replica %d not ready %.1fs after PostgreSQL stopped: %s", r.i, time.Since(stopped).Seconds(), strings.TrimSpace(body))
				break
			}
			if time.Since(stopped) > 8*time.Second {
				t.Fatalf("replica %d /readyz answers %d %q 8s into the outage", r.i, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A request during the outage is a clear 503.
	resp, err := http.Get(c.proxy.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET /v2/ during the outage: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	time.Sleep(10*time.Second - time.Since(stopped))
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	for _, r := range c.replicas {
		for {
			if code, _ := r.ready(); code == http.StatusOK {
				t.Logf("replica %d ready again %.1fs after PostgreSQL came back", r.i, time.Since(restarted).Seconds())
				break
			}
			if time.Since(restarted) > 20*time.Second {
				t.Fatalf("replica %d not ready 20s after PostgreSQL came back", r.i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	phase.Store(2)
	for deadline := time.Now().Add(30 * time.Second); after.Load() < 8; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d pushes completed in the 30s after recovery", after.Load())
		}
	}
	stop()
	wg.Wait()

	t.Logf("pushes: %d before the outage, %d in all; failures %v", before, len(l.pushed), l.failures)
	for _, err := range l.errs {
		t.Errorf("not a clean failure: %v", err)
	}
	if l.failures["503 in phase 1"] == 0 {
		t.Error("no request failed during the outage: it was not under load")
	}
	checkAll(t, cl, l)
	var digests []string
	for _, p := range l.pushed {
		digests = append(digests, p.digest.String())
	}
	c.waitScans(t, digests, 2*time.Minute)
	c.auditVerify()
}

// TestS3Outage stops the S3 server under a replica: /readyz fails naming
// the storage, a push fails with a clean 503, and once S3 is back the
// replica is ready again by itself and the push goes through.
func TestS3Outage(t *testing.T) {
	t.Parallel()
	s3 := s3test.New(t)
	c := newCluster(t, 1, clusterOptions{s3: s3})
	c.addUser("load", "load-password", "push:quarantine", "pull:quarantine")
	c.startAll()
	r := c.replicas[0]
	cl := &client{addr: c.Addr(), auth: &authn.Basic{Username: "load", Password: "load-password"}}
	if err := s3.Stop(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := r.ready()
		if code == http.StatusServiceUnavailable && strings.Contains(body, "storage unavailable") {
			t.Logf("not ready with S3 down: %s", strings.TrimSpace(body))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz answers %d %q 8s after S3 stopped", code, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.push(ctx, "quarantine/s3down", "v1"); status(err) != http.StatusServiceUnavailable {
		t.Errorf("push with S3 down: %v, want a 503", err)
	}
	if err := s3.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, _ := r.ready(); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready 10s after S3 came back")
		}
	}
	p, err := cl.push(context.Background(), "quarantine/s3down", "v2")
	if err != nil {
		t.Fatalf("push after S3 came back: %v", err)
	}
	if err := cl.pull(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}
