package store

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestPermanentScanFailure: a permanent failure is stored and listed as
// such, a later scan clears it, and a database created before the column
// existed is upgraded in place.
func TestPermanentScanFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gate.db")
	// A database of the first release: the scans table without permanent.
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE scans (digest TEXT PRIMARY KEY, repository TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',
		scanned_at TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', db_built TEXT NOT NULL DEFAULT '', reports TEXT NOT NULL DEFAULT '[]');
		INSERT INTO scans (digest, repository, error) VALUES ('` + digest(9) + `', 'quarantine/old', 'boom')`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s := open(t, path)
	ctx := t.Context()
	if sc, err := s.Scan(ctx, digest(9)); err != nil || sc.Error != "boom" || sc.Permanent {
		t.Fatalf("scan from before the upgrade: %+v, %v", sc, err)
	}

	d := digest(1)
	if err := s.PutScan(ctx, Scan{Digest: d, Repository: "quarantine/app", Error: "over the package limit", Permanent: true}); err != nil {
		t.Fatal(err)
	}
	if sc, err := s.Scan(ctx, d); err != nil || !sc.Permanent {
		t.Fatalf("stored permanent failure: %+v, %v", sc, err)
	}
	states, err := s.ScanStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perm := map[string]bool{}
	for _, st := range states {
		perm[st.Digest] = st.Permanent
	}
	if !perm[d] || perm[digest(9)] {
		t.Errorf("listed as permanent: %v", perm)
	}
	// A successful scan (no error) is never permanent.
	if err := s.PutScan(ctx, Scan{Digest: d, Repository: "quarantine/app", ScannedAt: t0, Permanent: true}); err != nil {
		t.Fatal(err)
	}
	if sc, _ := s.Scan(ctx, d); sc.Permanent || sc.Error != "" {
		t.Errorf("after a successful scan: %+v", sc)
	}
	// Opening again does not add the column twice.
	s.Close()
	open(t, path)
}
