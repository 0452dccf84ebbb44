package realdb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestReapStale: directories of processes that ended are removed; those of
// running processes (this one, its parent) and foreign names are kept.
func TestReapStale(t *testing.T) {
	tmp := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{ // name -> removed
		fmt.Sprintf("%s%d-123", tmpPrefix, dead.Process.Pid): true,
		fmt.Sprintf("%s%d-456", tmpPrefix, os.Getpid()):      false,
		fmt.Sprintf("%s%d-789", tmpPrefix, os.Getppid()):     false,
		tmpPrefix + "x-1": false,
		"other-1":         false,
		// The old naming, a random number where the pid is now.
		fmt.Sprintf("drydock-realdb-%d", dead.Process.Pid): false,
	}
	for n := range names {
		if err := os.Mkdir(filepath.Join(tmp, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	reapStale(tmp)
	for n, removed := range names {
		_, err := os.Stat(filepath.Join(tmp, n))
		if gone := os.IsNotExist(err); gone != removed {
			t.Errorf("%s: removed %v, want %v", n, gone, removed)
		}
	}
}
