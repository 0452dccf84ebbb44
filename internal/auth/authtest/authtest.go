// Package authtest is the conformance suite of auth.Backend: every
// backend, on every database engine, passes Run.
package authtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/drydock-project/drydock/internal/auth"
)

// Factory makes a fresh, empty backend for t and returns a function that
// opens handles on it; two handles behave as two processes sharing it.
// Handles are closed when t ends.
type Factory func(t *testing.T) (open func() auth.Backend)

var t0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

func grants(t *testing.T, s ...string) auth.Grants {
	t.Helper()
	g, err := auth.ParseGrants(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func update(t *testing.T, b auth.Backend, fn func(tx auth.Tx) error) error {
	t.Helper()
	return b.Update(context.Background(), fn)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Run runs the conformance suite against the backends newBackend makes.
func Run(t *testing.T, newBackend Factory) {
	ctx := context.Background()

	t.Run("users", func(t *testing.T) {
		open := newBackend(t)
		b := open()
		alice := auth.UserRecord{User: auth.User{Name: "alice", Grants: grants(t, "push:quarantine", "pull:live"), CreatedAt: t0, UpdatedAt: t0}, PasswordHash: "$2a$hash"}
		must(t, update(t, b, func(tx auth.Tx) error { return tx.InsertUser(ctx, alice) }))
		err := update(t, b, func(tx auth.Tx) error { return tx.InsertUser(ctx, alice) })
		if !errors.Is(err, auth.ErrExists) {
			t.Errorf("inserting alice twice: %v, want ErrExists", err)
		}
		bob := auth.UserRecord{User: auth.User{Name: "bob", Grants: grants(t, "admin"), CreatedAt: t0.Add(time.Second), UpdatedAt: t0.Add(time.Second), Disabled: true}, PasswordHash: "$2a$bob"}
		must(t, update(t, b, func(tx auth.Tx) error { return tx.InsertUser(ctx, bob) }))

		other := open()
		got, err := other.User(ctx, "alice")
		if err != nil || got.PasswordHash != alice.PasswordHash || got.Grants.String() != alice.Grants.String() || !got.CreatedAt.Equal(t0) || got.Disabled {
			t.Fatalf("alice from another handle: %+v, %v", got, err)
		}
		if got, err := other.User(ctx, "bob"); err != nil || !got.Disabled || !got.Grants.IsAdmin() {
			t.Fatalf("bob: %+v, %v", got, err)
		}
		if _, err := other.User(ctx, "carol"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
		alice.Grants, alice.UpdatedAt, alice.PasswordHash = grants(t, "pull"), t0.Add(time.Hour), "$2a$new"
		must(t, update(t, b, func(tx auth.Tx) error { return tx.UpdateUser(ctx, alice) }))
		if got, _ := other.User(ctx, "alice"); got.PasswordHash != "$2a$new" || got.Grants.String() != "pull:*" || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("after update: %+v", got)
		}
		if err := update(t, b, func(tx auth.Tx) error { return tx.UpdateUser(ctx, auth.UserRecord{User: auth.User{Name: "carol"}}) }); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("updating an unknown user: %v", err)
		}
		if users, err := other.Users(ctx); err != nil || len(users) != 2 || users[0].Name != "alice" || users[1].Name != "bob" {
			t.Errorf("Users = %+v, %v", users, err)
		}
		if n, err := other.CountUsers(ctx); err != nil || n != 2 {
			t.Errorf("CountUsers = %d, %v", n, err)
		}
		must(t, update(t, b, func(tx auth.Tx) error { return tx.DeleteUser(ctx, "bob") }))
		if err := update(t, b, func(tx auth.Tx) error { return tx.DeleteUser(ctx, "bob") }); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("deleting bob twice: %v", err)
		}
		if n, _ := other.CountUsers(ctx); n != 1 {
			t.Errorf("CountUsers after delete = %d", n)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		open := newBackend(t)
		b := open()
		tok := func(id, name, owner string, created time.Time) auth.TokenRecord {
			return auth.TokenRecord{Token: auth.Token{ID: id, Name: name, Owner: owner, Grants: grants(t, "pull:live"), CreatedAt: created}, SecretHash: "hash-" + id}
		}
		ci1 := tok("000000000001", "ci", "", t0)
		ci1.ExpiresAt = t0.Add(24 * time.Hour)
		must(t, update(t, b, func(tx auth.Tx) error { return tx.InsertToken(ctx, ci1) }))
		if err := update(t, b, func(tx auth.Tx) error { return tx.InsertToken(ctx, tok("000000000002", "ci", "", t0)) }); !errors.Is(err, auth.ErrExists) {
			t.Errorf("a second active token named ci: %v, want ErrExists", err)
		}
		ci1.RevokedAt = t0.Add(time.Minute)
		must(t, update(t, b, func(tx auth.Tx) error { return tx.UpdateToken(ctx, ci1) }))
		must(t, update(t, b, func(tx auth.Tx) error { return tx.InsertToken(ctx, tok("000000000002", "ci", "", t0)) }))
		must(t, update(t, b, func(tx auth.Tx) error {
			return tx.InsertToken(ctx, tok("000000000003", "mine", "alice", t0.Add(time.Second)))
		}))
		must(t, update(t, b, func(tx auth.Tx) error {
			active, err := tx.ActiveToken(ctx, "ci")
			if err != nil || active.ID != "000000000002" {
				return fmt.Errorf("ActiveToken(ci) = %+v, %v", active, err)
			}
			if _, err := tx.ActiveToken(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
				return fmt.Errorf("ActiveToken(nope): %v", err)
			}
			owned, err := tx.TokensOwnedBy(ctx, "alice")
			if err != nil || len(owned) != 1 || owned[0].ID != "000000000003" {
				return fmt.Errorf("TokensOwnedBy(alice) = %+v, %v", owned, err)
			}
			if got, err := tx.Token(ctx, "000000000001"); err != nil || !got.RevokedAt.Equal(t0.Add(time.Minute)) || !got.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
				return fmt.Errorf("Token(1) in tx = %+v, %v", got, err)
			}
			return nil
		}))
		other := open()
		got, err := other.Token(ctx, "000000000003")
		if err != nil || got.Owner != "alice" || got.SecretHash != "hash-000000000003" || !got.LastUsedAt.IsZero() || !got.ExpiresAt.IsZero() {
			t.Fatalf("Token(3) = %+v, %v", got, err)
		}
		must(t, other.TouchToken(ctx, "000000000003", t0.Add(time.Hour)))
		if got, _ := b.Token(ctx, "000000000003"); !got.LastUsedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("last used %s after TouchToken", got.LastUsedAt)
		}
		if _, err := other.Token(ctx, "ffffffffffff"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}
		if err := update(t, b, func(tx auth.Tx) error { return tx.UpdateToken(ctx, tok("ffffffffffff", "x", "", t0)) }); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("updating an unknown token: %v", err)
		}
		all, err := other.Tokens(ctx)
		if err != nil || len(all) != 3 || all[0].ID != "000000000001" || all[1].ID != "000000000002" || all[2].Name != "mine" {
			t.Errorf("Tokens (by name, creation, revoked first) = %+v, %v", all, err)
		}
	})

	t.Run("update rolls back on error", func(t *testing.T) {
		b := newBackend(t)()
		boom := errors.New("boom")
		err := update(t, b, func(tx auth.Tx) error {
			if err := tx.InsertUser(ctx, auth.UserRecord{User: auth.User{Name: "ghost", CreatedAt: t0, UpdatedAt: t0}, PasswordHash: "x"}); err != nil {
				return err
			}
			return fmt.Errorf("later step: %w", boom)
		})
		if !errors.Is(err, boom) {
			t.Fatalf("error %v, want boom", err)
		}
		if _, err := b.User(ctx, "ghost"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("a rolled back insert is visible: %v", err)
		}
	})

	t.Run("concurrent read-modify-write from two handles loses nothing", func(t *testing.T) {
		open := newBackend(t)
		a, b := open(), open()
		must(t, update(t, a, func(tx auth.Tx) error {
			return tx.InsertUser(ctx, auth.UserRecord{User: auth.User{Name: "counter", CreatedAt: t0, UpdatedAt: t0}, PasswordHash: "x"})
		}))
		const workers, each = 6, 10
		var wg sync.WaitGroup
		errc := make(chan error, workers*each)
		for w := range workers {
			h := []auth.Backend{a, b}[w%2]
			wg.Go(func() {
				for i := range each {
					errc <- h.Update(ctx, func(tx auth.Tx) error {
						u, err := tx.User(ctx, "counter")
						if err != nil {
							return err
						}
						u.Grants = append(u.Grants, auth.Grant{Role: auth.RolePull, Namespace: fmt.Sprintf("ns%d-%d", w, i)})
						return tx.UpdateUser(ctx, *u)
					})
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			must(t, err)
		}
		u, err := b.User(ctx, "counter")
		if err != nil || len(u.Grants) != workers*each {
			t.Errorf("%d grants after %d updates (%v): updates were lost", len(u.Grants), workers*each, err)
		}
	})

	t.Run("one signing key for every handle", func(t *testing.T) {
		open := newBackend(t)
		handles := []auth.Backend{open(), open(), open()}
		keys := make([][]byte, len(handles))
		errs := make([]error, len(handles))
		var wg sync.WaitGroup
		for i, h := range handles {
			wg.Go(func() { keys[i], errs[i] = h.SigningKey(ctx, bytes.Repeat([]byte{byte('a' + i)}, 32), t0) })
		}
		wg.Wait()
		for i := range handles {
			must(t, errs[i])
			if !bytes.Equal(keys[i], keys[0]) || len(keys[i]) != 32 {
				t.Errorf("handle %d got key %q, handle 0 %q", i, keys[i], keys[0])
			}
		}
		if k, err := open().SigningKey(ctx, []byte("another candidate that is ignored"), t0); err != nil || !bytes.Equal(k, keys[0]) {
			t.Errorf("key changed: %q, %v", k, err)
		}
	})

	t.Run("the store works over the backend", func(t *testing.T) {
		open := newBackend(t)
		clock := func() time.Time { return t0 }
		s, err := auth.NewStore(ctx, open(), auth.WithClock(clock), auth.WithBcryptCost(bcrypt.MinCost))
		must(t, err)
		must(t, s.AddUser(ctx, "alice", "correct horse", grants(t, "push:quarantine", "pull:quarantine")))
		secret, _, err := s.CreateToken(ctx, auth.TokenSpec{Name: "alice-ci", Owner: "alice", Grants: grants(t, "pull:quarantine")})
		must(t, err)
		other, err := auth.NewStore(ctx, open(), auth.WithClock(clock), auth.WithBcryptCost(bcrypt.MinCost))
		must(t, err)
		if p, err := other.Authenticate(ctx, "alice", "correct horse"); err != nil || p.Name != "alice" {
			t.Fatalf("password login on another handle: %+v, %v", p, err)
		}
		if _, err := other.Authenticate(ctx, "alice", "wrong horse"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Errorf("wrong password: %v", err)
		}
		if p, err := other.AuthenticateToken(ctx, secret); err != nil || !p.Allows(auth.RolePull, "quarantine") {
			t.Fatalf("token login: %+v, %v", p, err)
		}
		must(t, s.DeleteUser(ctx, "alice"))
		if _, err := other.AuthenticateToken(ctx, secret); !errors.Is(err, auth.ErrTokenRevoked) {
			t.Errorf("token of a deleted owner: %v, want ErrTokenRevoked", err)
		}
	})
}
