package store_test

import (
	"context"
	"testing"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		storetest.Run(t, func(t *testing.T) func() store.Store {
			tg := newTarget(t)
			return func() store.Store {
				s, err := store.Open(context.Background(), tg.Opener(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		})
	})
}
