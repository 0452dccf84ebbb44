package gc

import (
	"context"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
)

// TestSQLiteMarksWaitForNoWriter: on SQLite, a write's mark and the
// collector's claims never wait for the database's single writer (held
// here by another transaction for longer than the test waits): the keys
// of a cycle are in the process's memory.
func TestSQLiteMarksWaitForNoWriter(t *testing.T) {
	ctx := context.Background()
	m := joinRunning(t, dbtest.SQLite(t))
	c := armed(t, m)
	tx, err := m.db.SQL().BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE gc_members SET joined_at = joined_at`); err != nil {
		t.Fatal(err)
	}
	held := true
	defer func() {
		if held {
			_ = tx.Rollback()
		}
	}()
	done := make(chan error, 1)
	go func() {
		g, err := m.Enter(ctx)
		if err != nil {
			done <- err
			return
		}
		defer g.Done()
		if err := g.Protect(ctx, "blob/marked"); err != nil {
			done <- err
			return
		}
		got, err := c.Claim(ctx, []string{"blob/marked", "blob/free"})
		if err == nil && (len(got) != 1 || got[0] != "blob/free") {
			t.Errorf("claimed %v, want [blob/free]", got)
		}
		if err == nil {
			err = c.Release(ctx, got)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		_ = tx.Rollback()
		held = false
		t.Fatal("the mark and the claim waited for the database's writer")
	}
}
