package auth

import (
	"context"
	"time"
)

// UserRecord is a stored user: the user and its bcrypt password hash.
type UserRecord struct {
	User
	PasswordHash string
}

// TokenRecord is a stored token: the token and the hex SHA-256 of its
// secret.
type TokenRecord struct {
	Token
	SecretHash string
}

// Backend persists users, tokens and the bearer signing key for a Store,
// which makes every decision (names, passwords, grants, expiry, owners).
// Implementations: NewSQL (SQLite or PostgreSQL through
// internal/database); internal/auth/authtest is the conformance suite.
// Errors wrap ErrNotFound and ErrExists where the contract says so.
type Backend interface {
	// Update runs fn in one write transaction that no other Update, in
	// this process or another, interleaves with, and commits when fn
	// returns nil. fn may be called more than once (the database retried
	// the transaction); its error is returned unchanged.
	Update(ctx context.Context, fn func(Tx) error) error
	// User returns a user (ErrNotFound when there is none).
	User(ctx context.Context, name string) (*UserRecord, error)
	// Users returns every user, sorted by name.
	Users(ctx context.Context) ([]UserRecord, error)
	// CountUsers returns the number of users.
	CountUsers(ctx context.Context) (int, error)
	// Token returns a token by id (ErrNotFound when there is none).
	Token(ctx context.Context, id string) (*TokenRecord, error)
	// Tokens returns every token, sorted by name then creation time.
	Tokens(ctx context.Context) ([]TokenRecord, error)
	// TouchToken records when a token was last used.
	TouchToken(ctx context.Context, id string, at time.Time) error
	// SigningKey returns the stored signing key, storing candidate first
	// when there is none: every process sharing the backend gets the same
	// key.
	SigningKey(ctx context.Context, candidate []byte, at time.Time) ([]byte, error)
	// Close releases the backend.
	Close() error
}

// Tx is what an Update's function reads and writes.
type Tx interface {
	// User returns a user (ErrNotFound when there is none).
	User(ctx context.Context, name string) (*UserRecord, error)
	// InsertUser stores a new user; ErrExists when the name is taken.
	InsertUser(ctx context.Context, u UserRecord) error
	// UpdateUser replaces a user; ErrNotFound when there is none.
	UpdateUser(ctx context.Context, u UserRecord) error
	// DeleteUser deletes a user; ErrNotFound when there is none.
	DeleteUser(ctx context.Context, name string) error
	// Token returns a token by id; ActiveToken the unrevoked token with a
	// name (ErrNotFound when there is none).
	Token(ctx context.Context, id string) (*TokenRecord, error)
	ActiveToken(ctx context.Context, name string) (*TokenRecord, error)
	// TokensOwnedBy returns the tokens of an owner, revoked ones included.
	TokensOwnedBy(ctx context.Context, owner string) ([]TokenRecord, error)
	// InsertToken stores a new token; ErrExists when its id, or its name
	// among unrevoked tokens, is taken.
	InsertToken(ctx context.Context, t TokenRecord) error
	// UpdateToken replaces a token; ErrNotFound when there is none.
	UpdateToken(ctx context.Context, t TokenRecord) error
}
