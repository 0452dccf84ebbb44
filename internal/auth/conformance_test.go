package auth_test

import (
	"context"
	"testing"

	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/auth/authtest"
	"github.com/drydock-project/drydock/internal/database/dbtest"
)

func TestSQLConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		authtest.Run(t, func(t *testing.T) func() auth.Backend {
			tg := newTarget(t)
			return func() auth.Backend {
				b, err := auth.NewSQL(context.Background(), tg.Open(t, auth.Component))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		})
	})
}

func TestSQLSessionsConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		authtest.RunSessions(t, func(t *testing.T) func() auth.SessionBackend {
			tg := newTarget(t)
			return func() auth.SessionBackend {
				b, err := auth.NewSQL(context.Background(), tg.Open(t, auth.Component))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		})
	})
}
