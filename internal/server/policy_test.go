package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestPolicyAPI: without a policy file the policy lives in the gate's
// store and is edited through the API: a non-admin's PUT is 403, a bad
// policy is a 400 naming its line and field (validate and PUT alike), a
// good one decides the next verdicts (fail, then pass), a stale ifMatch
// is 412, and each change is audited once, by its author, with the old and
// new hash. With a policy file, PUT is 409.
func TestPolicyAPI(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	g := startGateServer(t, strictPolicy, withConfig(func(c *config.Config) { c.Gate.Policy = "" }))
	admin := adminClient(t, g)

	var v gatekeeper.PolicyView
	if code := g.api("GET", "/api/v1/policy", nil, &v); code != 200 || v.Source != "database" || !v.Editable || v.Text != gatekeeper.DefaultPolicy {
		t.Fatalf("GET policy: %d %+v", code, v)
	}
	start := v.SHA256

	// The test's anonymous principal may pull, push and promote: not admin.
	var denied api.ErrorBody
	if code := g.api("PUT", "/api/v1/policy", api.PolicyRequest{Policy: lenientPolicy}, &denied); code != http.StatusForbidden {
		t.Fatalf("PUT without admin: %d %+v", code, denied)
	}

	bad := "version: v1\nmaxSeverity: EXTREME\nfixableOnly: true\n"
	for _, c := range []struct {
		method, path string
		call         func(string, string, any, any) int
	}{{"POST", "/api/v1/policy/validate", g.api}, {"PUT", "/api/v1/policy", admin}} {
		var res api.PolicyValidation
		code := c.call(c.method, c.path, api.PolicyRequest{Policy: bad}, &res)
		if code != http.StatusBadRequest || res.Valid || len(res.Problems) != 1 || res.Problems[0].Field != "maxSeverity" ||
			res.Problems[0].Line != 2 || res.Error == nil || !strings.Contains(res.Error.Message, "line 2: maxSeverity:") {
			t.Errorf("%s a bad policy: %d %+v %+v", c.method, code, res, res.Error)
		}
	}
	var ok api.PolicyValidation
	if code := g.api("POST", "/api/v1/policy/validate", api.PolicyRequest{Policy: strictPolicy}, &ok); code != 200 || !ok.Valid {
		t.Errorf("validate a good policy: %d %+v", code, ok)
	}

	// The strict policy fails the image...
	var ch gatekeeper.PolicyChange
	if code := admin("PUT", "/api/v1/policy", api.PolicyRequest{Policy: strictPolicy, IfMatch: start}, &ch); code != 200 || !ch.Changed || ch.Previous != start {
		t.Fatalf("PUT the strict policy: %d %+v", code, ch)
	}
	strict := ch.SHA256
	const ref = "quarantine/bookworm:12"
	g.push(ti, ref)
	if st := g.waitScanned(ref); st.Verdict.State != gate.StateFail || st.PolicyHash != strict {
		t.Fatalf("under the strict policy: %s (policy %s)", st.Verdict.State, st.PolicyHash)
	}
	// ...a stale edit is refused, and the lenient one passes it.
	var stale api.ErrorBody
	if code := admin("PUT", "/api/v1/policy", api.PolicyRequest{Policy: lenientPolicy, IfMatch: start}, &stale); code != http.StatusPreconditionFailed {
		t.Fatalf("PUT with a stale ifMatch: %d %+v", code, stale)
	}
	if code := admin("PUT", "/api/v1/policy", api.PolicyRequest{Policy: lenientPolicy, IfMatch: strict}, &ch); code != 200 || ch.Previous != strict {
		t.Fatalf("PUT the lenient policy: %d %+v", code, ch)
	}
	lenient := ch.SHA256
	if st := g.verdict(ref); st.Verdict.State != gate.StatePass || st.PolicyHash != lenient {
		t.Fatalf("under the lenient policy: %s %+v", st.Verdict.State, st.Verdict.Reasons)
	}
	if code := g.api("GET", "/api/v1/policy", nil, &v); code != 200 || v.Text != lenientPolicy || v.SHA256 != lenient {
		t.Errorf("GET after PUT: %d %+v", code, v)
	}

	// Audited once each, by their author, with both hashes.
	var page api.AuditPage
	if code := admin("GET", "/api/v1/audit?action=policy_change", nil, &page); code != 200 {
		t.Fatalf("audit: %d", code)
	}
	var byRoot []string
	for _, e := range page.Entries {
		var d struct{ SHA256, Previous string }
		_ = json.Unmarshal(e.Detail, &d)
		if e.Actor == "root" {
			byRoot = append(byRoot, d.Previous+">"+d.SHA256)
		} else if d.SHA256 == strict || d.SHA256 == lenient {
			t.Errorf("the change to %s audited again by %s", d.SHA256, e.Actor)
		}
	}
	if want := []string{strict + ">" + lenient, start + ">" + strict}; strings.Join(byRoot, " ") != strings.Join(want, " ") {
		t.Errorf("policy changes audited by root: %v, want %v", byRoot, want)
	}

	// With a policy file, the file is the policy's home.
	f := startGateServer(t, strictPolicy)
	var fv gatekeeper.PolicyView
	if code := f.api("GET", "/api/v1/policy", nil, &fv); code != 200 || fv.Source != "file" || fv.Editable || fv.Path == "" {
		t.Errorf("GET with a file: %d %+v", code, fv)
	}
	var conflict api.ErrorBody
	if code := adminClient(t, f)("PUT", "/api/v1/policy", api.PolicyRequest{Policy: lenientPolicy}, &conflict); code != http.StatusConflict ||
		!strings.Contains(conflict.Error.Message, "gate.policy") {
		t.Errorf("PUT with a file: %d %+v", code, conflict)
	}
}

// adminClient adds an admin user, root, to g and returns a call of g's
// API with its credentials.
func adminClient(t *testing.T, g *gateServer) func(method, path string, body, out any) int {
	st, err := auth.OpenStore(auth.DefaultPath(g.data))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(context.Background(), "root", "root-password", auth.Grants{{Role: auth.RoleAdmin, Namespace: auth.AllNamespaces}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	return func(method, path string, body, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, g.url+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("root", "root-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
			}
		}
		return resp.StatusCode
	}
}
