package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestSweepDirs: a directory whose owner lives (holds the lock) is left,
// one whose owner is gone (the lock file is there, nobody holds it) is
// swept, and one without a lock file is left alone.
func TestSweepDirs(t *testing.T) {
	root := t.TempDir()
	mk := func(name string) string {
		d := filepath.Join(root, "srv-"+name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	live, dead, bare := mk("live"), mk("dead"), mk("bare")
	if err := OwnDir(live); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, ownerLock), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var removed []string
	SweepDirs(filepath.Join(root, "srv-*"), func(d string) { removed = append(removed, d) })
	if !slices.Equal(removed, []string{dead}) {
		t.Errorf("swept %v, want only %s (live %s and bare %s stay)", removed, dead, live, bare)
	}
	if err := OwnDir(live); err == nil {
		t.Error("a second owner took a directory already owned")
	}
}
