package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// TestFindingsIndexBackfill: scans stored before the findings index
// existed (schema version 2) are indexed by migration 3, and their OS's
// support end recorded by migration 4.
func TestFindingsIndexBackfill(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		db := tg.Open(t, store.Component)
		if _, err := db.Migrate(ctx, store.Component, store.Migrations[:2]); err != nil {
			t.Fatal(err)
		}
		sc := storetest.ScanOf(storetest.Digest(7), "quarantine/old", map[string][]scan.Finding{
			"": {storetest.Finding("CVE-2023-9", "libssl3", "openssl", vulndb.SeverityCritical, "3.0.1"),
				storetest.Finding("CVE-2023-8", "libssl3", "openssl", vulndb.SeverityLow, "")}})
		sc.Reports[0].Report.OS = scan.OS{ID: "debian", Version: "11.11", EOSL: true}
		sc.Reports[0].Report.Support = scan.Support{State: "ended", Codename: "bullseye", PublicSupportEnded: time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC)}
		raw, err := json.Marshal(sc.Reports)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range [][]any{{storetest.Digest(7), "quarantine/old", "", string(raw)}, {storetest.Digest(8), "quarantine/bad", "boom", "null"}} {
			if _, err := db.ExecContext(ctx, `INSERT INTO scans (digest, repository, scanned_at, error, reports) VALUES (?, ?, '2026-01-01T00:00:00Z', ?, ?)`, row...); err != nil {
				t.Fatal(err)
			}
		}
		s, err := store.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		rows, _, err := s.FindingsWhere(ctx, store.FindingQuery{Package: "openssl", Scope: store.RepositoryScope{All: true}, Limit: 10})
		if err != nil || len(rows) != 2 || rows[0].Repository != "quarantine/old" {
			t.Fatalf("backfilled rows: %+v, %v", rows, err)
		}
		tot, err := s.FindingTotals(ctx, store.RepositoryScope{All: true})
		if err != nil || tot.UniqueFixableCVEs != 1 || tot.Counts["LOW"] != 1 {
			t.Errorf("backfilled totals: %+v, %v", tot, err)
		}
		eol, n, err := s.EndOfLife(ctx, store.RepositoryScope{All: true}, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 10)
		if err != nil || n != 1 || len(eol) != 1 || eol[0].OS != "debian 11.11 (bullseye)" || eol[0].SupportEnd != "2026-08-31" || !eol[0].Ended {
			t.Errorf("backfilled end-of-life images: %+v, %d, %v", eol, n, err)
		}
	})
}
