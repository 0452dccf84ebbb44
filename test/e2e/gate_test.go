package e2e

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// gateConfig writes a config with a strict policy and an exceptions
// directory, and installs the real-data vulnerability DB in data.
func gateConfig(t *testing.T, data, extra string) (cfg, vexDir string) {
	t.Helper()
	realdb.Copy(t, vulndb.DefaultPath(data))
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: v1\nmaxSeverity: LOW\nblockEndOfLife: true\ngraceWindow: 72h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vexDir = filepath.Join(dir, "vex")
	if err := os.Mkdir(vexDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, "gate: {policy: "+policy+", exceptions: "+vexDir+"}\n"+extra), vexDir
}

// waitVerdict polls `drydock verdict --json` until the scan is done.
func waitVerdict(t *testing.T, env []string, server, ref string) gatekeeper.Status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r := mustDrydock(t, env, "verdict", ref, "--json", "--server", server)
		var st gatekeeper.Status
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
			t.Fatalf("verdict --json: %v\n%s", err, r.Stdout)
		}
		if !st.Scan.ScannedAt.IsZero() || st.Scan.Error != "" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not scanned in 3 minutes: %+v", ref, st)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// writeVEX writes an OpenVEX document exempting cves in product until
// expires.
func writeVEX(t *testing.T, path, product string, cves []string, expires time.Time) {
	t.Helper()
	doc := gatetest.OpenVEX(filepath.Base(path), product, cves, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), expires)
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGateImportScanVerdictPromote is the gate from the command line: an
// import is scanned on arrival, `drydock verdict` explains the fail, a
// promotion is refused with the reasons, OpenVEX exceptions make it
// exempt, and `drydock promote` copies it by digest, with its scan report,
// so that skopeo reads the same manifest from live/.
func TestGateImportScanVerdictPromote(t *testing.T) {
	requireTool(t, "skopeo")
	img := testimage.Require(t, testimage.Bookworm)
	data := t.TempDir()
	cfg, vexDir := gateConfig(t, data, "")
	s := startServe(t, data, "--config", cfg)
	srv := s.URL()
	mustDrydock(t, nil, "import", img.OCIReference(), "--as", "bookworm:12", "--server", srv)

	st := waitVerdict(t, nil, srv, "quarantine/bookworm:12")
	if st.Verdict.State != gate.StateFail || st.Digest != img.Digest.String() || !strings.HasPrefix(st.Scan.Source, "oci:") {
		t.Fatalf("verdict after import: %+v", st)
	}
	ids := gatetest.FailingCVEs(st.Verdict)
	text := mustDrydock(t, nil, "verdict", "quarantine/bookworm:12", "--server", srv).Stdout
	for _, want := range []string{"FAIL (not promotable)", "[maxSeverity]", ids[0], "promoted:  no", "source:    oci:"} {
		if !strings.Contains(text, want) {
			t.Errorf("verdict text lacks %q:\n%s", want, text)
		}
	}
	if r := drydock(t, nil, "verdict", "quarantine/bookworm:12", "--exit-code", "3", "--server", srv); r.Code != 3 {
		t.Errorf("--exit-code 3 on a fail: exit %d", r.Code)
	}

	r := drydock(t, nil, "promote", "quarantine/bookworm:12", "--server", srv)
	if r.Code != 1 || !strings.Contains(r.Stderr, "refused: the verdict is FAIL") || !strings.Contains(r.Stderr, ids[0]) {
		t.Fatalf("promote of a failing image: exit %d\n%s", r.Code, r.Stderr)
	}

	writeVEX(t, filepath.Join(vexDir, "bookworm.json"), "quarantine/bookworm", ids, time.Now().Add(30*24*time.Hour))
	if st := waitVerdict(t, nil, srv, "quarantine/bookworm:12"); st.Verdict.State != gate.StateExempt {
		t.Fatalf("with an exception per finding: %+v", st.Verdict)
	}
	r = mustDrydock(t, nil, "promote", "quarantine/bookworm:12", "--server", srv)
	if !strings.Contains(r.Stdout, "promoted quarantine/bookworm:12 -> live/bookworm:12@"+img.Digest.String()) || !strings.Contains(r.Stdout, "1 referrer(s)") {
		t.Errorf("promote output:\n%s", r.Stdout)
	}
	var listed struct {
		Repositories []struct {
			Name string
			Tags []struct {
				Verdict  string
				Promoted bool
			}
		}
	}
	if err := json.Unmarshal([]byte(mustDrydock(t, nil, "images", "--json", "--server", srv).Stdout), &listed); err != nil {
		t.Fatal(err)
	}
	for _, r := range listed.Repositories {
		if len(r.Tags) != 1 || r.Tags[0].Verdict != "exempt" || !r.Tags[0].Promoted {
			t.Errorf("drydock images: %s %+v, want exempt and promoted", r.Name, r.Tags)
		}
	}
	if table := mustDrydock(t, nil, "images", "--server", srv).Stdout; !strings.Contains(table, "exempt (promoted)") {
		t.Errorf("drydock images table:\n%s", table)
	}
	if d := digestOf(t, s, "live/bookworm:12"); d != img.Digest {
		t.Fatalf("live/bookworm:12 is %s, want %s", d, img.Digest)
	}
	if r := mustDrydock(t, nil, "rescan", "quarantine/bookworm:12", "--server", srv); !strings.Contains(r.Stdout, "scan of quarantine/bookworm:12 queued (job ") {
		t.Errorf("rescan: %s", r.Stdout)
	}
	if st := waitVerdict(t, nil, srv, "quarantine/bookworm:12"); st.Verdict.State != gate.StateExempt || !st.Promoted {
		t.Errorf("during and after a rescan: %s, promoted %v", st.Verdict.State, st.Promoted)
	}
	got := filepath.Join(t.TempDir(), "live")
	runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", "--preserve-digests",
		"docker://"+s.Addr+"/live/bookworm:12", "oci:"+got+":x")
	sameBlobs(t, filepath.Join(img.LayoutDir, "blobs"), filepath.Join(got, "blobs"))

	// The audit log has the import, the scan, the verdicts, the refused
	// and the granted promotion.
	seen := map[string]int{}
	for _, e := range auditOf(t, data, func(e audit.Entry) bool { return e.Digest == img.Digest.String() }) {
		seen[string(e.Action)+"/"+e.Outcome]++
	}
	for _, k := range []string{"import/ok", "scan/ok", "verdict/ok", "promotion/refused", "promotion/ok"} {
		if seen[k] == 0 {
			t.Errorf("no %s audit entry for the image: %v", k, seen)
		}
	}
}

