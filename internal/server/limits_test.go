package server_test

import (
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestGateLimitsFromConfig: gate.limits reaches the gate's scanner: a real
// bookworm image over a package limit of 50 fails as over-limit, with the
// limit in the reason.
func TestGateLimitsFromConfig(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	g := startGateServer(t, strictPolicy, withConfig(func(c *config.Config) { c.Gate.Limits.MaxPackages = 50 }))
	g.push(ti, "quarantine/bookworm:12")
	st := g.waitScanned("quarantine/bookworm:12")
	if st.Verdict.State != gate.StateFail || !strings.Contains(st.Scan.Error, "over-limit image: over the package limit: more than 50 installed packages") {
		t.Fatalf("verdict %s, scan error %q; want fail over the package limit", st.Verdict.State, st.Scan.Error)
	}
	t.Logf("%s: %s", st.Verdict.State, st.Scan.Error)
}
