package replicas

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// run runs the CLI with env and returns its result.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runStdin(t, "", env, args...)
}

// runStdin is run with stdin, bounded to ten minutes.
func runStdin(t testing.TB, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, drydockBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("drydock %v: %v", args, err)
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

func must(t *testing.T, r result, what string) result {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit %d\n%s\n%s", what, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

func verdictOf(t *testing.T, env []string, server, ref string) gatekeeper.Status {
	t.Helper()
	var st gatekeeper.Status
	r := must(t, run(t, env, "verdict", ref, "--json", "--server", server), "verdict")
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("verdict --json: %v\n%s", err, r.Stdout)
	}
	return st
}

// TestCopyEmbeddedThenGateFlow runs an embedded install (SQLite files and
// blobs in its data directory) through the gate's first steps — a user and
// a token, an import scanned on arrival, a failing verdict — stops it,
// copies it with `drydock store copy` to PostgreSQL + S3, and carries the
// gate flow on against two replicas on the copy: the same verdict and
// scan, the same user and token, a refused promotion, OpenVEX exceptions,
// the promotion, live/ pulled by digest, and one intact audit chain from
// before the copy to after.
func TestCopyEmbeddedThenGateFlow(t *testing.T) {
	img := testimage.Require(t, testimage.Bookworm)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: v1\nmaxSeverity: LOW\nblockEndOfLife: true\ngraceWindow: 72h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vexDir := filepath.Join(dir, "vex")
	if err := os.Mkdir(vexDir, 0o755); err != nil {
		t.Fatal(err)
	}
	gateCfg := map[string]any{"policy": policy, "exceptions": vexDir}

	// The embedded install.
	data := t.TempDir()
	realdb.Copy(t, vulndb.DefaultPath(data))
	embedded := filepath.Join(dir, "embedded.yaml")
	if err := os.WriteFile(embedded, []byte("gate: {policy: "+policy+", exceptions: "+vexDir+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, runStdin(t, opsPassword+"\n", nil, "user", "add", "ops", "--role", "admin", "--password-stdin", "--data", data), "user add")
	tokenCmd := exec.CommandContext(t.Context(), drydockBin, "token", "create", "ci", "--role", "admin", "--expires", "30d", "--data", data)
	out, err := tokenCmd.Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	env := []string{"DRYDOCK_TOKEN=" + strings.TrimSpace(string(out))}
	one := &cluster{t: t, config: embedded, replicas: []*replica{{addr: freeAddr(t), data: data}}}
	one.start(one.replicas[0])
	srv := "http://" + one.replicas[0].addr
	// The registry push of an import authenticates with the user in the
	// server URL (DRYDOCK_TOKEN is for the API).
	must(t, run(t, nil, "import", img.OCIReference(), "--as", "bookworm:12", "--server", "http://ops:"+opsPassword+"@"+one.replicas[0].addr), "import")
	var before gatekeeper.Status
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if before = verdictOf(t, env, srv, "quarantine/bookworm:12"); !before.Scan.ScannedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scan 3 minutes after the import: %+v", before)
		}
	}
	if before.Verdict.State != gate.StateFail {
		t.Fatalf("verdict in the embedded install: %+v", before.Verdict)
	}
	one.replicas[0].kill() // at rest: a server stopped (or crashed) before the copy

	// The copy.
	c := newCluster(t, 2, clusterOptions{gate: gateCfg})
	for _, r := range c.replicas {
		realdb.Copy(t, vulndb.DefaultPath(r.data))
	}
	r := must(t, run(t, nil, "store", "copy", "--data", data, "--to", c.config), "store copy")
	if !strings.Contains(r.Stdout, "copied and verified") {
		t.Fatalf("store copy:\n%s\n%s", r.Stdout, r.Stderr)
	}
	t.Logf("store copy: %s", strings.TrimSpace(r.Stdout))
	entriesBefore := c.auditVerify()
	c.startAll()

	// The gate flow goes on against the replicas.
	lb := c.proxy.URL
	st := verdictOf(t, env, lb, "quarantine/bookworm:12")
	if st.Verdict.State != gate.StateFail || st.Digest != img.Digest.String() || !st.Scan.ScannedAt.Equal(before.Scan.ScannedAt) {
		t.Fatalf("verdict on the copy: %+v, want the embedded install's %+v", st, before)
	}
	ids := gatetest.FailingCVEs(st.Verdict)
	if r := run(t, env, "promote", "quarantine/bookworm:12", "--server", lb); r.Code != 1 || !strings.Contains(r.Stderr, "refused") {
		t.Fatalf("promote of a failing image on the copy: exit %d\n%s", r.Code, r.Stderr)
	}
	doc := gatetest.OpenVEX("bookworm.json", "quarantine/bookworm", ids, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(30*24*time.Hour))
	if err := os.WriteFile(filepath.Join(vexDir, "bookworm.json"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if st = verdictOf(t, env, lb, "quarantine/bookworm:12"); st.Verdict.State == gate.StateExempt {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with an exception per finding: %+v", st.Verdict)
		}
	}
	r = must(t, run(t, env, "promote", "quarantine/bookworm:12", "--server", lb), "promote")
	if !strings.Contains(r.Stdout, "live/bookworm:12@"+img.Digest.String()) {
		t.Errorf("promote output:\n%s", r.Stdout)
	}
	// The user copied with its password pulls live/ by digest.
	ref, err := name.ParseReference(c.Addr()+"/live/bookworm:12", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "ops", Password: opsPassword}))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d.String() != img.Digest.String() {
		t.Errorf("live/bookworm:12 is %s, want %s", d, img.Digest)
	}
	if after := c.auditVerify(); after <= entriesBefore {
		t.Errorf("audit chain: %d entries after the flow, %d copied", after, entriesBefore)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(c.mustDrydock("", "audit", "--json").Stdout), "\n") {
		var e struct{ Action, Outcome, Digest string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Digest == img.Digest.String() {
			seen[e.Action+"/"+e.Outcome] = true
		}
	}
	for _, k := range []string{"import/ok", "scan/ok", "verdict/ok", "promotion/refused", "promotion/ok"} {
		if !seen[k] {
			t.Errorf("no %s audit entry for the image across the copy: %v", k, seen)
		}
	}
}

// opsPassword is the admin user's password (given on stdin by run).
const opsPassword = "ops-password-1"
