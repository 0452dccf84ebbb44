package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/patchjob"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestPatchCLIAPIRunSameDigest is the acceptance test of the one patch
// pipeline: the CLI (patching client-side through the server's registry),
// the API (POST /api/v1/patch, a job on the server's queue, its progress
// read with GET while it runs) and patch.Run called here directly give
// the same digest for the same input, each to its own tag of
// quarantine/nginx.
func TestPatchCLIAPIRunSameDigest(t *testing.T) {
	ti := testimage.Require(t, testimage.BookwormNginx)
	// With a vulnerability database the server signs the patches it runs.
	data := t.TempDir()
	realdb.Copy(t, vulndb.DefaultPath(data))
	s := startServe(t, data)
	server := []string{"--server", s.URL()}
	mustDrydock(t, nil, append([]string{"import", ti.OCIReference(), "--as", "nginx:1"}, server...)...)

	// The CLI.
	r := mustDrydock(t, nil, append([]string{"patch", "quarantine/nginx:1", "--update-all", "-t", "cli", "--format", "json"}, server...)...)
	var cli patch.Result
	if err := json.Unmarshal([]byte(r.Stdout), &cli); err != nil || cli.Digest == "" {
		t.Fatalf("CLI result: %v\n%s", err, r.Stdout)
	}

	// The API: a job, polled until it ends.
	body, _ := json.Marshal(patch.Request{Image: "quarantine/nginx:1", Mode: patch.UpdateAll, Tag: "api"})
	code, resp := apiRequest(t, "POST", s.URL()+"/api/v1/patch", body)
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/patch: %d %s", code, resp)
	}
	var acc struct {
		Job    int64  `json:"job"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(resp), &acc); err != nil || acc.Status == "" {
		t.Fatalf("accepted: %s", resp)
	}
	var st patchjob.Status
	sawRunning := false
	deadline := time.Now().Add(10 * time.Minute)
	for {
		code, resp := apiRequest(t, "GET", s.URL()+acc.Status, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", acc.Status, code, resp)
		}
		st = patchjob.Status{}
		if err := json.Unmarshal([]byte(resp), &st); err != nil {
			t.Fatal(err)
		}
		if st.State == patchjob.StateRunning && st.Progress != nil && st.Progress.Phase != "" {
			sawRunning = true
		}
		if st.State == patchjob.StateSucceeded || st.State == patchjob.StateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the patch job did not end: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.State != patchjob.StateSucceeded || st.Result == nil {
		t.Fatalf("patch job: %s %s\n%s", st.State, st.Error, s.Logs())
	}
	if !sawRunning {
		t.Error("no GET saw the job running with its progress")
	}
	phases := strings.Join(st.Progress.Phases, ",")
	for _, p := range []string{"read", "index", "resolve", "download", "unpack", "scripts", "layer", "write"} {
		if !strings.Contains(phases, p) {
			t.Errorf("the job's progress lacks phase %s: %s", p, phases)
		}
	}

	// patch.Run, here, with the binary's tool name (the annotation is part
	// of the image).
	var ver struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(mustDrydock(t, nil, "version", "--json").Stdout), &ver); err != nil {
		t.Fatal(err)
	}
	srv, err := oci.ParseServer(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	direct, err := patch.Run(t.Context(), patch.Request{Image: "quarantine/nginx:1", Mode: patch.UpdateAll, Tag: "direct"},
		patch.WithServer(srv), patch.WithTool("drydock "+ver.Version), patch.WithReleases(hostDistroInfo(t)))
	if err != nil {
		t.Fatal(err)
	}

	// The CLI again, asking the server to run it (the API underneath).
	r = mustDrydock(t, nil, append([]string{"patch", "quarantine/nginx:1", "--update-all", "-t", "onserver", "--on-server", "--format", "json"}, server...)...)
	var onServer patch.Result
	if err := json.Unmarshal([]byte(r.Stdout), &onServer); err != nil {
		t.Fatalf("--on-server result: %v\n%s", err, r.Stdout)
	}

	if cli.Digest != st.Result.Digest || cli.Digest != direct.Digest || cli.Digest != onServer.Digest {
		t.Errorf("digests differ: CLI %s, API %s, patch.Run %s, CLI --on-server %s", cli.Digest, st.Result.Digest, direct.Digest, onServer.Digest)
	}
	for _, tag := range []string{"cli", "api", "direct", "onserver"} {
		if d := digestOf(t, s, "quarantine/nginx:"+tag); d.String() != cli.Digest {
			t.Errorf("quarantine/nginx:%s is %s, want %s", tag, d, cli.Digest)
		}
	}

	// The server signed the patch it ran: drydock's signature and its
	// provenance, OpenVEX and SBOM, as drydock verify sees them.
	var vr gatekeeper.VerifyResult
	if err := json.Unmarshal([]byte(mustDrydock(t, nil, append([]string{"verify", "quarantine/nginx:api", "--json"}, server...)...).Stdout), &vr); err != nil {
		t.Fatal(err)
	}
	signed := map[string]bool{}
	for _, sig := range vr.Signatures {
		if sig.Verified && sig.KeyID == vr.DrydockKey {
			signed[sig.Format+" "+sig.PredicateType] = true
		}
	}
	for _, want := range []string{"cosign ", "dsse " + attest.PredicateSLSAProvenanceV1, "dsse " + attest.PredicateOpenVEX, "dsse " + attest.PredicateCycloneDX} {
		if !signed[want] {
			t.Errorf("the API's patch lacks %q by drydock's key: %+v\n%s", want, vr.Signatures, s.Logs())
		}
	}

	// A patch into live/ is refused before anything runs.
	body, _ = json.Marshal(patch.Request{Image: "quarantine/nginx:1", Mode: patch.UpdateAll, Output: "live/nginx:x"})
	if code, resp := apiRequest(t, "POST", s.URL()+"/api/v1/patch", body); code != http.StatusBadRequest || !strings.Contains(resp, "never live/") {
		t.Errorf("patch into live/: %d %s", code, resp)
	}
}

func apiRequest(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hostDistroInfo reads the host's distro-info-data, as the CLI and the
// server do without a vulnerability database.
func hostDistroInfo(t *testing.T) []vulndb.Release {
	t.Helper()
	rels, err := patch.LoadReleases(t.Context(), nil, "/usr/share/distro-info")
	if err != nil {
		t.Fatal(err)
	}
	return rels
}
