package replicas

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-project/drydock/internal/registry/conformancetest"
)

// TestConformanceThreeReplicas runs the OCI distribution-spec conformance
// suite, logged in through the bearer flow, against three replicas on
// PostgreSQL + S3 behind a round-robin load balancer: every request, each
// chunk of an upload included, may land on another replica, and a token
// issued by one is honoured by the others. Anything short of 100% fails.
func TestConformanceThreeReplicas(t *testing.T) {
	c := newCluster(t, 3, clusterOptions{gate: map[string]any{"sweepInterval": "2s"}})
	c.addUser("conformance", "conformance-password", "pull:conformance", "push:conformance")
	c.startAll()
	res := conformancetest.Run(t, c.Addr(), "OCI_USERNAME=conformance", "OCI_PASSWORD=conformance-password")
	t.Logf("distribution-spec conformance against 3 replicas: %d passed, %d failed, %d disabled",
		res.Passed, len(res.Failed), res.Disabled)
	for _, r := range c.replicas {
		if n := r.requests(); n < 100 {
			t.Errorf("replica %d served %d requests: the load balancer did not spread the suite", r.i, n)
		} else {
			t.Logf("replica %d served %d requests", r.i, n)
		}
	}
	c.auditVerify()
	c.checkSweeps(t, 2)
	c.checkSharedThrottle(t, "conformance")
}

// checkSharedThrottle checks that the replicas count failed logins
// together: user's eleventh wrong password in a row meets a 429 (the
// default limit is ten), though the balancer spreads the attempts over
// every replica (each counting its own would allow ten per replica).
func (c *cluster) checkSharedThrottle(t *testing.T, user string) {
	t.Helper()
	var codes []int
	for range 12 {
		req, err := http.NewRequest(http.MethodGet, c.proxy.URL+"/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(user, "a wrong password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	for i, code := range codes {
		if want := map[bool]int{true: http.StatusUnauthorized, false: http.StatusTooManyRequests}[i < 10]; code != want {
			t.Fatalf("wrong password %d of 12 through %d replicas: %d; want %d (all: %v)", i+1, len(c.replicas), code, want, codes)
		}
	}
}

// checkSweeps checks that the gate's sweep, a periodic job every period
// seconds, ran once per period across all the replicas.
func (c *cluster) checkSweeps(t *testing.T, period int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var periods, jobs, most int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(n), 0), COALESCE(MAX(n), 0) FROM (
		SELECT FLOOR(EXTRACT(EPOCH FROM scheduled_at) / $1) AS p, COUNT(*) AS n FROM river_job WHERE kind = 'gate.sweep' GROUP BY 1) x`, period).
		Scan(&periods, &jobs, &most); err != nil {
		t.Fatal(err)
	}
	t.Logf("gate sweeps: %d jobs in %d periods of %ds across %d replicas", jobs, periods, period, len(c.replicas))
	if most != 1 || periods < 3 {
		t.Errorf("%d sweep jobs in %d periods, at most %d in one: want one per period", jobs, periods, most)
	}
}
