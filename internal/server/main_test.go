package server

import (
	"os"
	"testing"

	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestMain removes the real-data database the gate tests build (about
// 50 MB under the temporary directory).
func TestMain(m *testing.M) {
	code := m.Run()
	realdb.Remove()
	os.Exit(code)
}
