// Package testenv is the test suite's one policy for prerequisites a
// machine may lack: root, a program, the Debian mirror, the real
// vulnerability data (../shared/vulndata). On a developer's machine a test
// that lacks one skips and says why. Under CI=true it fails instead: `make
// test` installs, builds or fetches everything the suite needs, so a missing
// prerequisite there is a broken CI, never a reason to pass. It is a
// test-support package: only _test.go files and other test-support packages
// import it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports CI=true (any case), where nothing the suite needs may be
// skipped for being absent.
func InCI() bool { return strings.EqualFold(os.Getenv("CI"), "true") }

// Missing ends t because something it needs is absent: it skips with the
// reason, or under CI=true fails with it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: `make test` must provide it, so this fails rather than skips)", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// RequireRoot ends t through Missing unless the test runs as root; why
// says what needs it.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (%s)", why)
	}
}

// RequireTool returns the path of the program name, or ends t through
// Missing naming the Debian package that provides it.
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not installed (apt-get install %s)", name, debianPackage)
	}
	return p
}
