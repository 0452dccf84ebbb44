package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

// Component is the auth store's database name (DATA/auth/auth.db on
// SQLite).
const Component = "auth"

// DefaultPath is where the embedded setup keeps users and tokens under a
// data directory.
func DefaultPath(dataDir string) string { return filepath.Join(dataDir, Component, Component+".db") }

// Migrations are the auth schema's steps. Version 1 is the schema the
// SQLite store had before migrations existed.
var Migrations = []database.Migration{{
	Version: 1, Name: "users, tokens and the signing key",
	SQLite: `
CREATE TABLE IF NOT EXISTS users (
	name          TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	grants        TEXT NOT NULL, -- JSON array of "ROLE:NAMESPACE"
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	owner        TEXT NOT NULL DEFAULT '',
	secret_hash  TEXT NOT NULL, -- hex SHA-256 of the whole secret
	grants       TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	expires_at   TEXT,
	last_used_at TEXT,
	revoked_at   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS tokens_owner ON tokens (owner);
CREATE TABLE IF NOT EXISTS signing_keys (
	id         INTEGER PRIMARY KEY,
	key        BLOB NOT NULL,
	created_at TEXT NOT NULL
);`,
	Postgres: `
CREATE TABLE users (
	name          TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	grants        TEXT NOT NULL,
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL,
	disabled      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	owner        TEXT NOT NULL DEFAULT '',
	secret_hash  TEXT NOT NULL,
	grants       TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	expires_at   TEXT,
	last_used_at TEXT,
	revoked_at   TEXT
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX tokens_owner ON tokens (owner);
CREATE TABLE signing_keys (
	id         INTEGER PRIMARY KEY,
	key        BYTEA NOT NULL,
	created_at TEXT NOT NULL
);`,
}, {
	Version: 2, Name: "web UI sessions",
	SQLite:   sessionsDDL,
	Postgres: sessionsDDL,
}, {
	// A bucket is the failed-login attempts left to one key (a user
	// name, a client address) at a time in Unix nanoseconds; a key
	// without a row holds all of its attempts (SQLThrottle).
	Version: 3, Name: "failed-login buckets",
	SQLite: `
CREATE TABLE IF NOT EXISTS login_throttle (
	key    TEXT PRIMARY KEY,
	tokens REAL NOT NULL,
	at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_throttle_at ON login_throttle (at);`,
	Postgres: `
CREATE TABLE login_throttle (
	key    TEXT PRIMARY KEY,
	tokens DOUBLE PRECISION NOT NULL,
	at     BIGINT NOT NULL
);
CREATE INDEX login_throttle_at ON login_throttle (at);`,
}}

// Tables are the auth store's tables, for copying an installation.
var Tables = []database.Table{
	{Name: "users", Columns: []string{"name", "password_hash", "grants", "created_at", "updated_at", "disabled"}, Key: "name", Bools: []string{"disabled"}},
	{Name: "tokens", Columns: []string{"id", "name", "owner", "secret_hash", "grants", "created_at", "expires_at", "last_used_at", "revoked_at"}, Key: "id"},
	{Name: "signing_keys", Columns: []string{"id", "key", "created_at"}, Key: "id"},
	{Name: "sessions", Columns: []string{"id_hash", "user_name", "csrf", "created_at", "expires_at"}, Key: "id_hash"},
}

// SQL is the Backend on a database opened by internal/database.
type SQL struct{ db *database.DB }

var _ Backend = (*SQL)(nil)

// NewSQL migrates the auth schema in db and returns the backend, which
// closes db with Close.
func NewSQL(ctx context.Context, db *database.DB) (*SQL, error) {
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, fmt.Errorf("auth store: %w", err)
	}
	return &SQL{db: db}, nil
}

// Close closes the database.
func (b *SQL) Close() error { return b.db.Close() }

// writeLock serialises auth writes across processes on PostgreSQL (SQLite's
// write transaction already does).
const writeLock = "auth write"

// Update implements Backend.
func (b *SQL) Update(ctx context.Context, fn func(Tx) error) error {
	return b.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, writeLock); err != nil {
			return err
		}
		return fn(sqlTx{tx})
	})
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: timeText(t), Valid: true}
}

func parseTime(column string, v sql.NullString) (time.Time, error) {
	if !v.Valid || v.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored %s %q: %w", column, v.String, err)
	}
	return t, nil
}

