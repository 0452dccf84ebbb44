package database_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`SELECT '?' || ? FROM "we?ird" WHERE x = ?`, `SELECT '?' || $1 FROM "we?ird" WHERE x = $2`},
		{`INSERT INTO t VALUES (?, 'it''s ?', ?)`, `INSERT INTO t VALUES ($1, 'it''s ?', $2)`},
	} {
		if got := database.Rebind(tc.in); got != tc.want {
			t.Errorf("Rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  database.Config
		want string // "" = valid
	}{
		{database.Config{}, ""},
		{database.Config{Driver: "sqlite"}, ""},
		{database.Config{Driver: "sqlite", DSN: "x"}, "database.dsn"},
		{database.Config{Driver: "postgres"}, "database.dsn: required"},
		{database.Config{Driver: "postgres", DSN: "postgres://u:secret@h:5432/d"}, ""},
		{database.Config{Driver: "postgres", DSN: "postgres://u:secret@h:notaport/d"}, "database.dsn"},
		{database.Config{Driver: "mysql"}, "database.driver"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%+v: error shows the password: %v", tc.cfg, err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/d?sslmode=disable": "postgres://u:xxxxx@h:5432/d?sslmode=disable",
		"postgres://h/d?password=secret":               "postgres://h/d?password=xxxxx",
		"host=h user=u password=secret dbname=d":       "host=h user=u password=xxxxx dbname=d",
		"postgres://u@h/d":                             "postgres://u@h/d",
	} {
		if got := database.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

var testMigrations = []database.Migration{
	{Version: 1, Name: "counters", SQLite: `CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)`,
		Postgres: `CREATE TABLE counters (name TEXT PRIMARY KEY, n BIGINT NOT NULL)`},
	{Version: 2, Name: "seed", SQLite: `INSERT INTO counters VALUES ('a', 0)`, Postgres: `INSERT INTO counters VALUES ('a', 0)`},
}

func TestDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		ctx := context.Background()
		t.Run("migrations apply once, even when racing", func(t *testing.T) {
			tg := newTarget(t)
			var wg sync.WaitGroup
			applied := make([][]database.Applied, 4)
			errs := make([]error, 4)
			for i := range 4 {
				db := tg.Open(t, "test")
				wg.Go(func() { applied[i], errs[i] = db.Migrate(ctx, "test", testMigrations) })
			}
			wg.Wait()
			total := 0
			for i := range 4 {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				total += len(applied[i])
			}
			if total != 2 {
				t.Errorf("%d migrations applied by 4 racing migrators, want 2", total)
			}
			db := tg.Open(t, "test")
			if got, err := db.Migrate(ctx, "test", testMigrations); err != nil || len(got) != 0 {
				t.Errorf("migrating again: %v, %v", got, err)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM counters`).Scan(&n); err != nil || n != 1 {
				t.Errorf("seed rows: %d, %v", n, err)
			}
			_, err := db.Migrate(ctx, "test", testMigrations[:1])
			var tooNew *database.SchemaTooNewError
			if !errors.As(err, &tooNew) || tooNew.Stored != 2 || tooNew.Known != 1 {
				t.Errorf("older build on a newer schema: %v", err)
			}
			if _, err := db.Migrate(ctx, "other", []database.Migration{{Version: 2}}); err == nil {
				t.Error("a migration list not starting at 1 was accepted")
			}
		})
		t.Run("update serialises read-modify-write across handles", func(t *testing.T) {
			tg := newTarget(t)
			a, b := tg.Open(t, "test"), tg.Open(t, "test")
			if _, err := a.Migrate(ctx, "test", testMigrations); err != nil {
				t.Fatal(err)
			}
			const workers, each = 8, 20
			var wg sync.WaitGroup
			errc := make(chan error, workers*each)
			for w := range workers {
				db := a
				if w%2 == 1 {
					db = b
				}
				wg.Go(func() {
					for range each {
						errc <- db.Update(ctx, func(tx *database.Tx) error {
							if err := tx.Lock(ctx, "counter b"); err != nil {
								return err
							}
							var n int
							err := tx.QueryRowContext(ctx, `SELECT n FROM counters WHERE name = ?`, "b").Scan(&n)
							if err != nil && !strings.Contains(err.Error(), "no rows") {
								return err
							}
							// The row may not exist yet: the lock, not a row
							// lock, keeps two first inserts apart.
							_, err = tx.ExecContext(ctx, `INSERT INTO counters (name, n) VALUES (?, ?)
								ON CONFLICT (name) DO UPDATE SET n = excluded.n`, "b", n+1)
							return err
						})
					}
				})
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := b.QueryRowContext(ctx, `SELECT n FROM counters WHERE name = ?`, "b").Scan(&n); err != nil || n != workers*each {
				t.Errorf("counter = %d (%v), want %d: an update was lost", n, err, workers*each)
			}
		})
		t.Run("with lock serialises work spanning transactions", func(t *testing.T) {
			tg := newTarget(t)
			a := tg.Open(t, "test")
			b := a // SQLite: one process works a file
			if tg.Driver() == database.Postgres {
				b = tg.Open(t, "test") // another process
			}
			if _, err := a.Migrate(ctx, "test", testMigrations); err != nil {
				t.Fatal(err)
			}
			const workers, each = 6, 10
			var wg sync.WaitGroup
			errc := make(chan error, workers*each)
			for w := range workers {
				db := []*database.DB{a, b}[w%2]
				wg.Go(func() {
					for range each {
						errc <- db.WithLock(ctx, "counter a", func(ctx context.Context) error {
							var n int
							if err := db.QueryRowContext(ctx, `SELECT n FROM counters WHERE name = 'a'`).Scan(&n); err != nil {
								return err
							}
							_, err := db.ExecContext(ctx, `UPDATE counters SET n = ? WHERE name = 'a'`, n+1)
							return err
						})
					}
				})
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := a.QueryRowContext(ctx, `SELECT n FROM counters WHERE name = 'a'`).Scan(&n); err != nil || n != workers*each {
				t.Errorf("counter = %d (%v), want %d: work under the lock interleaved", n, err, workers*each)
			}
		})
		t.Run("update rolls back on error and reports unique violations", func(t *testing.T) {
			tg := newTarget(t)
			db := tg.Open(t, "test")
			if _, err := db.Migrate(ctx, "test", testMigrations); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			err := db.Update(ctx, func(tx *database.Tx) error {
				if _, err := tx.ExecContext(ctx, `UPDATE counters SET n = 99`); err != nil {
					return err
				}
				return fmt.Errorf("step: %w", boom)
			})
			if !errors.Is(err, boom) {
				t.Fatalf("error %v, want boom", err)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT n FROM counters WHERE name = 'a'`).Scan(&n); err != nil || n != 0 {
				t.Errorf("after rollback n = %d (%v)", n, err)
			}
			_, err = db.ExecContext(ctx, `INSERT INTO counters VALUES (?, ?)`, "a", 1)
			if !database.IsUniqueViolation(err) {
				t.Errorf("duplicate key: %v, not a unique violation", err)
			}
		})
	})
}
