package e2e

import (
	"testing"

	"github.com/drydock-project/drydock/internal/registry/conformancetest"
)

// TestConformance runs the OCI distribution-spec conformance suite, every
// check it enables by default, against a real `drydock serve` process with
// the default filesystem storage. Anything short of 100% fails.
func TestConformance(t *testing.T) {
	s := startServe(t, "")
	res := conformancetest.Run(t, s.Addr)
	t.Logf("distribution-spec conformance against drydock serve: %d passed, %d failed, %d disabled",
		res.Passed, len(res.Failed), res.Disabled)
}
