package exceptions_test

import (
	"context"
	"testing"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/exceptions/exceptionstest"
)

func TestConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		exceptionstest.Run(t, func(t *testing.T) func() exceptions.Store {
			tg := newTarget(t)
			return func() exceptions.Store {
				s, err := exceptions.Open(context.Background(), tg.Opener(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		})
	})
}
