package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/testenv"
)

// TestRemoteAfterLogin: after "drydock login URL", images, import,
// policy show/apply and audit (also --follow) talk to that server with no --server and no
// $DRYDOCK_SERVER; $DRYDOCK_SERVER and --server still come first; audit
// with --data reads the local database; logout forgets the server.
func TestRemoteAfterLogin(t *testing.T) {
	data := t.TempDir()
	s := startServeEnv(t, data, nil)
	addUser(t, data, "ops", "ops-password", "admin")
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=", "DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"DRYDOCK_SERVER=", "DRYDOCK_DATA=", "DRYDOCK_CONFIG=", "DRYDOCK_TOKEN="}

	login := exec.CommandContext(t.Context(), drydockBin, "login", s.URL(), "-u", "ops", "--password-stdin")
	login.Env = append(os.Environ(), env...)
	login.Stdin = strings.NewReader("ops-password\n")
	if out, err := login.CombinedOutput(); err != nil || !strings.Contains(string(out), "now use "+s.URL()+" by default") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	cfgFile := filepath.Join(home, ".config", "drydock", "cli.json")
	if fi, err := os.Stat(cfgFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the CLI config: %v %v", fi, err)
	}

	dir, _ := smallLayout(t)
	mustDrydock(t, env, "import", "oci:"+dir+":v1", "--as", "small:1")
	if r := mustDrydock(t, env, "images"); !strings.Contains(r.Stdout, "quarantine/small") {
		t.Errorf("images after login:\n%s", r.Stdout)
	}
	pushed := func(r result, tag string) bool {
		for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			var e audit.Entry
			if json.Unmarshal([]byte(line), &e) == nil && e.Action == audit.ActionPush && e.Actor == "ops" &&
				e.Repository == "quarantine/small" && e.Reference == tag {
				return true
			}
		}
		return false
	}
	remote := mustDrydock(t, env, "audit", "--json")
	if !pushed(remote, "1") {
		t.Errorf("audit after login has no push of small:1 by ops:\n%s", remote.Stdout)
	}
	// The same log read from the server's database.
	if local := mustDrydock(t, env, "audit", "--json", "--data", data); !pushed(local, "1") {
		t.Errorf("audit --data:\n%s", local.Stdout)
	}
	if r := drydock(t, env, "audit", "--data", data, "--server", s.URL()); r.Code == 0 || !strings.Contains(r.Stderr, "give one of them") {
		t.Errorf("audit with --data and --server: exit %d %s", r.Code, r.Stderr)
	}
	// $DRYDOCK_SERVER comes before the login, --server before both.
	elsewhere := append(slices.Clone(env), "DRYDOCK_SERVER=http://127.0.0.1:1")
	if r := drydock(t, elsewhere, "audit"); r.Code == 0 || !strings.Contains(r.Stderr, "127.0.0.1:1") {
		t.Errorf("audit with $DRYDOCK_SERVER elsewhere: exit %d %s", r.Code, r.Stderr)
	}
	if r := mustDrydock(t, elsewhere, "images", "--server", s.URL()); !strings.Contains(r.Stdout, "quarantine/small") {
		t.Errorf("images --server over $DRYDOCK_SERVER:\n%s", r.Stdout)
	}

	// --follow prints what is recorded after it started.
	follow := exec.CommandContext(t.Context(), drydockBin, "audit", "--follow", "--json")
	follow.Env = append(os.Environ(), env...)
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.LockedBuffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })
	lines := make(chan audit.Entry, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e audit.Entry
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				lines <- e
			}
		}
	}()
	// It reads the log so far first: wait for the first push, then push again.
	waitFor := func(tag string) {
		t.Helper()
		deadline := time.After(3 * time.Minute)
		for {
			select {
			case e, ok := <-lines:
				if !ok {
					t.Fatalf("audit --follow ended: %s", stderr.String())
				}
				if e.Action == audit.ActionPush && e.Repository == "quarantine/small" && e.Reference == tag {
					return
				}
			case <-deadline:
				t.Fatalf("audit --follow printed no push of small:%s: %s", tag, stderr.String())
			}
		}
	}
	waitFor("1")
	mustDrydock(t, env, "import", "oci:"+dir+":v1", "--as", "small:2")
	waitFor("2")

	// The policy through the API, with no --server either.
	if r := mustDrydock(t, env, "policy", "show"); !strings.Contains(r.Stdout, "maxSeverity: HIGH") {
		t.Errorf("policy show:\n%s", r.Stdout)
	}
	bad := writeFile(t, "bad.yaml", "version: v1\nmaxSeverity: EXTREME\n")
	if r := drydock(t, env, "policy", "apply", bad); r.Code == 0 || !strings.Contains(r.Stderr, "line 2: maxSeverity:") {
		t.Errorf("policy apply of a bad policy: exit %d %s", r.Code, r.Stderr)
	}
	good := writeFile(t, "good.yaml", "version: v1\nmaxSeverity: CRITICAL\n")
	if r := mustDrydock(t, env, "policy", "apply", good); !strings.Contains(r.Stdout, "policy replaced") {
		t.Errorf("policy apply:\n%s", r.Stdout)
	}
	if r := mustDrydock(t, env, "policy", "show"); r.Stdout != "version: v1\nmaxSeverity: CRITICAL\n" {
		t.Errorf("policy show after apply:\n%s", r.Stdout)
	}

	if r := mustDrydock(t, env, "logout"); !strings.Contains(r.Stdout, "no longer the default server") ||
		!strings.Contains(r.Stdout, "Removed the credentials") {
		t.Errorf("logout: %s", r.Stdout)
	}
	if b, err := os.ReadFile(cfgFile); err != nil || strings.Contains(string(b), "server") {
		t.Errorf("the CLI config after logout: %s %v", b, err)
	}
	// With no server left, audit reads the local default data directory.
	if r := drydock(t, env, "audit"); r.Code == 0 || !strings.Contains(r.Stderr, "no audit log at") {
		t.Errorf("audit after logout: exit %d %s", r.Code, r.Stderr)
	}
}