// TestGateScanSurvivesKill: the server is killed (SIGKILL) right after a
// push, with the scan job queued; after a restart the job runs and the
// digest has exactly one verdict from one completed scan.
func TestGateScanSurvivesKill(t *testing.T) {
	requireTool(t, "skopeo")
	img := testimage.Require(t, testimage.Bookworm)
	data := t.TempDir()
	// Short time-outs: should the job already be running at the kill,
	// the queue rescues it within about half a minute.
	cfg, _ := gateConfig(t, data, "")
	cfg2, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = writeConfig(t, strings.Replace(string(cfg2), "gate: {", "gate: {scanTimeout: 20s, stuckAfter: 25s, ", 1))
	s := startServe(t, data, "--config", cfg)
	runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", img.OCIReference(), "docker://"+s.Addr+"/quarantine/app:1")
	s.Kill()

	state := jobState(t, data, img.Digest.String())
	t.Logf("scan job state at the kill: %s", state)
	if state != "available" && state != "running" {
		t.Fatalf("scan job is %q at the kill; want it stored and not finished", state)
	}

	s = startServe(t, data, "--config", cfg)
	st := waitVerdict(t, nil, s.URL(), "quarantine/app:1")
	if st.Verdict.State != gate.StateFail || st.Scan.Error != "" {
		t.Fatalf("verdict after restart: %+v", st)
	}
	// The verdict is recorded just before the job is marked completed.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := jobState(t, data, img.Digest.String())
		if got == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan job %s 30s after its verdict", got)
		}
	}
	scans := len(auditOf(t, data, func(e audit.Entry) bool {
		return e.Digest == img.Digest.String() && e.Action == audit.ActionScan && e.Outcome == audit.OutcomeOK
	}))
	if scans != 1 {
		t.Errorf("%d completed scans of the digest, want 1", scans)
	}
}

// jobState reads the state of the scan job for digest from the queue's
// database (the server is stopped or only reading).
func jobState(t *testing.T, data, digest string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "jobs", "jobs.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var state string
	if err := db.QueryRow(`SELECT state FROM river_job WHERE kind = 'gate.scan' AND json_extract(args, '$.digest') = ? ORDER BY id DESC LIMIT 1`, digest).Scan(&state); err != nil {
		t.Fatalf("reading the scan job: %v", err)
	}
	return state
}
