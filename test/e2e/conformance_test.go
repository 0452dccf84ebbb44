package e2e

import (
	"testing"

	"github.com/drydock-project/drydock/internal/registry/conformancetest"
)

// TestConformance runs the OCI distribution-spec conformance suite, every
// check it enables by default, against a real `drydock serve` process with
// the default filesystem storage and authentication on (the suite logs in
// as a user with pull and push on its namespace, through the bearer token
// flow). Anything short of 100% fails.
func TestConformance(t *testing.T) {
	data := t.TempDir()
	s := startServeEnv(t, data, nil)
	addUser(t, data, "conformance", "conformance-password", "pull:conformance", "push:conformance")
	res := conformancetest.Run(t, s.Addr, "OCI_USERNAME=conformance", "OCI_PASSWORD=conformance-password")
	t.Logf("distribution-spec conformance against drydock serve: %d passed, %d failed, %d disabled",
		res.Passed, len(res.Failed), res.Disabled)
}
