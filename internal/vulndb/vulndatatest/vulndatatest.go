// Package vulndatatest locates the real feed data (../shared/vulndata) for
// tests. It is a test-support package: only _test.go files import it.
package vulndatatest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/drydock-project/drydock/internal/testenv"
)

// Env names the environment variable that overrides the search.
const Env = "DRYDOCK_VULNDATA"

// marker is a file every copy of the data has: a directory without it (an
// empty or unrelated directory) is not the data.
const marker = "PROVENANCE.tsv"

// Dir returns the vulndata directory: $DRYDOCK_VULNDATA when set, else the
// first shared/vulndata found walking up from the working directory. When
// there is none (a fresh clone has no ../shared) the test skips, or under
// CI=true fails (testenv.Missing): the gate, scan and e2e tests that need
// the data must never pass in CI by not running.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := find()
	if err != nil {
		testenv.Missing(t, "vulnerability data not found: %v", err)
	}
	return d
}

// find returns the vulndata directory, or why there is none.
func find() (string, error) {
	if d := os.Getenv(Env); d != "" {
		if err := check(d); err != nil {
			return "", fmt.Errorf("%s=%q: %w", Env, d, err)
		}
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "vulndata")
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			if err := check(cand); err != nil {
				return "", fmt.Errorf("%s: %w", cand, err)
			}
			return cand, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", errors.New("no shared/vulndata beside this checkout or above it (set " + Env + " to its path)")
}

// check reports whether dir holds the data.
func check(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		return fmt.Errorf("not the vulnerability data (no %s)", marker)
	}
	return nil
}
