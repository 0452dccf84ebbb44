package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

// scanIndexSchema is the scan index's tables; key is the type of the
// columns compared and sorted on (byte order on both engines). A finding
// row names its vulnerability first, so "who runs CVE-X" reads one range
// of one index.
func scanIndexSchema(key string) string {
	return strings.NewReplacer("@key", key).Replace(`
CREATE TABLE kube_scans (
	digest     @key NOT NULL PRIMARY KEY,
	scanned_at TEXT NOT NULL
);
CREATE TABLE kube_scan_findings (
	vuln_id           @key NOT NULL,
	digest            @key NOT NULL REFERENCES kube_scans (digest) ON DELETE CASCADE,
	platform          @key NOT NULL DEFAULT '',
	package           @key NOT NULL DEFAULT '',
	installed_version TEXT NOT NULL DEFAULT '',
	fixed_version     TEXT NOT NULL DEFAULT '',
	severity          TEXT NOT NULL DEFAULT '',
	status            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX kube_scan_findings_vuln ON kube_scan_findings (vuln_id, digest);
CREATE INDEX kube_scan_findings_digest ON kube_scan_findings (digest);`)
}

// scanIndexLock serialises the index's writers (replicas re-indexing the
// same rescan at once).
const scanIndexLock = "kube-scan-index"

// ScanIndex implements InventoryStore.
func (s *SQLInventory) ScanIndex(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest, scanned_at FROM kube_scans`)
	if err != nil {
		return nil, fmt.Errorf("kube inventory: scan index: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var d, at string
		if err := rows.Scan(&d, &at); err != nil {
			return nil, fmt.Errorf("kube inventory: scan index: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return nil, fmt.Errorf("kube inventory: scan index: time of %s: %w", d, err)
		}
		out[d] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kube inventory: scan index: %w", err)
	}
	return out, nil
}

// PutScanIndex implements InventoryStore.
func (s *SQLInventory) PutScanIndex(ctx context.Context, scans []IndexedScan) error {
	if len(scans) == 0 {
		return nil
	}
	var list []any
	var scanRows, findingRows [][]any
	seen := make(map[string]bool, len(scans))
	for _, sc := range scans {
		if sc.Digest == "" || sc.ScannedAt.IsZero() {
			return fmt.Errorf("%w: an indexed scan needs its digest and time", ErrInvalidRecord)
		}
		if seen[sc.Digest] {
			return fmt.Errorf("%w: scan of %s twice in one index write", ErrInvalidRecord, sc.Digest)
		}
		seen[sc.Digest] = true
		list = append(list, sc.Digest)
		scanRows = append(scanRows, []any{sc.Digest, sc.ScannedAt.UTC().Format(time.RFC3339Nano)})
		for _, f := range sc.Findings {
			findingRows = append(findingRows, []any{f.VulnerabilityID, sc.Digest, f.Platform, f.Package, f.InstalledVersion,
				f.FixedVersion, f.Severity, f.Status})
		}
	}
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, scanIndexLock); err != nil {
			return err
		}
		for len(list) > 0 {
			n := min(len(list), insertBatch)
			marks := strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
			if _, err := tx.ExecContext(ctx, `DELETE FROM kube_scans WHERE digest IN (`+marks+`)`, list[:n]...); err != nil {
				return err
			}
			list = list[n:]
		}
		if err := insertRows(ctx, tx, `INSERT INTO kube_scans (digest, scanned_at) VALUES `, scanRows); err != nil {
			return err
		}
		return insertRows(ctx, tx, `INSERT INTO kube_scan_findings (vuln_id, digest, platform, package, installed_version, fixed_version, severity, status) VALUES `, findingRows)
	})
	if err != nil {
		return fmt.Errorf("kube inventory: write scan index: %w", err)
	}
	return nil
}

// PruneScanIndex implements InventoryStore.
func (s *SQLInventory) PruneScanIndex(ctx context.Context) error {
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, scanIndexLock); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM kube_scans WHERE digest NOT IN (SELECT digest FROM kube_containers)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("kube inventory: prune scan index: %w", err)
	}
	return nil
}

// Findings implements InventoryStore.
func (s *SQLInventory) Findings(ctx context.Context, id string) ([]IndexedFinding, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest, platform, package, installed_version, fixed_version, severity, status
		FROM kube_scan_findings WHERE vuln_id = ? ORDER BY digest, platform, package, installed_version`, id)
	if err != nil {
		return nil, fmt.Errorf("kube inventory: findings of %s: %w", id, err)
	}
	defer rows.Close()
	var out []IndexedFinding
	for rows.Next() {
		f := IndexedFinding{VulnerabilityID: id}
		if err := rows.Scan(&f.Digest, &f.Platform, &f.Package, &f.InstalledVersion, &f.FixedVersion, &f.Severity, &f.Status); err != nil {
			return nil, fmt.Errorf("kube inventory: findings of %s: %w", id, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kube inventory: findings of %s: %w", id, err)
	}
	return out, nil
}
