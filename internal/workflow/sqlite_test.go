package workflow_test

import (
	"path/filepath"
	"testing"

	"github.com/drydock-project/drydock/internal/workflow"
	"github.com/drydock-project/drydock/internal/workflow/workflowtest"
)

func TestSQLiteConformance(t *testing.T) {
	workflowtest.Run(t, func(t *testing.T) workflow.Store {
		s, err := workflow.OpenSQLite(filepath.Join(t.TempDir(), "wf", "workflow.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
