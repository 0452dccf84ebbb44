package server

import (
	"os"
	"testing"

	"github.com/drydock-project/drydock/internal/kube/kubetest"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestMain removes the real-data database the gate tests build (about
// 50 MB under the temporary directory) and stops the Kubernetes control
// plane the kube tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.StopShared()
	realdb.Remove()
	os.Exit(code)
}
