package kube_test

import (
	"path/filepath"
	"testing"

	"github.com/drydock-project/drydock/internal/kube"
	"github.com/drydock-project/drydock/internal/kube/inventorytest"
)

func TestSQLiteInventory(t *testing.T) {
	inventorytest.Run(t, func(t *testing.T) kube.InventoryStore {
		s, err := kube.OpenSQLiteInventory(filepath.Join(t.TempDir(), "inventory.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
