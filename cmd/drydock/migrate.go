package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/state"
)

func newMigrateCmd(g *globals) *cobra.Command {
	var f stateFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date, without starting the server",
		Long: `Migrate applies the schema migrations this drydock has and the database
does not: the verdict store, users and tokens, the audit log and the job
queue. "drydock serve" does the same at every start, so migrate is for
running them alone: before rolling out a new version to several replicas,
or to check a database before pointing servers at it.

On PostgreSQL the migrations run under an advisory lock, so replicas
starting at the same time (or a migrate racing a start) apply each one
once; on SQLite each file is migrated in a transaction. A database that a
newer drydock has migrated is refused rather than touched.`,
		Example: `  # the embedded setup (SQLite files in the data directory)
  drydock migrate --data /var/lib/drydock

  # the shared PostgreSQL database named in the server's config
  drydock migrate --config /etc/drydock/drydock.yaml

  # or with the DSN in the environment
  DRYDOCK_DATABASE_DRIVER=postgres DRYDOCK_DATABASE_DSN=postgres://drydock@db:5432/drydock drydock migrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, cfg, err := f.opener()
			if err != nil {
				return err
			}
			applied, err := state.Migrate(cmd.Context(), cfg, o)
			if asJSON {
				if applied == nil {
					applied = []database.Applied{}
				}
				if werr := writeJSON(g.stdout, applied); werr != nil && err == nil {
					err = werr
				}
			} else {
				for _, a := range applied {
					fmt.Fprintf(g.stdout, "applied %s migration %d: %s\n", a.Component, a.Version, a.Name)
				}
				if err == nil {
					fmt.Fprintf(g.stdout, "schema up to date (%s, %d migrations applied)\n", cfg.Database.Describe(cfg.Data), len(applied))
				}
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the applied migrations as JSON")
	return cmd
}
