// Package dbtest runs a test against every database engine: SQLite files
// in a temporary data directory, and a fresh database on the test binary's
// PostgreSQL server (internal/database/pgtest). Store conformance suites
// take a Target and open as many handles on it as they need; two handles
// behave as two processes would (two SQLite connections to one file, two
// PostgreSQL pools).
package dbtest

import (
	"context"
	"testing"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/pgtest"
)

// Target is one empty database of one engine.
type Target struct {
	Config database.Config
	// Data is the data directory (the SQLite files live there).
	Data string
}

// Driver is the target's engine.
func (tg Target) Driver() database.Driver { return tg.Config.Effective() }

// Opener returns a new Opener on the target, closed when t ends.
func (tg Target) Opener(t testing.TB) *database.Opener {
	t.Helper()
	o, err := database.NewOpener(tg.Config, tg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Open opens component name on the target through a new Opener (a new
// process's worth of connections), closed when t ends.
func (tg Target) Open(t testing.TB, name string, opts ...database.OpenOption) *database.DB {
	t.Helper()
	db, err := tg.Opener(t).Open(context.Background(), name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// SQLite returns an empty SQLite target in a temporary directory.
func SQLite(t testing.TB) Target {
	return Target{Config: database.Config{Driver: database.SQLite}, Data: t.TempDir()}
}

// Postgres returns an empty database on the shared PostgreSQL server
// (skipping t outside CI when PostgreSQL is not installed).
func Postgres(t testing.TB) Target {
	t.Helper()
	return Target{Config: database.Config{Driver: database.Postgres, DSN: pgtest.DSN(t)}, Data: t.TempDir()}
}

// Each runs fn as one subtest per engine, "sqlite" and "postgres", each
// with newTarget making fresh empty databases of that engine.
func Each(t *testing.T, fn func(t *testing.T, newTarget func(t testing.TB) Target)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres) })
}
