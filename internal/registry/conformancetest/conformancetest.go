// Package conformancetest runs the OCI distribution-spec conformance suite
// (github.com/opencontainers/distribution-spec/conformance, a go.mod tool)
// against a registry and fails the test unless every enabled check passes.
//
// It is shared by the in-process tests of internal/registry and by tests
// that start a real "drydock serve".
package conformancetest

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/config"

	"gopkg.in/yaml.v3"
)

const toolPkg = "github.com/opencontainers/distribution-spec/conformance"

// Result summarises a conformance run.
type Result struct {
	Passed   int      // passed leaf checks
	Failed   []string // names of failed, errored or skipped (unsupported) checks
	Disabled int      // checks disabled by configuration or not applicable
	Output   string   // the suite's console report
}

// Run builds (once, cached) and runs the conformance suite against the
// registry at hostPort (plain HTTP) with the spec 1.1 defaults, using the
// repositories conformance/repo1 and conformance/repo2. It fails t unless at
// least one check ran and all enabled checks passed.
// extraEnv adds OCI_* settings, e.g. OCI_USERNAME and OCI_PASSWORD to log
// in.
func Run(t testing.TB, hostPort string, extraEnv ...string) Result {
	t.Helper()
	bin, err := Build(context.Background())
	if err != nil {
		t.Fatalf("building conformance suite: %v", err)
	}
	res, err := Exec(context.Background(), bin, hostPort, t.TempDir(), extraEnv...)
	if err != nil {
		t.Fatalf("running conformance suite: %v", err)
	}
	t.Logf("conformance: %d passed, %d failed, %d disabled", res.Passed, len(res.Failed), res.Disabled)
	if res.Passed == 0 || len(res.Failed) > 0 {
		t.Logf("conformance report:\n%s", res.Output)
		for _, f := range res.Failed {
			t.Errorf("conformance check failed: %s", f)
		}
		if res.Passed == 0 {
			t.Errorf("conformance suite passed no checks")
		}
	}
	return res
}

// cacheDir is the tools directory of drydock's cache (config.DefaultCacheDir).
func cacheDir() (string, error) {
	d, err := config.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "tools"), nil
}

// Build builds the conformance binary into the tools cache unless a copy
// newer than go.mod is already there, and returns its path.
func Build(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating go.mod: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("locating go.mod: not inside a module")
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	bin := filepath.Join(dir, "conformance")
	modInfo, err := os.Stat(gomod)
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", gomod, err)
	}
	if binInfo, err := os.Stat(bin); err == nil && binInfo.ModTime().After(modInfo.ModTime()) {
		return bin, nil
	}
	// Build next to the target and rename, so concurrent builds never leave
	// a half-written binary behind.
	tmp, err := os.CreateTemp(dir, "conformance-*.tmp")
	if err != nil {
		return "", fmt.Errorf("creating temporary binary: %w", err)
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), toolPkg)
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", toolPkg, err, b)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("installing %s: %w", bin, err)
	}
	return bin, nil
}

// Exec runs the conformance binary against hostPort, writing its reports to
// resultsDir, and parses the results. A non-zero exit of the suite is not an
// error: the results say what failed.
func Exec(ctx context.Context, bin, hostPort, resultsDir string, extraEnv ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = resultsDir // no stray oci-conformance.yaml is picked up
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCI_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"OCI_REGISTRY="+hostPort,
		"OCI_TLS=disabled",
		"OCI_VERSION=1.1",
		"OCI_RESULTS_DIR="+resultsDir,
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	runErr := cmd.Run()
	res, err := parseResults(resultsDir)
	res.Output = buf.String()
	if err != nil {
		return res, fmt.Errorf("%w (suite exit: %v)\n%s", err, runErr, buf.String())
	}
	return res, nil
}

type junitSuites struct {
	Suites []struct {
		Cases []struct {
			Name   string `xml:"name,attr"`
			Status string `xml:"status,attr"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type resultsYAML struct {
	APIs map[string]string `yaml:"apis"`
	Data map[string]string `yaml:"data"`
}

func parseResults(dir string) (Result, error) {
	var res Result
	b, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		return res, fmt.Errorf("reading conformance results: %w", err)
	}
	var j junitSuites
	if err := xml.Unmarshal(b, &j); err != nil {
		return res, fmt.Errorf("parsing junit.xml: %w", err)
	}
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			switch c.Status {
			case "passed":
				res.Passed++
			case "skipped":
				res.Disabled++
			default:
				res.Failed = append(res.Failed, c.Name+" ("+c.Status+")")
			}
		}
	}
	// junit.xml does not tell "skipped as unsupported" from "disabled":
	// results.yaml does, per API and per data set.
	b, err = os.ReadFile(filepath.Join(dir, "results.yaml"))
	if err != nil {
		return res, fmt.Errorf("reading conformance results: %w", err)
	}
	var y resultsYAML
	if err := yaml.Unmarshal(b, &y); err != nil {
		return res, fmt.Errorf("parsing results.yaml: %w", err)
	}
	for kind, m := range map[string]map[string]string{"API": y.APIs, "data": y.Data} {
		for name, st := range m {
			switch strings.ToLower(st) {
			case "pass", "disabled":
			default:
				res.Failed = append(res.Failed, fmt.Sprintf("%s %q: %s", kind, name, st))
			}
		}
	}
	sort.Strings(res.Failed)
	return res, nil
}