func encodeGrants(g Grants) (string, error) {
	if err := g.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(g.normalize())
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeGrants(text string) (Grants, error) {
	var g Grants
	if err := json.Unmarshal([]byte(text), &g); err != nil {
		return nil, fmt.Errorf("stored grants %q: %w", text, err)
	}
	return g.normalize(), nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

type scanner interface{ Scan(dest ...any) error }

const userColumns = `name, grants, created_at, updated_at, disabled, password_hash`

func scanUser(row scanner) (*UserRecord, error) {
	var u UserRecord
	var grants string
	var created, updated sql.NullString
	if err := row.Scan(&u.Name, &grants, &created, &updated, &u.Disabled, &u.PasswordHash); err != nil {
		return nil, err
	}
	var err error
	if u.Grants, err = decodeGrants(grants); err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Name, err)
	}
	if u.CreatedAt, err = parseTime("created_at", created); err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Name, err)
	}
	if u.UpdatedAt, err = parseTime("updated_at", updated); err != nil {
		return nil, fmt.Errorf("user %q: %w", u.Name, err)
	}
	return &u, nil
}

func getUser(ctx context.Context, q querier, name string) (*UserRecord, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read user %q: %w", name, err)
	}
	return u, nil
}

const tokenColumns = `id, name, owner, grants, created_at, expires_at, last_used_at, revoked_at, secret_hash`

func scanToken(row scanner) (*TokenRecord, error) {
	var t TokenRecord
	var grants string
	var created, expires, used, revoked sql.NullString
	if err := row.Scan(&t.ID, &t.Name, &t.Owner, &grants, &created, &expires, &used, &revoked, &t.SecretHash); err != nil {
		return nil, err
	}
	var err error
	if t.Grants, err = decodeGrants(grants); err != nil {
		return nil, fmt.Errorf("token %s: %w", t.ID, err)
	}
	for _, f := range []struct {
		name string
		v    sql.NullString
		to   *time.Time
	}{{"created_at", created, &t.CreatedAt}, {"expires_at", expires, &t.ExpiresAt}, {"last_used_at", used, &t.LastUsedAt}, {"revoked_at", revoked, &t.RevokedAt}} {
		if *f.to, err = parseTime(f.name, f.v); err != nil {
			return nil, fmt.Errorf("token %s: %w", t.ID, err)
		}
	}
	return &t, nil
}

func getToken(ctx context.Context, q querier, where, arg string) (*TokenRecord, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token %q %w", arg, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read token %q: %w", arg, err)
	}
	return t, nil
}

