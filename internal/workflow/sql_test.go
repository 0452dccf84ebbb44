package workflow_test

import (
	"context"
	"testing"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/workflow"
	"github.com/drydock-project/drydock/internal/workflow/workflowtest"
)

func TestConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		workflowtest.Run(t, func(t *testing.T) func() workflow.Store {
			tg := newTarget(t)
			return func() workflow.Store {
				s, err := workflow.Open(context.Background(), tg.Opener(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		})
	})
}
