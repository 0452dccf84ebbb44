package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain lets the sandbox start this test binary as its processes.
func TestMain(m *testing.M) {
	Init()
	code := m.Run()
	if layoutDir != "" {
		os.RemoveAll(filepath.Dir(layoutDir))
	}
	os.Exit(code)
}
