package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestExceptionsAPI is #17's exception path with the real scanner and
// data over HTTP: a failing image becomes exempt through exceptions
// created with the API (by repository, then by digest), fails again when
// one is revoked, and is exempt again from the OpenVEX export dropped into
// the exceptions directory; bad input is a 400 naming the field, a global
// exception needs admin, and every change is in the audit log.
func TestExceptionsAPI(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	g := startGateServer(t, strictPolicy)
	const ref = "quarantine/bookworm:12"
	digest := g.push(ti, ref)
	st := g.waitScanned(ref)
	ids := gatetest.FailingCVEs(st.Verdict)
	if st.Verdict.State != gate.StateFail || len(ids) < 2 {
		t.Fatalf("verdict %s with %d failing CVEs, want fail with at least 2", st.Verdict.State, len(ids))
	}
	expires := realdb.DataDate.Add(30 * 24 * time.Hour).Format(time.RFC3339)
	req := func(mod func(*api.ExceptionRequest)) api.ExceptionRequest {
		r := api.ExceptionRequest{Scope: exceptions.ScopeRepository, Repository: "quarantine/bookworm", CVE: ids[0],
			Justification: "vulnerable_code_not_in_execute_path", Reason: "not reachable", Expires: expires}
		mod(&r)
		return r
	}

	// Bad input: 400 naming the field.
	for _, tt := range []struct {
		field string
		body  any
	}{
		{"expires", req(func(r *api.ExceptionRequest) { r.Expires = "next week" })},
		{"expires", req(func(r *api.ExceptionRequest) { r.Expires = "" })},
		{"repository", req(func(r *api.ExceptionRequest) { r.Repository = "live/bookworm" })},
		{"digest", req(func(r *api.ExceptionRequest) {
			r.Scope, r.Repository, r.Digest = exceptions.ScopeDigest, "", "sha256:12"
		})},
		{"cve", req(func(r *api.ExceptionRequest) { r.CVE = "" })},
		{"justification", req(func(r *api.ExceptionRequest) { r.Justification = "because" })},
		{"reason", req(func(r *api.ExceptionRequest) { r.Reason = "" })},
		{"scope", req(func(r *api.ExceptionRequest) { r.Scope = "cluster" })},
		{"unknown field", map[string]string{"scope": "global", "cve": ids[0], "colour": "red"}},
	} {
		var e api.ErrorBody
		if code := g.api("POST", "/api/v1/exceptions", tt.body, &e); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, tt.field) {
			t.Errorf("%s: %d %q, want 400 naming %s", tt.field, code, e.Error.Message, tt.field)
		}
	}
	// The test's anonymous principal may promote, but is not admin.
	var denied api.ErrorBody
	if code := g.api("POST", "/api/v1/exceptions", req(func(r *api.ExceptionRequest) { r.Scope, r.Repository = exceptions.ScopeGlobal, "" }), &denied); code != http.StatusForbidden {
		t.Fatalf("a global exception without admin: %d %+v", code, denied)
	}

	// One repository exception per failing CVE but the last: still fail.
	var created []exceptions.Exception
	for _, cve := range ids[:len(ids)-1] {
		var ch gatekeeper.ExceptionChange
		if code := g.api("POST", "/api/v1/exceptions", req(func(r *api.ExceptionRequest) { r.CVE = cve }), &ch); code != http.StatusCreated {
			t.Fatalf("create %s: %d", cve, code)
		}
		if ch.Exception.Author != "anonymous" || ch.Exception.ID == 0 || !ch.Exception.Created.Equal(realdb.DataDate) {
			t.Fatalf("created %+v: want the caller as author and the gate's clock as its time", ch.Exception)
		}
		created = append(created, ch.Exception)
	}
	if st := g.verdict(ref); st.Verdict.State != gate.StateFail {
		t.Fatalf("with %d of %d CVEs excepted: %s", len(ids)-1, len(ids), st.Verdict.State)
	}
	// The last by digest: the answer carries the changed verdict.
	var ch gatekeeper.ExceptionChange
	if code := g.api("POST", "/api/v1/exceptions", req(func(r *api.ExceptionRequest) {
		r.Scope, r.Repository, r.Digest, r.CVE = exceptions.ScopeDigest, "", digest, ids[len(ids)-1]
	}), &ch); code != http.StatusCreated {
		t.Fatalf("create by digest: %d", code)
	}
	created = append(created, ch.Exception)
	if len(ch.Verdicts) != 1 || ch.Verdicts[0].Digest != digest || ch.Verdicts[0].Verdict.State != gate.StateExempt {
		t.Fatalf("the creation changed %+v, want %s exempt", ch.Verdicts, digest)
	}
	st = g.verdict(ref)
	if st.Verdict.State != gate.StateExempt || len(st.Verdict.Applied) != len(ids) ||
		!slices.Contains(st.Verdict.Applied, exceptions.GateID(ch.Exception.ID)) {
		t.Fatalf("after the exceptions: %s, applied %v", st.Verdict.State, st.Verdict.Applied)
	}

	// Listing, one, and the export.
	var list api.ExceptionsResponse
	if code := g.api("GET", "/api/v1/exceptions?digest="+digest+"&repository=quarantine/bookworm", nil, &list); code != http.StatusOK || len(list.Exceptions) != len(ids) {
		t.Fatalf("list: %d, %d exceptions, want %d", code, len(list.Exceptions), len(ids))
	}
	var one exceptions.Exception
	if code := g.api("GET", fmt.Sprintf("/api/v1/exceptions/%d", created[0].ID), nil, &one); code != http.StatusOK || one.CVE != ids[0] {
		t.Fatalf("show: %d %+v", code, one)
	}
	for _, bad := range []string{"/api/v1/exceptions?active=maybe", "/api/v1/exceptions?limit=0", "/api/v1/exceptions/x"} {
		var e api.ErrorBody
		if code := g.api("GET", bad, nil, &e); code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, code)
		}
	}
	resp, err := http.Get(g.url + "/api/v1/openvex/exceptions")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if loaded, err := gate.LoadExceptions(bytes.NewReader(doc)); err != nil || len(loaded) != len(ids) {
		t.Fatalf("export: %d statements, %v", len(loaded), err)
	}

	// Revoking one: fail again, at once; a second revocation conflicts.
	var rv gatekeeper.ExceptionChange
	if code := g.api("POST", fmt.Sprintf("/api/v1/exceptions/%d/revoke", created[0].ID), nil, &rv); code != http.StatusOK ||
		rv.Exception.RevokedBy != "anonymous" || len(rv.Verdicts) != 1 || rv.Verdicts[0].Verdict.State != gate.StateFail {
		t.Fatalf("revoke: %d %+v", code, rv)
	}
	if st := g.verdict(ref); st.Verdict.State != gate.StateFail {
		t.Fatalf("after the revocation: %s", st.Verdict.State)
	}
	var e api.ErrorBody
	if code := g.api("POST", fmt.Sprintf("/api/v1/exceptions/%d/revoke", created[0].ID), nil, &e); code != http.StatusConflict {
		t.Fatalf("second revocation: %d", code)
	}
	if code := g.api("POST", "/api/v1/exceptions/999999/revoke", nil, &e); code != http.StatusNotFound {
		t.Fatalf("revoking an unknown exception: %d", code)
	}

	// The export is an import source: in the exceptions directory it
	// exempts the image again.
	if err := os.WriteFile(filepath.Join(g.vexDir, "export.json"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := g.verdict(ref); st.Verdict.State != gate.StateExempt {
		t.Fatalf("with the export in the exceptions directory: %s %+v", st.Verdict.State, st.Verdict.Reasons)
	}

	// The audit log has each creation and the revocation, by the caller.
	dbs, err := database.NewOpener(database.Config{}, g.data)
	if err != nil {
		t.Fatal(err)
	}
	al, closeLog, err := audit.Open(context.Background(), dbs)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	ops := map[string]int{}
	if err := al.Scan(context.Background(), 0, func(e *audit.Entry) error {
		if e.Action == audit.ActionException {
			var d struct{ Op string }
			_ = json.Unmarshal(e.Detail, &d)
			if e.Actor != "anonymous" {
				t.Errorf("exception audited as %q", e.Actor)
			}
			ops[d.Op]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ops["create"] != len(ids) || ops["revoke"] != 1 {
		t.Fatalf("audited exception changes: %v, want %d creations and 1 revocation", ops, len(ids))
	}
}
