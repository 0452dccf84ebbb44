package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := newTestStore(t, clock)
	if err := s.AddUser(ctx, "alice", "correct horse", Grants{{RolePull, "quarantine"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewSession(ctx, "nobody", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of an unknown user: %v, want ErrNotFound", err)
	}
	if _, err := s.NewSession(ctx, "alice", 0); err == nil {
		t.Error("a session of lifetime 0 was opened")
	}
	sess, err := s.NewSession(ctx, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.NewSession(ctx, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Secret == other.Secret || sess.CSRF == other.CSRF || len(sess.Secret) < 40 || len(sess.CSRF) < 40 {
		t.Fatalf("sessions share or have short secrets: %q %q / %q %q", sess.Secret, other.Secret, sess.CSRF, other.CSRF)
	}

	got, p, err := s.SessionPrincipal(ctx, sess.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "alice" || p.Kind != KindUser || !p.Allows(RolePull, "quarantine") || p.Allows(RoleAdmin, "*") {
		t.Errorf("principal %+v", p)
	}
	if !got.CheckCSRF(sess.CSRF) || got.CheckCSRF(other.CSRF) || got.CheckCSRF("") || got.Secret != "" {
		t.Errorf("CSRF check or secret of a looked-up session wrong: %+v", got)
	}
	for _, bad := range []string{"", "x", other.Secret + "x", sess.CSRF} {
		if _, _, err := s.SessionPrincipal(ctx, bad); !errors.Is(err, ErrNoSession) {
			t.Errorf("secret %q: %v, want ErrNoSession", bad, err)
		}
	}

	// A new grant takes effect on the next request; disabling ends it.
	if err := s.SetGrants(ctx, "alice", Grants{{RoleAdmin, "*"}}); err != nil {
		t.Fatal(err)
	}
	if _, p, err := s.SessionPrincipal(ctx, sess.Secret); err != nil || !p.Allows(RoleAdmin, "*") {
		t.Errorf("after a grant: %+v %v", p, err)
	}
	if err := s.DisableUser(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionPrincipal(ctx, sess.Secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("session of a disabled user: %v, want ErrNoSession", err)
	}
	if _, err := s.NewSession(ctx, "alice", time.Hour); !errors.Is(err, ErrUserDisabled) {
		t.Errorf("new session of a disabled user: %v", err)
	}
	if err := s.DisableUser(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}

	// Logout ends one session only.
	if err := s.EndSession(ctx, sess.Secret); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionPrincipal(ctx, sess.Secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("ended session: %v, want ErrNoSession", err)
	}
	if _, _, err := s.SessionPrincipal(ctx, other.Secret); err != nil {
		t.Errorf("the other session ended too: %v", err)
	}

	// Expiry, by the store's clock.
	clock.Advance(time.Hour - time.Millisecond)
	if _, _, err := s.SessionPrincipal(ctx, other.Secret); err != nil {
		t.Errorf("a millisecond before expiry: %v", err)
	}
	clock.Advance(time.Millisecond)
	if _, _, err := s.SessionPrincipal(ctx, other.Secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("at expiry: %v, want ErrNoSession", err)
	}

	// Deleting a user ends its sessions, and a new user of the same name
	// does not inherit them.
	if err := s.AddUser(ctx, "bob", "bob-password", Grants{{RolePull, "quarantine"}}); err != nil {
		t.Fatal(err)
	}
	bob, err := s.NewSession(ctx, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Opening a session sweeps the expired ones out of the store.
	if _, err := s.b.(SessionBackend).Session(ctx, sessionHash(other.Secret)); !errors.Is(err, ErrNotFound) {
		t.Errorf("an expired session's row after a new sign-in: %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionPrincipal(ctx, bob.Secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("session of a deleted user: %v, want ErrNoSession", err)
	}
	clock.Advance(time.Second)
	if err := s.AddUser(ctx, "bob", "another-password", Grants{{RoleAdmin, "*"}}); err != nil {
		t.Fatal(err)
	}
	if _, p, err := s.SessionPrincipal(ctx, bob.Secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("the deleted bob's session opens the new bob's: %+v %v, want ErrNoSession", p, err)
	}
	if fresh, err := s.NewSession(ctx, "bob", time.Hour); err != nil {
		t.Fatal(err)
	} else if _, _, err := s.SessionPrincipal(ctx, fresh.Secret); err != nil {
		t.Errorf("the new bob's own session: %v", err)
	}
}
