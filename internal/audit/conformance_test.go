package audit_test

import (
	"context"
	"testing"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/audit/audittest"
	"github.com/drydock-project/drydock/internal/database/dbtest"
)

func TestMemoryConformance(t *testing.T) {
	audittest.Run(t, func(*testing.T) func() audit.Backend {
		m := audit.NewMemory()
		return func() audit.Backend { return m }
	})
}

func TestSQLConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		audittest.Run(t, func(t *testing.T) func() audit.Backend {
			tg := newTarget(t)
			return func() audit.Backend {
				b, err := audit.NewSQL(context.Background(), tg.Open(t, audit.Component))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		})
	})
}
