// Package attesttest finds the stock signing clients the signature tests
// run: cosign and oras, built from their Go modules (hack/signtools) by
// `make signtools` into $DRYDOCK_CACHE/tools. A test that needs one and
// does not find it skips with the command to run, and fails under
// CI=true.
package attesttest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/testenv"
)

// Versions of the tools, as hack/signtools/go.mod pins them and the
// Makefile names the binaries.
const (
	CosignVersion = "v2.6.5"
	OrasVersion   = "v1.3.6"
)

// Cosign returns the path of the cosign binary.
func Cosign(t testing.TB) string { return tool(t, "cosign-"+CosignVersion) }

// Oras returns the path of the oras binary.
func Oras(t testing.TB) string { return tool(t, "oras-"+OrasVersion) }

func tool(t testing.TB, name string) string {
	t.Helper()
	dir, err := config.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tools", name)
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "%s is not built: run `make signtools` (it builds cosign and oras from hack/signtools)", p)
	}
	return p
}

// Run runs a tool with args in dir and the environment env (added to a
// minimal one: no network proxies, a private HOME so nothing of the
// user's is read or written) and returns its combined output. It fails
// the test when wantOK and the tool fails, or the other way round.
func Run(t testing.TB, wantOK bool, dir string, env []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	home := filepath.Join(dir, ".home")
	_ = os.MkdirAll(home, 0o700)
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TUF_ROOT=" + filepath.Join(home, "tuf"),
		"SIGSTORE_NO_CACHE=true", "DOCKER_CONFIG=" + filepath.Join(home, "docker")}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s := out.String()
	switch {
	case wantOK && err != nil:
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, s)
	case !wantOK && err == nil:
		t.Fatalf("%s %s succeeded, want a failure\n%s", filepath.Base(bin), strings.Join(args, " "), s)
	}
	return s
}
