package vulndatatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirFromEnv(t *testing.T) {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, marker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(Env, d)
	if got := Dir(t); got != d {
		t.Errorf("Dir = %q, want %q", got, d)
	}
}

// TestDirAbsent runs this test binary again with the data pointed at a
// missing and at an empty directory: without CI the inner test skips, under
// CI=true it fails naming the cause.
func TestDirAbsent(t *testing.T) {
	if os.Getenv("VULNDATATEST_INNER") != "" {
		Dir(t)
		t.Error("Dir returned without the data")
		return
	}
	for _, dir := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		for _, ci := range []string{"", "true"} {
			cmd := exec.Command(os.Args[0], "-test.run=^TestDirAbsent$", "-test.v")
			cmd.Env = append(os.Environ(), "VULNDATATEST_INNER=1", Env+"="+dir, "CI="+ci)
			out, err := cmd.CombinedOutput()
			switch {
			case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP")):
				t.Errorf("%s, CI unset: %v, want a skip:\n%s", dir, err, out)
			case ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), "vulnerability data not found")):
				t.Errorf("%s, CI=true: %v, want a failure naming the data:\n%s", dir, err, out)
			}
		}
	}
}
