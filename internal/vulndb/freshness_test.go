package vulndb_test

import (
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// TestFreshness: the data age counts from the newest record of any
// source, not from the build; without dated records, from the build.
func TestFreshness(t *testing.T) {
	feb := time.Date(2025, 2, 12, 0, 0, 0, 0, time.UTC)
	built := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	m := vulndb.Meta{BuiltAt: built, Sources: []vulndb.SourceMeta{
		{Name: "debian", DataAsOf: feb.Add(-24 * time.Hour)}, {Name: "osv", DataAsOf: feb}, {Name: "eol"}}}
	if got, ok := m.DataAsOf(); !ok || !got.Equal(feb) {
		t.Fatalf("DataAsOf = %s %v, want the newest record %s", got, ok, feb)
	}
	now := built.Add(time.Hour)
	if m.Age(now) != time.Hour || m.DataAge(now) != now.Sub(feb) {
		t.Fatalf("Age %s, DataAge %s", m.Age(now), m.DataAge(now))
	}
	if !m.Stale(now, vulndb.DefaultMaxDataAge) {
		t.Fatal("a database built an hour ago from February's data is not stale")
	}
	f := m.Freshness(now, vulndb.DefaultMaxDataAge)
	if !f.Stale || !f.DataAsOf.Equal(feb) || f.MaxAgeSeconds != 72*3600 || !strings.Contains(f.Warning(), "2025-02-12") {
		t.Fatalf("Freshness = %+v, warning %q", f, f.Warning())
	}
	// At the limit exactly: not stale; a second later: stale.
	if m.Stale(feb.Add(vulndb.DefaultMaxDataAge), vulndb.DefaultMaxDataAge) || !m.Stale(feb.Add(vulndb.DefaultMaxDataAge+time.Second), vulndb.DefaultMaxDataAge) {
		t.Fatal("wrong at the limit")
	}
	if w := m.Freshness(feb.Add(time.Hour), vulndb.DefaultMaxDataAge).Warning(); w != "" {
		t.Fatalf("fresh data warns %q", w)
	}
	undated := vulndb.Meta{BuiltAt: built, Sources: []vulndb.SourceMeta{{Name: "eol"}}}
	if _, ok := undated.DataAsOf(); ok || undated.DataAge(now) != time.Hour || undated.Stale(now, vulndb.DefaultMaxDataAge) {
		t.Fatal("undated records: the age is the build's")
	}
}
