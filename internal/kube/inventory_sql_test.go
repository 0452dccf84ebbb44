package kube_test

import (
	"testing"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/kube"
	"github.com/drydock-project/drydock/internal/kube/inventorytest"
)

func TestInventoryConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		inventorytest.Run(t, func(t *testing.T) func() kube.InventoryStore {
			tg := newTarget(t)
			return func() kube.InventoryStore {
				s, err := kube.OpenInventory(t.Context(), tg.Opener(t))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		})
	})
}
