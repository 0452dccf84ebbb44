package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/drydock-project/drydock/internal/config"
)

var (
	craneOnce sync.Once
	craneBin  string
	craneErr  error
)

// crane builds go-containerregistry's crane CLI (a go tool of this module)
// once per test binary, into the cache dir, and returns its path.
func crane(t testing.TB) string {
	t.Helper()
	craneOnce.Do(func() {
		var dir string
		if dir, craneErr = config.DefaultCacheDir(); craneErr != nil {
			return
		}
		dir = filepath.Join(dir, "tools")
		if craneErr = os.MkdirAll(dir, 0o755); craneErr != nil {
			return
		}
		craneBin = filepath.Join(dir, "crane")
		cmd := exec.Command("go", "build", "-o", craneBin, "github.com/google/go-containerregistry/cmd/crane")
		if out, err := cmd.CombinedOutput(); err != nil {
			craneErr = err
			craneBin = string(out)
		}
	})
	if craneErr != nil {
		t.Fatalf("build crane: %v\n%s", craneErr, craneBin)
	}
	return craneBin
}

// sameBlobs fails unless two directories hold the same files with the same bytes.
func sameBlobs(t testing.TB, wantDir, gotDir string) {
	t.Helper()
	want := readTree(t, wantDir)
	got := readTree(t, gotDir)
	for p, b := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: missing in %s", p, gotDir)
		} else if !bytes.Equal(g, b) {
			t.Errorf("%s: bytes differ", p)
		}
	}
}

func readTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
