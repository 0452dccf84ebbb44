package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
)

// TestUpgradeFirstRelease opens a gate.db of the first release (a scans
// table without the permanent column, no migrations table): its rows
// stay, the column is added, and opening again migrates nothing twice.
func TestUpgradeFirstRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gate", "gate.db")
	raw, err := database.OpenFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.SQL().Exec(`CREATE TABLE scans (digest TEXT PRIMARY KEY, repository TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',
		scanned_at TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', db_built TEXT NOT NULL DEFAULT '', reports TEXT NOT NULL DEFAULT '[]');
		INSERT INTO scans (digest, repository, error) VALUES ('` + storetest.Digest(9) + `', 'quarantine/old', 'boom')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for range 2 {
		db, err := database.OpenFile(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.New(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		if sc, err := s.Scan(context.Background(), storetest.Digest(9)); err != nil || sc.Error != "boom" || sc.Permanent {
			t.Fatalf("scan from before the upgrade: %+v, %v", sc, err)
		}
		s.Close()
	}
	// A file a release between (column added by hand, no migrations
	// table) upgrades too.
	path2 := filepath.Join(t.TempDir(), "gate", "gate.db")
	raw, err = database.OpenFile(context.Background(), path2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.SQL().Exec(`CREATE TABLE scans (digest TEXT PRIMARY KEY, repository TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',
		scanned_at TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', db_built TEXT NOT NULL DEFAULT '', reports TEXT NOT NULL DEFAULT '[]',
		permanent INTEGER NOT NULL DEFAULT 0)`); err != nil {
		t.Fatal(err)
	}
	s, err := store.New(context.Background(), raw)
	if err != nil {
		t.Fatalf("a file that has the column already: %v", err)
	}
	s.Close()
}
