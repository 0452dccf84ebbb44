package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/drydock-project/drydock/internal/database"
)

// Component is the queue's database name (DATA/jobs/jobs.db on SQLite).
const Component = "jobs"

// riverClient is what the queue uses of a River client, whichever its
// driver's transaction type.
type riverClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobUpdate(ctx context.Context, id int64, params *river.JobUpdateParams) (*rivertype.JobRow, error)
	PeriodicJobs() *river.PeriodicJobBundle
}

// newClient migrates River's schema in db and returns a client on River's
// driver for the engine: riversqlite on a SQLite file, riverpgxv5 (with
// LISTEN/NOTIFY) on PostgreSQL.
func newClient(ctx context.Context, db *database.DB, rc *river.Config, logger *slog.Logger) (riverClient, error) {
	if _, err := migrateDB(ctx, db, logger); err != nil {
		return nil, err
	}
	if db.Driver() == database.Postgres {
		return river.NewClient(riverpgxv5.New(db.Pool()), rc)
	}
	return river.NewClient(riversqlite.New(db.SQL()), rc)
}

// Migrate brings River's schema in the "jobs" database of o up to date
// without starting a queue, and returns the migrations it applied.
func Migrate(ctx context.Context, o *database.Opener) ([]database.Applied, error) {
	db, err := o.Open(ctx, Component, database.SingleConnection())
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	defer db.Close()
	return migrateDB(ctx, db, slog.New(slog.DiscardHandler))
}

// migrateDB applies River's missing migrations (a no-op when current). On
// PostgreSQL, River's migrator takes no lock of its own: replicas starting
// together migrate under drydock's migration lock.
func migrateDB(ctx context.Context, db *database.DB, logger *slog.Logger) ([]database.Applied, error) {
	if db.Driver() == database.Postgres {
		var applied []database.Applied
		err := db.WithMigrationLock(ctx, func(ctx context.Context, _ *sql.Conn) error {
			var err error
			applied, err = migrate(ctx, riverpgxv5.New(db.Pool()), logger)
			return err
		})
		return applied, err
	}
	return migrate(ctx, riversqlite.New(db.SQL()), logger)
}

func migrate[TTx any](ctx context.Context, drv riverdriver.Driver[TTx], logger *slog.Logger) ([]database.Applied, error) {
	m, err := rivermigrate.New(drv, &rivermigrate.Config{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("migrating River's schema: %w", err)
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("migrating River's schema: %w", err)
	}
	var out []database.Applied
	for _, v := range res.Versions {
		out = append(out, database.Applied{Component: Component + " (River)", Version: v.Version, Name: v.Name})
	}
	return out, nil
}
