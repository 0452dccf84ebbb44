package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// Migration is one step of a component's schema, applied once.
type Migration struct {
	// Version numbers a component's migrations from 1, without gaps.
	Version int
	// Name says what the step does, for the log and `drydock migrate`.
	Name string
	// SQLite and Postgres hold the statements for each engine; they may
	// hold several, separated by semicolons. Empty means nothing to do
	// on that engine.
	SQLite, Postgres string
	// Apply, when set, runs after the statements, in the same transaction:
	// for steps SQL alone cannot make idempotent (SQLite has no ADD COLUMN
	// IF NOT EXISTS, and files written by releases before migrations may
	// have the column already).
	Apply func(ctx context.Context, tx *sql.Tx, d Driver) error
}

// AddColumn is an Apply that adds a column to a table unless it has one by
// that name already: def is its type and constraints on each engine.
func AddColumn(table, column, sqliteDef, postgresDef string) func(ctx context.Context, tx *sql.Tx, d Driver) error {
	return func(ctx context.Context, tx *sql.Tx, d Driver) error {
		if d == Postgres {
			_, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN IF NOT EXISTS `+column+` `+postgresDef)
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('`+table+`') WHERE name = ?`, column).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+column+` `+sqliteDef)
		return err
	}
}

// Applied is a migration Migrate applied.
type Applied struct {
	Component string `json:"component"`
	Version   int    `json:"version"`
	Name      string `json:"name"`
}

// SchemaTooNewError is returned when the database holds migrations of a
// component that this build does not know: a newer drydock migrated it.
type SchemaTooNewError struct {
	Component       string
	Stored, Known   int
	DatabaseDisplay string
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database %s: the %s schema is at version %d, newer than this drydock knows (%d): run a drydock at least as new as the one that migrated it",
		e.DatabaseDisplay, e.Component, e.Stored, e.Known)
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL,
	PRIMARY KEY (component, version)
)`

// migrateLockName is the one advisory lock every migration takes.
const migrateLockName = "schema migrations"

// Migrate brings component's schema up to date: it applies, in order and
// in one transaction, the migrations not recorded in the schema_migrations
// table yet. On PostgreSQL it holds an advisory lock meanwhile, so replicas
// starting together apply each migration once; on SQLite the transaction
// holds the file's write lock. It fails with a *SchemaTooNewError when the
// database is ahead of migs.
func (db *DB) Migrate(ctx context.Context, component string, migs []Migration) ([]Applied, error) {
	for i, m := range migs {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations of %s: version %d at position %d, want %d", component, m.Version, i, i+1)
		}
	}
	var applied []Applied
	err := db.WithMigrationLock(ctx, func(ctx context.Context, conn *sql.Conn) error {
		applied = nil
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, migrationsTable); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		var stored sql.NullInt64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT MAX(version) FROM schema_migrations WHERE component = ?`), component).Scan(&stored); err != nil {
			return fmt.Errorf("reading the %s schema version: %w", component, err)
		}
		if int(stored.Int64) > len(migs) {
			return &SchemaTooNewError{Component: component, Stored: int(stored.Int64), Known: len(migs), DatabaseDisplay: db.where}
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for _, m := range migs[stored.Int64:] {
			stmt := m.SQLite
			if db.driver == Postgres {
				stmt = m.Postgres
			}
			if stmt != "" {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s %d (%s): %w", component, m.Version, m.Name, err)
				}
			}
			if m.Apply != nil {
				if err := m.Apply(ctx, tx, db.driver); err != nil {
					return fmt.Errorf("migration %s %d (%s): %w", component, m.Version, m.Name, err)
				}
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)`),
				component, m.Version, m.Name, now); err != nil {
				return fmt.Errorf("recording migration %s %d: %w", component, m.Version, err)
			}
			applied = append(applied, Applied{Component: component, Version: m.Version, Name: m.Name})
		}
		return tx.Commit()
	})
	if err != nil {
		var tooNew *SchemaTooNewError
		if errors.As(err, &tooNew) {
			return nil, err
		}
		return nil, fmt.Errorf("database %s: migrating %s: %w", db.where, component, err)
	}
	return applied, nil
}

// WithMigrationLock runs fn on a dedicated connection while holding the
// lock schema migrations take: a session advisory lock on PostgreSQL,
// nothing more on SQLite (fn's transaction takes the write lock). Other
// migrators (River's) run inside it.
func (db *DB) WithMigrationLock(ctx context.Context, fn func(ctx context.Context, conn *sql.Conn) error) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if db.driver != Postgres {
		return fn(ctx, conn)
	}
	key := LockKey(migrateLockName)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// The lock goes with the session if the unlock fails; never reuse
		// such a connection.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return fn(ctx, conn)
}
