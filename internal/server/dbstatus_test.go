package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestDBStatusAPI: the data age at the gate's clock, against gate.maxDataAge,
// in GET /api/v1/db/status and in every verdict.
func TestDBStatusAPI(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	g := startGateServer(t, strictPolicy, withConfig(func(c *config.Config) { c.Gate.MaxDataAge = config.Duration(5 * 24 * time.Hour) }))
	g.push(ti, "quarantine/bookworm:12")
	var st gatekeeper.DBStatus
	if code := g.api("GET", "/api/v1/db/status", nil, &st); code != http.StatusOK {
		t.Fatalf("db status: %d", code)
	}
	if !st.Present || st.Stale || st.DataAsOf.IsZero() || st.MaxAgeSeconds != 5*24*3600 || len(st.Sources) == 0 || st.Warning != "" {
		t.Fatalf("at the data's date: %+v", st)
	}
	v := g.waitScanned("quarantine/bookworm:12")
	if v.Database == nil || v.Database.Stale {
		t.Fatalf("verdict's database at the data's date: %+v", v.Database)
	}
	// Six days after the newest record: stale, in both.
	g.clock.Set(st.DataAsOf.Add(6 * 24 * time.Hour))
	if code := g.api("GET", "/api/v1/db/status", nil, &st); code != http.StatusOK || !st.Stale || !strings.Contains(st.Warning, "stale") ||
		st.DataAgeSeconds != 6*24*3600 {
		t.Fatalf("six days on: %d %+v", code, st)
	}
	if v := g.verdict("quarantine/bookworm:12"); v.Database == nil || !v.Database.Stale {
		t.Fatalf("verdict six days on: %+v", v.Database)
	}
}
