package patch

import (
	"os"
	"testing"

	"github.com/drydock-project/drydock/internal/patch/sandbox"
)

// TestMain lets the sandbox start this test binary as its processes.
func TestMain(m *testing.M) {
	sandbox.Init()
	os.Exit(m.Run())
}
