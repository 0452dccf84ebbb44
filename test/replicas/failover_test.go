package replicas

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-project/drydock/internal/s3test"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestScanFinishedByAnotherReplica kills the replica that is running a
// scan and checks that the other replica finishes it: the job is run
// again by another River client, the image gets its verdict from a
// completed scan, and there is still one job for the digest.
//
// The scan is held running by freezing the object store right after the
// push (the scan reads the image's layers from it), so the kill lands
// mid-scan every time.
func TestScanFinishedByAnotherReplica(t *testing.T) {
	t.Parallel() // mostly waiting (for River's rescuer, for the outage)
	s3 := s3test.New(t)
	c := newCluster(t, 2, clusterOptions{s3: s3, gate: map[string]any{"scanTimeout": "20s", "stuckAfter": "25s"}})
	for _, r := range c.replicas {
		realdb.Copy(t, vulndb.DefaultPath(r.data))
	}
	c.addUser("ci", "ci-password", "push:quarantine", "pull:quarantine")
	a, b := c.replicas[0], c.replicas[1]
	c.start(a)
	cl := &client{addr: a.addr, auth: &authn.Basic{Username: "ci", Password: "ci-password"}}
	p, err := cl.push(context.Background(), "quarantine/failover", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Pause(); err != nil {
		t.Fatal(err)
	}
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
	if err := s3.Resume(); err != nil {
		t.Fatal(err)
	}
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
