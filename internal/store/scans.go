package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/scan"
)

// Scan is the latest scan of one manifest digest. For an index there is
// one report per platform image; for an image, one report.
type Scan struct {
	Digest     string `json:"digest"`
	Repository string `json:"repository"`
	// Source is where the image was imported from ("" for a direct push).
	Source    string           `json:"source,omitempty"`
	ScannedAt time.Time        `json:"scannedAt,omitzero"`
	Reports   []PlatformReport `json:"reports,omitempty"`
	// Error is why the last scan failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
	// Permanent marks an Error that scanning the same digest again cannot
	// mend (unsupported, hostile, corrupt, over a limit, killing the
	// scanner): only an explicit rescan runs it again.
	Permanent bool `json:"permanent,omitempty"`
}

// PlatformReport is the scan report of one image of a digest.
type PlatformReport struct {
	// Platform is "linux/amd64" for an index's child, "" for an image.
	Platform string       `json:"platform,omitempty"`
	Digest   string       `json:"digest"`
	Report   *scan.Report `json:"report"`
}

// PutScan records the latest scan of s.Digest, replacing an earlier one
// but keeping the recorded source.
func (s *SQL) PutScan(ctx context.Context, sc Scan) error { return s.PutScans(ctx, sc) }

// PutScans records several scans as PutScan does, in one transaction.
func (s *SQL) PutScans(ctx context.Context, scans ...Scan) error {
	type encoded struct {
		sc               Scan
		reports          string
		scanned, dbBuilt string
	}
	enc := make([]encoded, 0, len(scans))
	for _, sc := range scans {
		if err := validDigest(sc.Digest); err != nil {
			return err
		}
		reports, err := json.Marshal(sc.Reports)
		if err != nil {
			return fmt.Errorf("store: encode reports of %s: %w", sc.Digest, err)
		}
		e := encoded{sc: sc, reports: string(reports)}
		if !sc.ScannedAt.IsZero() {
			e.scanned = timeText(sc.ScannedAt)
		}
		for _, pr := range sc.Reports {
			if pr.Report != nil && !pr.Report.DB.BuiltAt.IsZero() {
				e.dbBuilt = timeText(pr.Report.DB.BuiltAt)
			}
		}
		enc = append(enc, e)
	}
	// A scan and its rows of the findings index change together: a
	// rescan replaces the rows, a failed scan (no reports) removes them.
	return s.db.Update(ctx, func(tx *database.Tx) error {
		var changed []string
		for _, e := range enc {
			sc := e.sc
			if _, err := tx.ExecContext(ctx, `INSERT INTO scans (digest, repository, source, scanned_at, error, db_built, reports, permanent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET repository = excluded.repository, scanned_at = excluded.scanned_at,
			error = excluded.error, db_built = excluded.db_built, reports = excluded.reports, permanent = excluded.permanent,
			source = CASE WHEN excluded.source != '' THEN excluded.source ELSE scans.source END`,
				sc.Digest, sc.Repository, sc.Source, e.scanned, sc.Error, e.dbBuilt, e.reports, sc.Error != "" && sc.Permanent); err != nil {
				return fmt.Errorf("store: write scan of %s: %w", sc.Digest, err)
			}
			sevs, err := replaceFindings(ctx, tx, sc.Digest, sc.Repository, sc.Reports)
			if err != nil {
				return err
			}
			changed = append(changed, sevs...)
			if err := putSupport(ctx, tx, sc.Digest, sc.Repository, sc.Reports); err != nil {
				return err
			}
		}
		return recordHistory(ctx, tx, s.clock(), changed)
	})
}

// ScanState is a scan without its reports: what the sweeper needs to
// decide on a rescan.
type ScanState struct {
	Digest     string
	Repository string
	ScannedAt  time.Time // zero: never scanned successfully
	DBBuiltAt  time.Time // the vulnerability DB build the scan used
	Error      string
	Permanent  bool // see Scan.Permanent
}

// ScanStates lists every recorded scan, without reports.
func (s *SQL) ScanStates(ctx context.Context) ([]ScanState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest, repository, scanned_at, db_built, error, permanent FROM scans ORDER BY digest`)
	if err != nil {
		return nil, fmt.Errorf("store: list scans: %w", err)
	}
	defer rows.Close()
	var out []ScanState
	for rows.Next() {
		var st ScanState
		var scanned, built string
		if err := rows.Scan(&st.Digest, &st.Repository, &scanned, &built, &st.Error, &st.Permanent); err != nil {
			return nil, fmt.Errorf("store: list scans: %w", err)
		}
		if scanned != "" {
			st.ScannedAt, _ = parseTime(scanned)
		}
		if built != "" {
			st.DBBuiltAt, _ = parseTime(built)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// SetSource records where digest was imported from.
func (s *SQL) SetSource(ctx context.Context, digest, repository, source string) error {
	if err := validDigest(digest); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO scans (digest, repository, source) VALUES (?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET source = excluded.source`, digest, repository, source); err != nil {
		return fmt.Errorf("store: write source of %s: %w", digest, err)
	}
	return nil
}

// Scan returns the latest scan of digest, or ErrNotFound. A digest with a
// recorded source but no scan yet has a zero ScannedAt and no reports.
func (s *SQL) Scan(ctx context.Context, digest string) (*Scan, error) {
	sc := Scan{Digest: digest}
	var scanned, reports string
	err := s.db.QueryRowContext(ctx, `SELECT repository, source, scanned_at, error, reports, permanent FROM scans WHERE digest = ?`, digest).
		Scan(&sc.Repository, &sc.Source, &scanned, &sc.Error, &reports, &sc.Permanent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read scan of %s: %w", digest, err)
	}
	if scanned != "" {
		if sc.ScannedAt, err = parseTime(scanned); err != nil {
			return nil, fmt.Errorf("store: stored scan time of %s: %w", digest, err)
		}
	}
	if err := json.Unmarshal([]byte(reports), &sc.Reports); err != nil {
		return nil, fmt.Errorf("store: stored reports of %s: %w", digest, err)
	}
	return &sc, nil
}
