package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/config"
)

// TestStoredPolicyRefusesRelativeKeys: a policy kept in the database
// cannot name a requireSignedBy key by a relative path (each replica would
// read it relative to its own working directory): validate and PUT answer
// 400 naming the field and line. An absolute path is fine; a policy file's
// server validates relative paths (they resolve against the file's
// directory).
func TestStoredPolicyRefusesRelativeKeys(t *testing.T) {
	g := startGateServer(t, strictPolicy, withConfig(func(c *config.Config) { c.Gate.Policy = "" }), withoutDB)
	admin := adminClient(t, g)
	const relative = "version: v1\nmaxSeverity: HIGH\nrequireSignedBy:\n  - /etc/drydock/release.pub\n  - keys/team.pub\n"
	for _, c := range []struct {
		method, path string
		call         func(string, string, any, any) int
	}{{"POST", "/api/v1/policy/validate", g.api}, {"PUT", "/api/v1/policy", admin}} {
		var res api.PolicyValidation
		code := c.call(c.method, c.path, api.PolicyRequest{Policy: relative}, &res)
		if code != http.StatusBadRequest || res.Valid || len(res.Problems) != 1 || res.Problems[0].Field != "requireSignedBy[1]" ||
			res.Problems[0].Line != 5 || res.Error == nil || !strings.Contains(res.Error.Message, "requireSignedBy[1]") {
			t.Errorf("%s a stored policy with a relative key: %d %+v %+v", c.method, code, res, res.Error)
		}
	}
	var ok api.PolicyValidation
	abs := strings.Replace(relative, "keys/team.pub", "/etc/drydock/team.pub", 1)
	if code := g.api("POST", "/api/v1/policy/validate", api.PolicyRequest{Policy: abs}, &ok); code != 200 || !ok.Valid {
		t.Errorf("validate absolute keys: %d %+v", code, ok)
	}

	// A server whose policy is a file validates the relative path.
	f := startGateServer(t, strictPolicy, withoutDB)
	if code := f.api("POST", "/api/v1/policy/validate", api.PolicyRequest{Policy: relative}, &ok); code != 200 || !ok.Valid {
		t.Errorf("validate on a policy file's server: %d %+v", code, ok)
	}
}
