// Package exceptionstest is the conformance suite of exceptions.Store:
// every implementation, on every database engine, passes Run.
package exceptionstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/exceptions"
)

// Factory makes a fresh, empty store for t and returns a function that
// opens handles on it; two handles behave as two processes would.
type Factory func(t *testing.T) (open func() exceptions.Store)

var t0 = time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// Valid returns a valid exception of scope digest for cve.
func Valid(cve string) exceptions.Exception {
	return exceptions.Exception{Scope: exceptions.ScopeDigest, Digest: digestA, CVE: cve,
		Justification: "vulnerable_code_not_in_execute_path", Reason: "not reachable <b>here</b>", Author: "alice",
		Created: t0, Expires: t0.Add(30 * 24 * time.Hour)}
}

// Run runs the suite.
func Run(t *testing.T, factory Factory) {
	one := func(t *testing.T) exceptions.Store { return factory(t)() }
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, one(t)) })
	t.Run("List", func(t *testing.T) { testList(t, one(t)) })
	t.Run("Revoke", func(t *testing.T) { testRevoke(t, one(t)) })
	t.Run("ConcurrentRevoke", func(t *testing.T) {
		open := factory(t)
		testConcurrentRevoke(t, open(), open())
	})
	t.Run("SharedAcrossHandles", func(t *testing.T) {
		open := factory(t)
		a, b := open(), open()
		e, err := a.Create(context.Background(), Valid("CVE-2024-1"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Get(context.Background(), e.ID)
		if err != nil || got.CVE != "CVE-2024-1" {
			t.Fatalf("the other handle reads %+v, %v", got, err)
		}
	})
}

func testCreateGet(t *testing.T, s exceptions.Store) {
	ctx := context.Background()
	in := Valid("CVE-2024-6387")
	in.Package = "openssh-server"
	in.Created = t0.Add(123456789 * time.Nanosecond)
	a, err := s.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, Valid("CVE-2024-2"))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID <= 0 || b.ID <= a.ID {
		t.Fatalf("IDs %d then %d, want increasing positive IDs", a.ID, b.ID)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.ID = a.ID
	if got != want {
		t.Fatalf("Get = %+v\nwant  %+v", got, want)
	}
	if _, err := s.Get(ctx, b.ID+100); !errors.Is(err, exceptions.ErrNotFound) {
		t.Fatalf("Get of an unknown ID: %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s exceptions.Store) {
	ctx := context.Background()
	mk := func(mod func(*exceptions.Exception)) int64 {
		e := Valid("CVE-2024-1")
		mod(&e)
		got, err := s.Create(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return got.ID
	}
	dig := mk(func(e *exceptions.Exception) {})
	digB := mk(func(e *exceptions.Exception) { e.Digest = digestB; e.CVE = "CVE-2024-2" })
	repo := mk(func(e *exceptions.Exception) {
		e.Scope, e.Digest, e.Repository = exceptions.ScopeRepository, "", "quarantine/nginx"
	})
	glob := mk(func(e *exceptions.Exception) {
		e.Scope, e.Digest, e.CVE, e.Package = exceptions.ScopeGlobal, "", "", "libc6"
	})
	future := mk(func(e *exceptions.Exception) { e.Created = t0.Add(48 * time.Hour); e.Expires = t0.Add(72 * time.Hour) })
	expired := mk(func(e *exceptions.Exception) { e.Expires = t0.Add(time.Hour) })
	revoked := mk(func(e *exceptions.Exception) {})
	if _, err := s.Revoke(ctx, revoked, "bob", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Hour)
	for _, tt := range []struct {
		name string
		f    exceptions.Filter
		want []int64
	}{
		{"all, newest first", exceptions.Filter{}, []int64{revoked, expired, future, glob, repo, digB, dig}},
		{"active", exceptions.Filter{ActiveAt: now}, []int64{glob, repo, digB, dig}},
		{"active at the expiry", exceptions.Filter{ActiveAt: t0.Add(time.Hour)}, []int64{glob, repo, digB, dig}},
		{"active just before the expiry", exceptions.Filter{ActiveAt: t0.Add(time.Hour - 1)}, []int64{expired, glob, repo, digB, dig}},
		{"cve", exceptions.Filter{CVE: "CVE-2024-2"}, []int64{digB}},
		{"package", exceptions.Filter{Package: "libc6"}, []int64{glob}},
		{"digest", exceptions.Filter{Digest: digestB}, []int64{glob, digB}},
		{"repository", exceptions.Filter{Repository: "quarantine/nginx", ActiveAt: now}, []int64{glob, repo}},
		{"image", exceptions.Filter{Digest: digestA, Repository: "quarantine/nginx", ActiveAt: now}, []int64{glob, repo, dig}},
		{"limit", exceptions.Filter{Limit: 2}, []int64{revoked, expired}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			ids := []int64{}
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Fatalf("List(%+v) = %v, want %v", tt.f, ids, tt.want)
			}
		})
	}
}

func testRevoke(t *testing.T, s exceptions.Store) {
	ctx := context.Background()
	e, err := s.Create(ctx, Valid("CVE-2024-1"))
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	got, err := s.Revoke(ctx, e.ID, "bob", at)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked.Equal(at) || got.RevokedBy != "bob" || got.Active(at) {
		t.Fatalf("revoked: %+v", got)
	}
	if _, err := s.Revoke(ctx, e.ID, "carol", at.Add(time.Hour)); !errors.Is(err, exceptions.ErrRevoked) {
		t.Fatalf("second revocation: %v, want ErrRevoked", err)
	}
	if again, _ := s.Get(ctx, e.ID); again.RevokedBy != "bob" || !again.Revoked.Equal(at) {
		t.Fatalf("a second revocation changed the record: %+v", again)
	}
	if _, err := s.Revoke(ctx, e.ID+1, "bob", at); !errors.Is(err, exceptions.ErrNotFound) {
		t.Fatalf("revoking an unknown ID: %v, want ErrNotFound", err)
	}
	if _, err := s.Revoke(ctx, e.ID, "bob", time.Time{}); !errors.Is(err, exceptions.ErrInvalid) {
		t.Fatalf("revoking without a time: %v, want ErrInvalid", err)
	}
}

// testConcurrentRevoke: of revocations from two processes, exactly one
// wins.
func testConcurrentRevoke(t *testing.T, a, b exceptions.Store) {
	ctx := context.Background()
	var ids []int64
	for i := range 10 {
		e, err := a.Create(ctx, Valid(fmt.Sprintf("CVE-2024-%d", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	for _, id := range ids {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []exceptions.Store{a, b} {
			wg.Go(func() {
				_, errs[i] = s.Revoke(ctx, id, fmt.Sprintf("user%d", i), t0.Add(time.Duration(i+1)*time.Minute))
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, exceptions.ErrRevoked):
				t.Fatalf("revoking %d: %v", id, err)
			}
		}
		if wins != 1 {
			t.Fatalf("exception %d: %d revocations won, want 1 (%v)", id, wins, errs)
		}
		got, _ := a.Get(ctx, id)
		winner := 0
		if errs[0] != nil {
			winner = 1
		}
		if got.RevokedBy != fmt.Sprintf("user%d", winner) {
			t.Fatalf("exception %d revoked by %q, but user%d won", id, got.RevokedBy, winner)
		}
	}
}
