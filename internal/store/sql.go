package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/gate"
)

// Component is the store's database name (DATA/gate/gate.db on SQLite).
const Component = "gate"

// Migrations are the store's schema steps. Version 1 is the schema the
// SQLite store had before migrations existed (IF NOT EXISTS keeps it a
// no-op on those files).
var Migrations = []database.Migration{{
	Version: 1, Name: "images, verdict history, scans and settings",
	SQLite: `
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
CREATE TABLE IF NOT EXISTS scans (
	digest      TEXT PRIMARY KEY,
	repository  TEXT NOT NULL DEFAULT '',
	source      TEXT NOT NULL DEFAULT '',
	scanned_at  TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	db_built    TEXT NOT NULL DEFAULT '', -- build time of the vulnerability DB the scan used
	reports     TEXT NOT NULL DEFAULT '[]' -- []PlatformReport as JSON
);
CREATE TABLE IF NOT EXISTS settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);`,
	Postgres: `
CREATE TABLE images (
	digest      TEXT PRIMARY KEY,
	repository  TEXT NOT NULL,
	verdict     TEXT NOT NULL,
	state       TEXT NOT NULL,
	promoted    BOOLEAN NOT NULL DEFAULT FALSE,
	updated_at  TEXT NOT NULL
);
CREATE INDEX images_repository ON images (repository);
CREATE INDEX images_state ON images (state);
CREATE TABLE verdict_history (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	digest      TEXT NOT NULL,
	verdict     TEXT NOT NULL,
	recorded_at TEXT NOT NULL
);
CREATE INDEX verdict_history_digest ON verdict_history (digest, id);
CREATE TABLE scans (
	digest      TEXT PRIMARY KEY,
	repository  TEXT NOT NULL DEFAULT '',
	source      TEXT NOT NULL DEFAULT '',
	scanned_at  TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	db_built    TEXT NOT NULL DEFAULT '',
	reports     TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);`,
}}

// SQL is the Store on a database opened by internal/database.
type SQL struct{ db *database.DB }

var _ Store = (*SQL)(nil)

// Open opens the store in the "gate" database of o, migrating its schema.
func Open(ctx context.Context, o *database.Opener) (*SQL, error) {
	db, err := o.Open(ctx, Component)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s, err := New(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// New migrates the store's schema in db and returns the store, which
// closes db with Close.
func New(ctx context.Context, db *database.DB) (*SQL, error) {
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &SQL{db: db}, nil
}

// Close closes the database.
func (s *SQL) Close() error { return s.db.Close() }

func validDigest(d string) error {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || (alg != "sha256" && alg != "sha512") || len(hex) < 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("store: %q is not a digest", d)
	}
	return nil
}

// timeLayout is RFC 3339 with a fixed nine-digit fraction, so that stored
// times sort as text; time.RFC3339Nano parses it (and older rows).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func timeText(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

const imageColumns = `digest, repository, verdict, promoted, updated_at`

type row interface{ Scan(...any) error }

func scanImage(r row) (*Image, error) {
	var im Image
	var raw, updated string
	if err := r.Scan(&im.Digest, &im.Repository, &raw, &im.Promoted, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(raw), &im.Verdict); err != nil {
		return nil, fmt.Errorf("store: stored verdict of %s: %w", im.Digest, err)
	}
	t, err := parseTime(updated)
	if err != nil {
		return nil, fmt.Errorf("store: stored time of %s: %w", im.Digest, err)
	}
	im.UpdatedAt = t
	return &im, nil
}

// UpdateImage implements Store.
func (s *SQL) UpdateImage(ctx context.Context, digest string, fn func(prev *Image) (*Image, error)) (*Image, error) {
	if err := validDigest(digest); err != nil {
		return nil, err
	}
	var out *Image
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		out = nil
		prev, err := lockImage(ctx, tx, digest)
		if err != nil {
			return err
		}
		var arg *Image
		if prev != nil {
			c := *prev
			arg = &c
		}
		next, err := fn(arg)
		if err != nil {
			return err
		}
		if next == nil {
			out = prev
			return nil
		}
		n := *next
		n.Digest = digest
		if err := writeImage(ctx, tx, prev, &n); err != nil {
			return err
		}
		out = &n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lockImage takes digest's lock for the transaction and reads its record
// (nil when there is none).
func lockImage(ctx context.Context, tx *database.Tx, digest string) (*Image, error) {
	if err := tx.Lock(ctx, "image "+digest); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	im, err := scanImage(tx.QueryRowContext(ctx, `SELECT `+imageColumns+` FROM images WHERE digest = ?`, digest))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("store: read %s: %w", digest, err)
	}
	return im, nil
}

// writeImage stores next over prev (nil: a new record), adding its
// verdict to the history when it differs from prev's.
func writeImage(ctx context.Context, tx *database.Tx, prev, next *Image) error {
	data, err := json.Marshal(next.Verdict)
	if err != nil {
		return fmt.Errorf("store: encode verdict of %s: %w", next.Digest, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO images (digest, repository, verdict, state, promoted, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET repository = excluded.repository, verdict = excluded.verdict,
			state = excluded.state, promoted = excluded.promoted, updated_at = excluded.updated_at`,
		next.Digest, next.Repository, string(data), string(next.Verdict.State), next.Promoted, timeText(next.UpdatedAt)); err != nil {
		return fmt.Errorf("store: write %s: %w", next.Digest, err)
	}
	if prev != nil {
		old, err := json.Marshal(prev.Verdict)
		if err != nil {
			return fmt.Errorf("store: encode verdict of %s: %w", next.Digest, err)
		}
		if bytes.Equal(old, data) {
			return nil
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO verdict_history (digest, verdict, recorded_at) VALUES (?, ?, ?)`,
		next.Digest, string(data), timeText(next.UpdatedAt)); err != nil {
		return fmt.Errorf("store: write history of %s: %w", next.Digest, err)
	}
	return nil
}

// Image implements Store.
func (s *SQL) Image(ctx context.Context, digest string) (*Image, error) {
	im, err := scanImage(s.db.QueryRowContext(ctx, `SELECT `+imageColumns+` FROM images WHERE digest = ?`, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", digest, err)
	}
	return im, nil
}

// MarkPromoted implements Store.
func (s *SQL) MarkPromoted(ctx context.Context, digest string, now time.Time) error {
	_, err := s.UpdateImage(ctx, digest, func(prev *Image) (*Image, error) {
		if prev == nil {
			return nil, fmt.Errorf("%s: %w", digest, ErrNotFound)
		}
		if !prev.Verdict.Promotable() {
			return nil, fmt.Errorf("store: %s is %s, not promotable", digest, prev.Verdict.State)
		}
		prev.Promoted, prev.UpdatedAt = true, now
		return prev, nil
	})
	return err
}

// History implements Store.
func (s *SQL) History(ctx context.Context, digest string) ([]gate.Verdict, error) {
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
func (s *SQL) List(ctx context.Context, f Filter) ([]Image, error) {
	q := `SELECT ` + imageColumns + ` FROM images WHERE 1 = 1`
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

// CountByState implements Store.
func (s *SQL) CountByState(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM images GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("store: count verdicts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: count verdicts: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// Setting implements Store.
func (s *SQL) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: read setting %s: %w", key, err)
	}
	return v, nil
}

// SetSetting implements Store.
func (s *SQL) SetSetting(ctx context.Context, key, value string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("store: write setting %s: %w", key, err)
	}
	return nil
}
