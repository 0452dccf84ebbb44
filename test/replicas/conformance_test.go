package replicas

import (
	"testing"

	"github.com/drydock-project/drydock/internal/registry/conformancetest"
)

// TestConformanceThreeReplicas runs the OCI distribution-spec conformance
// suite, logged in through the bearer flow, against three replicas on
// PostgreSQL + S3 behind a round-robin load balancer: every request, each
// chunk of an upload included, may land on another replica, and a token
// issued by one is honoured by the others. Anything short of 100% fails.
func TestConformanceThreeReplicas(t *testing.T) {
	c := newCluster(t, 3, clusterOptions{})
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
}