func listTokens(ctx context.Context, q querier, query string, args ...any) ([]TokenRecord, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	toks := []TokenRecord{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		toks = append(toks, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return toks, nil
}

// User implements Backend.
func (b *SQL) User(ctx context.Context, name string) (*UserRecord, error) {
	return getUser(ctx, b.db, name)
}

// Users implements Backend.
func (b *SQL) Users(ctx context.Context) ([]UserRecord, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	users := []UserRecord{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// CountUsers implements Backend.
func (b *SQL) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := b.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// Token implements Backend.
func (b *SQL) Token(ctx context.Context, id string) (*TokenRecord, error) {
	return getToken(ctx, b.db, `id = ?`, id)
}

// Tokens implements Backend.
func (b *SQL) Tokens(ctx context.Context) ([]TokenRecord, error) {
	return listTokens(ctx, b.db, `SELECT `+tokenColumns+` FROM tokens ORDER BY name, created_at, revoked_at IS NULL, id`)
}

// TouchToken implements Backend.
func (b *SQL) TouchToken(ctx context.Context, id string, at time.Time) error {
	if _, err := b.db.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, timeText(at), id); err != nil {
		return fmt.Errorf("record use of token %s: %w", id, err)
	}
	return nil
}

// SigningKey implements Backend.
func (b *SQL) SigningKey(ctx context.Context, candidate []byte, at time.Time) ([]byte, error) {
	var key []byte
	err := b.db.QueryRowContext(ctx, `SELECT key FROM signing_keys ORDER BY id DESC LIMIT 1`).Scan(&key)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if len(candidate) == 0 {
		return nil, errors.New("no signing key stored and none to store")
	}
	if _, err := b.db.ExecContext(ctx, `INSERT INTO signing_keys (id, key, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`,
		candidate, timeText(at)); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	if err := b.db.QueryRowContext(ctx, `SELECT key FROM signing_keys ORDER BY id DESC LIMIT 1`).Scan(&key); err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return key, nil
}

// sqlTx is the Tx of an Update.
type sqlTx struct{ tx *database.Tx }

func (t sqlTx) User(ctx context.Context, name string) (*UserRecord, error) {
	return getUser(ctx, t.tx, name)
}

func (t sqlTx) InsertUser(ctx context.Context, u UserRecord) error {
	grants, err := encodeGrants(u.Grants)
	if err != nil {
		return fmt.Errorf("user %q: %w", u.Name, err)
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO users (name, password_hash, grants, created_at, updated_at, disabled)
		VALUES (?, ?, ?, ?, ?, ?)`, u.Name, u.PasswordHash, grants, timeText(u.CreatedAt), timeText(u.UpdatedAt), u.Disabled); err != nil {
		if database.IsUniqueViolation(err) {
			return fmt.Errorf("user %q %w", u.Name, ErrExists)
		}
		return fmt.Errorf("add user %q: %w", u.Name, err)
	}
	return nil
}

func (t sqlTx) UpdateUser(ctx context.Context, u UserRecord) error {
	grants, err := encodeGrants(u.Grants)
	if err != nil {
		return fmt.Errorf("user %q: %w", u.Name, err)
	}
	res, err := t.tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, grants = ?, created_at = ?, updated_at = ?, disabled = ? WHERE name = ?`,
		u.PasswordHash, grants, timeText(u.CreatedAt), timeText(u.UpdatedAt), u.Disabled, u.Name)
	return affected(res, err, "update user", u.Name, "user")
}

func (t sqlTx) DeleteUser(ctx context.Context, name string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	return affected(res, err, "delete user", name, "user")
}

// affected turns a statement's result into ErrNotFound when it touched no
// row.
func affected(res sql.Result, err error, op, key, kind string) error {
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q %w", kind, key, ErrNotFound)
	}
	return nil
}

func (t sqlTx) Token(ctx context.Context, id string) (*TokenRecord, error) {
	return getToken(ctx, t.tx, `id = ?`, id)
}

func (t sqlTx) ActiveToken(ctx context.Context, name string) (*TokenRecord, error) {
	return getToken(ctx, t.tx, `name = ? AND revoked_at IS NULL`, name)
}

func (t sqlTx) TokensOwnedBy(ctx context.Context, owner string) ([]TokenRecord, error) {
	return listTokens(ctx, t.tx, `SELECT `+tokenColumns+` FROM tokens WHERE owner = ? ORDER BY name, created_at, revoked_at IS NULL, id`, owner)
}

func (t sqlTx) InsertToken(ctx context.Context, k TokenRecord) error {
	grants, err := encodeGrants(k.Grants)
	if err != nil {
		return fmt.Errorf("token %q: %w", k.Name, err)
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO tokens (id, name, owner, secret_hash, grants, created_at, expires_at, last_used_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, k.ID, k.Name, k.Owner, k.SecretHash, grants, timeText(k.CreatedAt),
		nullTime(k.ExpiresAt), nullTime(k.LastUsedAt), nullTime(k.RevokedAt)); err != nil {
		if database.IsUniqueViolation(err) {
			return fmt.Errorf("token %q %w", k.Name, ErrExists)
		}
		return fmt.Errorf("create token %q: %w", k.Name, err)
	}
	return nil
}

func (t sqlTx) UpdateToken(ctx context.Context, k TokenRecord) error {
	grants, err := encodeGrants(k.Grants)
	if err != nil {
		return fmt.Errorf("token %q: %w", k.Name, err)
	}
	res, err := t.tx.ExecContext(ctx, `UPDATE tokens SET name = ?, owner = ?, secret_hash = ?, grants = ?, created_at = ?,
		expires_at = ?, last_used_at = ?, revoked_at = ? WHERE id = ?`, k.Name, k.Owner, k.SecretHash, grants, timeText(k.CreatedAt),
		nullTime(k.ExpiresAt), nullTime(k.LastUsedAt), nullTime(k.RevokedAt), k.ID)
	return affected(res, err, "update token", k.ID, "token")
}
