package e2e

import (
	"bytes"
	"database/sql"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestLiveIsWriteProtected pushes into live/ with skopeo and crane in
// every way a client can (image push, copy with blob mounts from
// quarantine/, tag, delete): each is refused with the message the client
// shows, nothing lands in live/, and every attempt is in the audit log,
// whose hash chain "drydock audit verify" checks and whose tampering it
// detects.
func TestLiveIsWriteProtected(t *testing.T) {
	requireTool(t, "skopeo")
	img := testimage.Require(t, testimage.Bookworm)
	s := startServe(t, "")
	server := []string{"--server", s.URL()}
	mustDrydock(t, nil, append([]string{"import", img.OCIReference(), "--as", "app:1"}, server...)...)
	qref := s.Addr + "/quarantine/app:1"
	cr := crane(t)

	attempts := []struct {
		name string
		cmd  []string
	}{
		{"skopeo push", []string{"skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", img.OCIReference(), "docker://" + s.Addr + "/live/app:1"}},
		{"crane copy from quarantine (blob mounts)", []string{cr, "copy", "--insecure", qref, s.Addr + "/live/app:1"}},
		{"crane delete", []string{cr, "delete", "--insecure", s.Addr + "/live/app@" + img.Digest.String()}},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), a.cmd[0], a.cmd[1:]...).CombinedOutput()
			if err == nil {
				t.Fatalf("%s succeeded:\n%s", a.name, out)
			}
			if !strings.Contains(string(out), "live/ is write-protected") {
				t.Errorf("%s: the client does not show drydock's reason:\n%s", a.name, out)
			}
		})
	}
	// A manifest PUT by hand: a tag in live/ pointing at a quarantined
	// image's manifest.
	get, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/v2/quarantine/app/manifests/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	get.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	put, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, s.URL()+"/v2/live/app/manifests/2", bytes.NewReader(raw))
	put.Header.Set("Content-Type", resp.Header.Get("Content-Type"))
	resp, err = http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"DENIED"`) {
		t.Errorf("manifest PUT to live/: %d %s", resp.StatusCode, body)
	}

	for _, repo := range catalog(t, s) {
		if strings.HasPrefix(repo, "live/") {
			t.Errorf("live/ holds %s after refused writes", repo)
		}
	}

	refused, pushes := 0, 0
	es := auditOf(t, s.Data, func(audit.Entry) bool { return true })
	for _, e := range es {
		switch {
		case e.Action == audit.ActionBypassRefused && strings.HasPrefix(e.Repository, "live/app") && e.Outcome == audit.OutcomeRefused:
			refused++
		case e.Action == audit.ActionPush && e.Repository == "quarantine/app" && e.Digest == img.Digest.String():
			pushes++
		}
	}
	if refused < len(attempts)+1 || pushes != 1 {
		t.Errorf("audit log: %d refused live/ writes (want >= %d), %d pushes of quarantine/app (want 1):\n%+v", refused, len(attempts)+1, pushes, es)
	}
	v := mustDrydock(t, nil, "audit", "verify", "--data", s.Data)
	if !strings.HasPrefix(v.Stdout, "audit log intact: ") {
		t.Errorf("verify: %s", v.Stdout)
	}

	// Tamper with the stored log behind drydock's back.
	s.Stop()
	db, err := sql.Open("sqlite", audit.DefaultPath(s.Data))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER IF EXISTS audit_log_no_update", "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	bad := drydock(t, nil, "audit", "verify", "--data", s.Data)
	if bad.Code != 1 || !strings.Contains(bad.Stderr, "TAMPERED: entry 2") {
		t.Errorf("verify after an edit: exit %d\n%s%s", bad.Code, bad.Stdout, bad.Stderr)
	}
}

// TestAuditLoginFailures: refused credentials are audited with the name
// they claimed; a good login's pushes are audited under the user's name.
func TestAuditLoginFailures(t *testing.T) {
	s := startServe(t, "", "--config", writeConfig(t, "auth: {htpasswd: "+writeHtpasswd(t, "alice", "s3cret")+"}\n"))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/v2/", nil)
	req.SetBasicAuth("mallory", "guess")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	// Other entries (the collection a start runs) may sit around it.
	es := auditOf(t, s.Data, func(e audit.Entry) bool { return e.Action != audit.ActionGC })
	if len(es) != 1 || es[0].Action != audit.ActionLoginFailed || es[0].Actor != "mallory" || es[0].Outcome != audit.OutcomeRefused {
		t.Errorf("audit entries: %+v", es)
	}
}
