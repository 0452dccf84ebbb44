package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/state"
)

// TestMigrateCLI runs "drydock migrate" on each engine: everything is
// applied once, a second run applies nothing, and the users and audit
// commands then find their state through the same config.
func TestMigrateCLI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		t.Setenv("DRYDOCK_DATABASE_DRIVER", string(tg.Driver()))
		t.Setenv("DRYDOCK_DATABASE_DSN", tg.Config.DSN)
		out, _, err := runCmd(t, "migrate", "--data", tg.Data, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var applied []database.Applied
		if err := json.Unmarshal([]byte(out), &applied); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		components := map[string]bool{}
		for _, a := range applied {
			components[strings.Fields(a.Component)[0]] = true
		}
		for _, c := range state.Components(config.Config{Database: tg.Config}) {
			if !components[c.Name] {
				t.Errorf("no migration applied for %s: %s", c.Name, out)
			}
		}
		out, _, err = runCmd(t, "migrate", "--data", tg.Data)
		if err != nil || !strings.Contains(out, "0 migrations applied") {
			t.Errorf("second migrate: %v\n%s", err, out)
		}
		if out, _, err := runCmd(t, "audit", "verify", "--data", tg.Data); err != nil || !strings.Contains(out, "0 entries") {
			t.Errorf("audit verify after migrate: %v %s", err, out)
		}
	})
}
