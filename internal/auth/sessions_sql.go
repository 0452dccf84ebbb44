package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

var _ SessionBackend = (*SQL)(nil)

// InsertSession implements SessionBackend.
func (b *SQL) InsertSession(ctx context.Context, s SessionRecord) error {
	_, err := b.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_name, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		s.IDHash, s.User, s.CSRF, s.CreatedAt.UnixMilli(), s.ExpiresAt.UnixMilli())
	if database.IsUniqueViolation(err) {
		return fmt.Errorf("session %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store session of %q: %w", s.User, err)
	}
	return nil
}

// Session implements SessionBackend.
func (b *SQL) Session(ctx context.Context, idHash string) (*SessionRecord, error) {
	var s SessionRecord
	var created, expires int64
	err := b.db.QueryRowContext(ctx, `SELECT id_hash, user_name, csrf, created_at, expires_at FROM sessions WHERE id_hash = ?`, idHash).
		Scan(&s.IDHash, &s.User, &s.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	return &s, nil
}

// DeleteSession implements SessionBackend.
func (b *SQL) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := b.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteSessionsExpiredBy implements SessionBackend.
func (b *SQL) DeleteSessionsExpiredBy(ctx context.Context, t time.Time) (int64, error) {
	res, err := b.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, t.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}
