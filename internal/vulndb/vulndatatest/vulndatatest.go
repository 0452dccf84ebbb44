// Package vulndatatest locates the real feed data (../shared/vulndata) for
// tests. It is a test-support package: only _test.go files import it.
package vulndatatest

import (
	"os"
	"path/filepath"
	"testing"
)

// Env names the environment variable that overrides the search.
const Env = "DRYDOCK_VULNDATA"

// Dir returns the vulndata directory: $DRYDOCK_VULNDATA when set, else the
// first shared/vulndata found walking up from the working directory. It
// skips the test when there is none (a fresh clone has no ../shared).
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(Env); d != "" {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		t.Skipf("vulndata not found: %s=%q is not a directory", Env, d)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Skipf("vulndata not found: %v", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "vulndata")
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			return cand
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Skip("vulndata not found: ../shared is not beside this checkout")
	return ""
}
