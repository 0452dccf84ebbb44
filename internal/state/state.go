// Package state names the components that keep a drydock installation's
// state in its databases (verdicts and scans, users and tokens, the audit
// log, the job queue, the running-image inventory, the registry index when it is in the database), so that the commands that act on all of them —
// migrating, copying an installation — cover every one. A component that
// adds state adds itself to Components.
package state

import (
	"context"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gc"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/kube"
	"github.com/drydock-project/drydock/internal/regstore"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/workflow"
)

// Component is one part of the state.
type Component struct {
	// Name is the component's database name (its SQLite file).
	Name string
	// Migrate brings the component's schema up to date in o and returns
	// the migrations it applied.
	Migrate func(ctx context.Context, o *database.Opener) ([]database.Applied, error)
	// Tables are copied row by row by Copy (none for the job queue and the
	// registry index, which Copy moves through their own APIs).
	Tables []database.Table
}

// schema is a component whose schema is a list of database.Migration.
func schema(name string, migs []database.Migration, tables []database.Table) Component {
	return Component{Name: name, Tables: tables, Migrate: func(ctx context.Context, o *database.Opener) ([]database.Applied, error) {
		db, err := o.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		return db.Migrate(ctx, name, migs)
	}}
}

// Components returns every component of an installation configured as
// cfg, in the order migrations apply.
func Components(cfg config.Config) []Component {
	cs := []Component{
		schema(store.Component, store.Migrations, store.Tables),
		schema(auth.Component, auth.Migrations, auth.Tables),
		schema(audit.Component, audit.Migrations, audit.Tables),
		schema(workflow.Component, workflow.Migrations, workflow.Tables),
		schema(exceptions.Component, exceptions.Migrations, exceptions.Tables),
		schema(gc.Component, gc.Migrations, gc.Tables),
		// The running-image inventory is a copy of the clusters' state the
		// watcher writes again at every start: migrated, never copied.
		schema(kube.Component, kube.Migrations, nil),
		{Name: jobs.Component, Migrate: jobs.Migrate},
	}
	if regstore.IndexInDatabase(cfg) {
		cs = append(cs, schema(regstore.Component, regstore.Migrations, nil))
	}
	return cs
}

// Migrate brings every component's schema up to date and returns what it
// applied, stopping at the first failure.
func Migrate(ctx context.Context, cfg config.Config, o *database.Opener) ([]database.Applied, error) {
	var all []database.Applied
	for _, c := range Components(cfg) {
		applied, err := c.Migrate(ctx, o)
		all = append(all, applied...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}
