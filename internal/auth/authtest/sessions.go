package authtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/auth"
)

// SessionFactory makes a fresh, empty session backend for t and returns a
// function that opens handles on it (two handles are two processes).
type SessionFactory func(t *testing.T) (open func() auth.SessionBackend)

// RunSessions is the conformance suite of auth.SessionBackend.
func RunSessions(t *testing.T, newBackend SessionFactory) {
	ctx := context.Background()
	rec := func(id, user string, expires time.Time) auth.SessionRecord {
		return auth.SessionRecord{IDHash: id, User: user, CSRF: "csrf-" + id, CreatedAt: t0, ExpiresAt: expires}
	}

	t.Run("insert read delete", func(t *testing.T) {
		open := newBackend(t)
		a, b := open(), open()
		s1 := rec("h1", "alice", t0.Add(time.Hour+123*time.Millisecond))
		must(t, a.InsertSession(ctx, s1))
		if err := b.InsertSession(ctx, s1); !errors.Is(err, auth.ErrExists) {
			t.Errorf("inserting h1 twice: %v, want ErrExists", err)
		}
		got, err := b.Session(ctx, "h1")
		must(t, err)
		if *got != s1 {
			t.Errorf("read from the other handle: %+v, want %+v", *got, s1)
		}
		if _, err := a.Session(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("unknown session: %v, want ErrNotFound", err)
		}
		must(t, b.DeleteSession(ctx, "h1"))
		if _, err := a.Session(ctx, "h1"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("deleted session: %v, want ErrNotFound", err)
		}
		must(t, a.DeleteSession(ctx, "h1")) // gone already: no error
	})

	t.Run("expired sessions are deleted, live ones kept", func(t *testing.T) {
		open := newBackend(t)
		a := open()
		must(t, a.InsertSession(ctx, rec("old", "alice", t0.Add(time.Minute))))
		must(t, a.InsertSession(ctx, rec("edge", "alice", t0.Add(2*time.Minute))))
		must(t, a.InsertSession(ctx, rec("new", "bob", t0.Add(2*time.Minute+time.Millisecond))))
		n, err := open().DeleteSessionsExpiredBy(ctx, t0.Add(2*time.Minute))
		must(t, err)
		if n != 2 {
			t.Errorf("deleted %d sessions, want 2 (old, and edge which expires at the instant)", n)
		}
		for id, want := range map[string]bool{"old": false, "edge": false, "new": true} {
			_, err := a.Session(ctx, id)
			if got := err == nil; got != want {
				t.Errorf("session %s present %v, want %v (err %v)", id, got, want, err)
			}
		}
	})
}
