package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/drydock-project/drydock/internal/gate"
)

// DefaultPath is where the gate's store lives under a data directory.
func DefaultPath(dataDir string) string { return filepath.Join(dataDir, "gate", "gate.db") }

const schema = `
CREATE TABLE IF NOT EXISTS images (
	digest      TEXT PRIMARY KEY,
	repository  TEXT NOT NULL,
	verdict     TEXT NOT NULL, -- gate.Verdict as JSON
	state       TEXT NOT NULL,
	promoted    INTEGER NOT NULL DEFAULT 0,
	updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_repository ON images (repository);
CREATE TABLE IF NOT EXISTS verdict_history (
	id          INTEGER PRIMARY KEY,
	digest      TEXT NOT NULL,
	verdict     TEXT NOT NULL,
	recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdict_history_digest ON verdict_history (digest, id);
`

// SQLite is the Store on a SQLite file.
type SQLite struct{ db *sql.DB }

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating) the store at path. Writes take the database
// lock at their start (BEGIN IMMEDIATE), so that the server and a CLI
// sharing the file serialize instead of failing.
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	q := url.Values{"_pragma": []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"}, "_txlock": []string{"immediate"}}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if _, err := db.Exec(schema + scansSchema + settingsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: create schema: %w", path, err)
	}
	if err := addScansColumns(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: upgrade schema: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

func validDigest(d string) error {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || (alg != "sha256" && alg != "sha512") || len(hex) < 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("store: %q is not a digest", d)
	}
	return nil
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// RecordVerdict implements Store.
func (s *SQLite) RecordVerdict(ctx context.Context, digest, repository string, next gate.Verdict, now time.Time, grace time.Duration) (gate.Verdict, *gate.Flip, error) {
	if err := validDigest(digest); err != nil {
		return gate.Verdict{}, nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return gate.Verdict{}, nil, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	var prev gate.Verdict
	var raw string
	var promoted bool
	err = tx.QueryRowContext(ctx, `SELECT verdict, promoted FROM images WHERE digest = ?`, digest).Scan(&raw, &promoted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return gate.Verdict{}, nil, fmt.Errorf("store: read verdict of %s: %w", digest, err)
	default:
		if err := json.Unmarshal([]byte(raw), &prev); err != nil {
			return gate.Verdict{}, nil, fmt.Errorf("store: stored verdict of %s: %w", digest, err)
		}
	}
	eff, flip := gate.Transition(prev, next, promoted, now, grace)
	if raw != "" && !changed(prev, eff) {
		// The same verdict decided again: nothing to write (a sweep over
		// every digest costs no disk writes), and it keeps the time it was
		// first reached.
		return prev, flip, tx.Commit()
	}
	data, err := json.Marshal(eff)
	if err != nil {
		return gate.Verdict{}, nil, fmt.Errorf("store: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO images (digest, repository, verdict, state, promoted, updated_at)
		VALUES (?, ?, ?, ?, 0, ?)
		ON CONFLICT (digest) DO UPDATE SET verdict = excluded.verdict, state = excluded.state, updated_at = excluded.updated_at`,
		digest, repository, string(data), string(eff.State), timeText(now)); err != nil {
		return gate.Verdict{}, nil, fmt.Errorf("store: write verdict of %s: %w", digest, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO verdict_history (digest, verdict, recorded_at) VALUES (?, ?, ?)`,
		digest, string(data), timeText(now)); err != nil {
		return gate.Verdict{}, nil, fmt.Errorf("store: write history of %s: %w", digest, err)
	}
	if err := tx.Commit(); err != nil {
		return gate.Verdict{}, nil, fmt.Errorf("store: %w", err)
	}
	return eff, flip, nil
}

// changed reports whether b differs from a in anything but the time it
// was reached: re-evaluating an unchanged verdict adds no history.
func changed(a, b gate.Verdict) bool {
	a.At, b.At = time.Time{}, time.Time{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) != string(jb)
}

func scanImage(row interface{ Scan(...any) error }) (*Image, error) {
	var im Image
	var raw, updated string
	if err := row.Scan(&im.Digest, &im.Repository, &raw, &im.Promoted, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(raw), &im.Verdict); err != nil {
		return nil, fmt.Errorf("store: stored verdict of %s: %w", im.Digest, err)
	}
	t, err := time.Parse(time.RFC3339Nano, updated)
	if err != nil {
		return nil, fmt.Errorf("store: stored time of %s: %w", im.Digest, err)
	}
	im.UpdatedAt = t
	return &im, nil
}

// Image implements Store.
func (s *SQLite) Image(ctx context.Context, digest string) (*Image, error) {
	im, err := scanImage(s.db.QueryRowContext(ctx, `SELECT digest, repository, verdict, promoted, updated_at FROM images WHERE digest = ?`, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	return im, err
}

// MarkPromoted implements Store.
func (s *SQLite) MarkPromoted(ctx context.Context, digest string, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	im, err := scanImage(tx.QueryRowContext(ctx, `SELECT digest, repository, verdict, promoted, updated_at FROM images WHERE digest = ?`, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if !im.Verdict.Promotable() {
		return fmt.Errorf("store: %s is %s, not promotable", digest, im.Verdict.State)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE images SET promoted = 1, updated_at = ? WHERE digest = ?`, timeText(now), digest); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return tx.Commit()
}

// History implements Store.
func (s *SQLite) History(ctx context.Context, digest string) ([]gate.Verdict, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT verdict FROM verdict_history WHERE digest = ? ORDER BY id`, digest)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []gate.Verdict
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		var v gate.Verdict
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, fmt.Errorf("store: stored verdict of %s: %w", digest, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// List implements Store.
func (s *SQLite) List(ctx context.Context, f Filter) ([]Image, error) {
	q := `SELECT digest, repository, verdict, promoted, updated_at FROM images WHERE 1 = 1`
	var args []any
	if f.Repository != "" {
		q += ` AND repository = ?`
		args = append(args, f.Repository)
	}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	q += ` ORDER BY updated_at DESC, digest`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *im)
	}
	return out, rows.Err()
}
