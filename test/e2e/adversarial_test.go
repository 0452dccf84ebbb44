package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/testimage"
)

// adminPassword reads the password the first start generated.
func adminPassword(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "auth", "initial-admin-password"))
	if err != nil {
		t.Fatalf("the first start wrote no admin password: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// addUser creates a user through the CLI on the server's data directory.
func addUser(t *testing.T, data, name, password string, roles ...string) {
	t.Helper()
	args := []string{"user", "add", name, "--password-stdin", "--data", data}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	cmd := exec.CommandContext(t.Context(), drydockBin, args...)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("drydock %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// createToken creates an API token through the CLI and returns its secret.
func createToken(t *testing.T, data, name, expires string, roles ...string) string {
	t.Helper()
	args := []string{"token", "create", name, "--expires", expires, "--data", data}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	secret := strings.TrimSpace(mustDrydock(t, nil, args...).Stdout)
	if !strings.HasPrefix(secret, auth.TokenPrefix) {
		t.Fatalf("token create printed %q", secret)
	}
	return secret
}

// attempt runs a client command that must be refused; it returns the output.
func attempt(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("%s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// rawRequest sends one registry request with basic credentials.
func rawRequest(t *testing.T, method, url, user, pass string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLiveAdversarial: with anonymous access off, a user holding every
// role but admin tries every way into live/ other than a promotion of a
// passing digest, with crane, skopeo and raw requests. Every attempt is
// refused and audited and live/ is unchanged. A cluster credential pulls
// from live/ only.
func TestLiveAdversarial(t *testing.T) {
	requireTool(t, "skopeo")
	good := testimage.Require(t, testimage.Bookworm)
	bad := testimage.Require(t, testimage.BookwormNginx)
	idx := testimage.RequireIndex(t, testimage.MultiArchTrixie, testimage.MultiArchSpecs)
	data := t.TempDir()
	cfg, vexDir := gateConfig(t, data, "")
	s := startServeEnv(t, data, nil, "--config", cfg)
	host := s.Addr
	adminSrv := "http://admin:" + adminPassword(t, data) + "@" + host

	addUser(t, data, "mallory", "mallory-password", "pull:*", "push:*", "promote:*")
	mallorySrv := "http://mallory:mallory-password@" + host
	mustDrydock(t, nil, "import", good.OCIReference(), "--as", "app:1", "--server", adminSrv)
	mustDrydock(t, nil, "import", bad.OCIReference(), "--as", "bad:1", "--server", adminSrv)
	stGood := waitVerdict(t, nil, adminSrv, "quarantine/app:1")
	stBad := waitVerdict(t, nil, adminSrv, "quarantine/bad:1")
	if stBad.Verdict.State != gate.StateFail {
		t.Fatalf("quarantine/bad:1 is %s, want fail", stBad.Verdict.State)
	}
	writeVEX(t, filepath.Join(vexDir, "app.json"), "quarantine/app", gatetest.FailingCVEs(stGood.Verdict), time.Now().Add(24*time.Hour))
	// mallory holds promote: a promotion of a passing digest is allowed.
	mustDrydock(t, nil, "promote", "quarantine/app:1", "--server", mallorySrv)
	liveBefore := digestOf(t, s, "live/app:1", remoteAuth("admin", adminPassword(t, data)))

	cr := crane(t)
	craneEnv := []string{"DOCKER_CONFIG=" + dockerConfig(t, host, "mallory", "mallory-password")}
	creds := "mallory:mallory-password"
	badManifest := rawManifest(t, host, "quarantine/bad", "1", "mallory", "mallory-password")
	layer := firstLayer(t, badManifest)

	attempts := []struct {
		name string
		run  func() string
	}{
		{"skopeo push of an image", func() string {
			return attempt(t, nil, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds,
				bad.OCIReference(), "docker://"+host+"/live/bad:1")
		}},
		{"crane push of an image", func() string {
			return attempt(t, craneEnv, cr, "copy", "--insecure", host+"/quarantine/bad:1", host+"/live/bad:2")
		}},
		{"skopeo push of an index", func() string {
			return attempt(t, nil, "skopeo", "--insecure-policy", "copy", "--all", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds,
				idx.OCIReference(), "docker://"+host+"/live/idx:2")
		}},
		{"crane push of an index", func() string {
			return attempt(t, craneEnv, cr, "index", "append", "--insecure", "-m", host+"/quarantine/bad:1", "-t", host+"/live/idx:1")
		}},
		{"skopeo tag overwrite", func() string {
			return attempt(t, nil, "skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
				"--src-creds", creds, "--dest-creds", creds, "docker://"+host+"/quarantine/bad:1", "docker://"+host+"/live/app:1")
		}},
		{"crane tag overwrite", func() string {
			return attempt(t, craneEnv, cr, "copy", "--insecure", host+"/quarantine/bad:1", host+"/live/app:1")
		}},
		{"crane tag delete", func() string { return attempt(t, craneEnv, cr, "delete", "--insecure", host+"/live/app:1") }},
		{"skopeo delete", func() string {
			return attempt(t, nil, "skopeo", "delete", "--tls-verify=false", "--creds", creds, "docker://"+host+"/live/app:1")
		}},
		{"blob mount from quarantine", func() string {
			code, body := rawRequest(t, "POST", s.URL()+"/v2/live/bad/blobs/uploads/?mount="+layer+"&from=quarantine/bad", "mallory", "mallory-password", nil)
			if code != http.StatusForbidden {
				t.Errorf("blob mount: %d %s", code, body)
			}
			return body
		}},
		{"manifest referencing a failing quarantined digest", func() string {
			code, body := rawRequest(t, "PUT", s.URL()+"/v2/live/bad/manifests/1", "mallory", "mallory-password", badManifest,
				"Content-Type", "application/vnd.oci.image.manifest.v1+json")
			if code != http.StatusForbidden {
				t.Errorf("manifest PUT: %d %s", code, body)
			}
			return body
		}},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			if out := a.run(); !strings.Contains(out, "live/ is write-protected") {
				t.Errorf("the refusal does not show drydock's reason:\n%s", out)
			}
		})
	}
	t.Run("promote of a failing digest", func(t *testing.T) {
		r := drydock(t, nil, "promote", "quarantine/bad:1", "--server", mallorySrv)
		if r.Code != 1 || !strings.Contains(r.Stderr, "refused: the verdict is FAIL") {
			t.Errorf("exit %d\n%s", r.Code, r.Stderr)
		}
	})

	// live/ is as the promotion left it.
	if d := digestOf(t, s, "live/app:1", remoteAuth("admin", adminPassword(t, data))); d != liveBefore {
		t.Errorf("live/app:1 changed: %s, was %s", d, liveBefore)
	}
	code, body := rawRequest(t, "GET", s.URL()+"/v2/_catalog", "admin", adminPassword(t, data), nil)
	var cat struct{ Repositories []string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cat) != nil {
		t.Fatalf("catalog: %d %s", code, body)
	}
	live := slices.DeleteFunc(slices.Clone(cat.Repositories), func(r string) bool { return !strings.HasPrefix(r, "live/") })
	if !slices.Equal(live, []string{"live/app"}) {
		t.Errorf("live/ holds %v, want only live/app", live)
	}
	// live/app holds the promoted tag, and beside it only the gate's own
	// signatures of that digest in cosign's tag scheme.
	code, body = rawRequest(t, "GET", s.URL()+"/v2/live/app/tags/list", "admin", adminPassword(t, data), nil)
	var tags struct{ Tags []string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &tags) != nil || !slices.Contains(tags.Tags, "1") {
		t.Errorf("live/app tags: %d %s", code, body)
	}
	for _, tag := range tags.Tags {
		if ts, ok := imgref.ParseTagScheme(tag); tag != "1" && (!ok || ts.Subject.String() != liveBefore.String()) {
			t.Errorf("live/app has tag %q: neither the promoted tag nor a signature of %s", tag, liveBefore)
		}
	}

	// Every attempt is in the audit log under mallory's name.
	refused := map[audit.Action]int{}
	for _, e := range auditOf(t, data, func(e audit.Entry) bool { return e.Actor == "mallory" && e.Outcome == audit.OutcomeRefused }) {
		refused[e.Action]++
	}
	if refused[audit.ActionBypassRefused] < len(attempts) || refused[audit.ActionPromotion] != 1 {
		t.Errorf("audit: mallory's refusals %v, want >= %d bypass_refused and 1 promotion", refused, len(attempts))
	}
	if v := mustDrydock(t, nil, "audit", "verify", "--data", data); !strings.HasPrefix(v.Stdout, "audit log intact: ") {
		t.Errorf("audit verify: %s", v.Stdout)
	}

	t.Run("cluster credential pulls from live/ only", func(t *testing.T) {
		tok := createToken(t, data, "cluster", "30d", "pull:live")
		ccreds := "cluster:" + tok
		out := runTool(t, "skopeo", "inspect", "--format", "{{.Digest}}", "--tls-verify=false", "--creds", ccreds, "docker://"+host+"/live/app:1")
		if strings.TrimSpace(out) != liveBefore.String() {
			t.Errorf("the cluster credential read %q from live/app:1, want %s", out, liveBefore)
		}
		if out := attempt(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", ccreds, "docker://"+host+"/quarantine/app:1"); !strings.Contains(out, "may not pull") {
			t.Errorf("pull from quarantine/: %s", out)
		}
		if out := attempt(t, nil, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", ccreds,
			good.OCIReference(), "docker://"+host+"/quarantine/cluster:1"); !strings.Contains(out, "may not push") && !strings.Contains(out, "403 (Forbidden)") {
			// skopeo's first request is a HEAD of a blob, whose 403 has no body to show.
			t.Errorf("push to quarantine/: %s", out)
		}
		if out := attempt(t, nil, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", ccreds,
			good.OCIReference(), "docker://"+host+"/live/cluster:1"); !strings.Contains(out, "write-protected") {
			t.Errorf("push to live/: %s", out)
		}
		code, body := rawRequest(t, "GET", s.URL()+"/v2/_catalog", "cluster", tok, nil)
		if code != http.StatusOK || !strings.Contains(body, `"live/app"`) || strings.Contains(body, "quarantine/") {
			t.Errorf("catalog for the cluster credential: %d %s", code, body)
		}
		raw, _ := os.ReadFile(filepath.Join(data, "auth", "auth.db"))
		wal, _ := os.ReadFile(filepath.Join(data, "auth", "auth.db-wal"))
		if bytes.Contains(raw, []byte(tok)) || bytes.Contains(wal, []byte(tok)) || bytes.Contains(raw, []byte(tok[len(tok)-20:])) {
			t.Error("the token is stored in clear")
		}
	})
}

// rawManifest fetches a manifest's bytes.
func rawManifest(t *testing.T, host, repo, ref, user, pass string) []byte {
	t.Helper()
	code, body := rawRequest(t, "GET", "http://"+host+"/v2/"+repo+"/manifests/"+ref, user, pass, nil,
		"Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
	if code != http.StatusOK {
		t.Fatalf("GET %s:%s: %d %s", repo, ref, code, body)
	}
	return []byte(body)
}

func firstLayer(t *testing.T, manifest []byte) string {
	t.Helper()
	var m struct{ Layers []struct{ Digest string } }
	if err := json.Unmarshal(manifest, &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest without layers: %v", err)
	}
	return m.Layers[0].Digest
}

// TestAuthErrors: wrong password, expired token and missing role give
// 401/403 with messages that say what is wrong; anonymous access is off by
// default.
func TestAuthErrors(t *testing.T) {
	data := t.TempDir()
	s := startServeEnv(t, data, nil)
	addUser(t, data, "reader", "reader-password", "pull:quarantine")

	code, body := rawRequest(t, "GET", s.URL()+"/v2/quarantine/x/tags/list", "", "", nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "authentication required") {
		t.Errorf("anonymous: %d %s", code, body)
	}
	code, body = rawRequest(t, "GET", s.URL()+"/v2/", "reader", "wrong-password", nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "invalid username or password") {
		t.Errorf("wrong password: %d %s", code, body)
	}
	code, body = rawRequest(t, "POST", s.URL()+"/v2/quarantine/x/blobs/uploads/", "reader", "reader-password", nil)
	if code != http.StatusForbidden || !strings.Contains(body, "may not push") {
		t.Errorf("missing role: %d %s", code, body)
	}

	// podman login goes through the bearer-token flow.
	if _, err := exec.LookPath("podman"); err == nil {
		authfile := filepath.Join(t.TempDir(), "auth.json")
		out := runTool(t, "podman", "login", "--tls-verify=false", "--authfile", authfile, "-u", "reader", "-p", "reader-password", s.Addr)
		if !strings.Contains(out, "Login Succeeded") {
			t.Errorf("podman login: %s", out)
		}
		if out := attempt(t, nil, "podman", "login", "--tls-verify=false", "--authfile", authfile, "-u", "reader", "-p", "wrong-password", s.Addr); !strings.Contains(out, "invalid username") {
			t.Errorf("podman login with a wrong password: %s", out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("podman is not installed; `make test` installs it")
	}

	// A token that expired: created by the store with a clock in the past.
	st, err := auth.OpenStore(auth.DefaultPath(data), auth.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := st.CreateToken(context.Background(), auth.TokenSpec{Name: "old", Grants: auth.Grants{{Role: auth.RolePull, Namespace: "live"}},
		ExpiresAt: time.Now().Add(-24 * time.Hour)})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, body = rawRequest(t, "GET", s.URL()+"/v2/live/x/tags/list", "old", secret, nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, `token \"old\" expired at`) {
		t.Errorf("expired token: %d %s", code, body)
	}
	r := drydock(t, []string{"DRYDOCK_TOKEN=" + secret}, "verdict", "quarantine/x:1", "--server", s.URL())
	if r.Code == 0 || !strings.Contains(r.Stderr, "expired at") {
		t.Errorf("verdict with an expired token: exit %d %s", r.Code, r.Stderr)
	}
}

// remoteAuth is a go-containerregistry option with basic credentials.
func remoteAuth(user, pass string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: pass})
}

// TestLoginLogout: drydock login checks the credentials with the server
// and stores them in the docker config, where the other commands (and
// crane, skopeo) find them; logout removes them.
func TestLoginLogout(t *testing.T) {
	data := t.TempDir()
	s := startServeEnv(t, data, nil)
	addUser(t, data, "dev", "dev-password", "pull:quarantine", "push:quarantine")
	env := []string{"DOCKER_CONFIG=" + t.TempDir(), "DRYDOCK_SERVER=" + s.URL()}

	bad := exec.CommandContext(t.Context(), drydockBin, "login", "-u", "dev", "--password-stdin")
	bad.Env = append(os.Environ(), env...)
	bad.Stdin = strings.NewReader("wrong-password\n")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "invalid username or password") {
		t.Fatalf("login with a wrong password: %v\n%s", err, out)
	}
	if r := drydock(t, env, "images"); r.Code == 0 || !strings.Contains(r.Stderr, "drydock login") {
		t.Fatalf("images before login: exit %d\n%s", r.Code, r.Stderr)
	}
	good := exec.CommandContext(t.Context(), drydockBin, "login", "-u", "dev", "--password-stdin")
	good.Env = append(os.Environ(), env...)
	good.Stdin = strings.NewReader("dev-password\n")
	if out, err := good.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	dir, _ := smallLayout(t)
	mustDrydock(t, env, "import", "oci:"+dir+":v1", "--as", "small:1")
	if r := mustDrydock(t, env, "images"); !strings.Contains(r.Stdout, "quarantine/small") {
		t.Errorf("images after login:\n%s", r.Stdout)
	}
	if r := mustDrydock(t, env, "logout"); !strings.Contains(r.Stdout, "Removed the credentials") {
		t.Errorf("logout: %s", r.Stdout)
	}
	if r := drydock(t, env, "images"); r.Code == 0 {
		t.Error("images works after logout")
	}
}
