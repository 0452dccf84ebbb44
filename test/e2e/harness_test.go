// Package e2e tests drydock as users run it: the real binary, a real
// `drydock serve` process over loopback HTTP, and standard clients.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/kube/kubetest"
	"github.com/drydock-project/drydock/internal/patch/sandbox"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// drydockBin is the binary built once by TestMain.
var drydockBin string

func TestMain(m *testing.M) {
	sandbox.Init() // patch.Run in this process (the CLI/API/Run test) runs the sandbox
	dir, err := os.MkdirTemp("", "drydock-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	drydockBin = filepath.Join(dir, "drydock")
	build := exec.Command("go", "build", "-o", drydockBin, "github.com/drydock-project/drydock/cmd/drydock")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build drydock:", err)
		os.Exit(1)
	}
	code := m.Run()
	kubetest.StopShared()
	os.RemoveAll(dir)
	realdb.Remove()
	os.Exit(code)
}

// serveProc is a running `drydock serve`.
type serveProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	Addr string // host:port
	Data string

	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
}

// URL is the server's base URL.
func (s *serveProc) URL() string { return "http://" + s.Addr }

// Logs returns what the server logged so far.
func (s *serveProc) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// anonymousAll lets requests without credentials do everything but admin,
// for the tests whose subject is not authentication.
const anonymousAll = "DRYDOCK_AUTH_ANONYMOUS=pull:*,push:*,promote:*,metrics"

// startServe runs `drydock serve --addr 127.0.0.1:0 --data DATA ARGS...`
// with anonymous access on, and waits until it logs the address it
// listens on.
func startServe(t testing.TB, data string, args ...string) *serveProc {
	t.Helper()
	return startServeEnv(t, data, []string{anonymousAll}, args...)
}

// startServeEnv is startServe with the given extra environment instead
// of anonymous access (the server's defaults: anonymous access off).
func startServeEnv(t testing.TB, data string, env []string, args ...string) *serveProc {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	cmd := exec.Command(drydockBin, serveArgs(data, args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	return startServeCmd(t, cmd, data)
}

// serveArgs are the arguments of `drydock serve` on a loopback port with
// JSON logs (startServeCmd reads the address from them).
func serveArgs(data string, args ...string) []string {
	return append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--log-format", "json"}, args...)
}

// startServeCmd starts cmd, a `drydock serve` with serveArgs, and waits
// until it logs the address it listens on.
func startServeCmd(t testing.TB, cmd *exec.Cmd, data string) *serveProc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serveProc{t: t, cmd: cmd, Data: data, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "drydock serving" {
				select {
				case addrc <- rec.Addr:
				default:
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.Kill() })
	select {
	case s.Addr = <-addrc:
	case <-s.exited:
		t.Fatalf("drydock serve exited before listening:\n%s", s.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("drydock serve did not start in 30s:\n%s", s.Logs())
	}
	return s
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *serveProc) Stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.t.Fatalf("drydock serve did not stop within 60s of SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("drydock serve exited with %d after SIGTERM:\n%s", code, s.Logs())
	}
}

// Kill ends the process with SIGKILL (as a crash would).
func (s *serveProc) Kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// result of one drydock CLI run.
type result struct {
	Stdout, Stderr string
	Code           int
}

// drydock runs the CLI with args and an optional environment addition.
func drydock(t testing.TB, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, drydockBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run drydock %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// mustDrydock runs the CLI and fails the test unless it exits 0.
func mustDrydock(t testing.TB, env []string, args ...string) result {
	t.Helper()
	r := drydock(t, env, args...)
	if r.Code != 0 {
		t.Fatalf("drydock %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// requireTool skips (or fails under CI=true) when a program is missing.
func requireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testenv.Missing(t, "%s is not installed (make deps installs it)", n)
		}
	}
}

// runTool runs an external program and returns its combined output.
func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// digestOf returns the manifest digest the server holds for repo:tag.
func digestOf(t testing.TB, s *serveProc, repoTag string, opts ...remote.Option) v1.Hash {
	t.Helper()
	desc, err := remote.Head(ref(t, s.Addr+"/"+repoTag), opts...)
	if err != nil {
		t.Fatalf("%s not in the registry: %v", repoTag, err)
	}
	return desc.Digest
}

// catalog returns the server's repositories.
func catalog(t testing.TB, s *serveProc) []string {
	t.Helper()
	reg, err := name.NewRegistry(s.Addr, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), reg)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	sort.Strings(repos)
	return repos
}

// writeConfig writes a drydock config file and returns its path.
func writeConfig(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "drydock.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// auditOf returns the entries of the audit log in data that keep keeps,
// read with `drydock audit --json`.
func auditOf(t testing.TB, data string, keep func(audit.Entry) bool) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for _, line := range strings.Split(strings.TrimSpace(mustDrydock(t, nil, "audit", "--json", "--data", data).Stdout), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
