package gc

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/jobs"
)

// recorder is an Auditor keeping what it is given.
type recorder struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (r *recorder) Record(_ context.Context, e audit.Entry) (*audit.Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return &e, nil
}

func (r *recorder) actions(a audit.Action) []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Entry
	for _, e := range r.entries {
		if e.Action == a {
			out = append(out, e)
		}
	}
	return out
}

// newService is a Service over s with the given policies, its clock days
// ahead, its queue started.
func newService(t *testing.T, s *setup, tg dbtest.Target, days int, g Guards, policies ...config.RetentionPolicy) (*Service, *recorder) {
	t.Helper()
	return startService(t, tg, Options{Registry: s.reg, Member: s.member,
		Now:    func() time.Time { return time.Now().Add(time.Duration(days) * 24 * time.Hour) },
		Config: config.GC{Retention: policies}, UploadTimeout: time.Hour, Guards: g}, &recorder{})
}

// startService builds a Service of o on a started queue on tg, auditing
// to rec.
func startService(t *testing.T, tg dbtest.Target, o Options, rec *recorder) (*Service, *recorder) {
	t.Helper()
	q, err := jobs.Open(t.Context(), tg.Opener(t), jobs.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	o.Queue, o.Audit = q, rec
	svc, err := NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
		_ = q.Close()
	})
	return svc, rec
}

// runToEnd starts a run and waits for it to finish.
func runToEnd(t *testing.T, svc *Service, req Request) *Run {
	t.Helper()
	r, err := svc.Start(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := svc.Run(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Finished() {
			if got.State != StateSucceeded {
				t.Fatalf("run %d: %s: %s", got.ID, got.State, got.Error)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d still %s after 2 minutes", got.ID, got.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServiceDryRunEqualsRun: a dry run (retention and collection)
// reports exactly the tags and blobs the real run then deletes; the real
// run deletes them, keeps what the never-delete rules protect, and
// records both in the audit log.
func TestServiceDryRunEqualsRun(t *testing.T) {
	tg := dbtest.SQLite(t)
	s := newSetup(t, tg)
	const repo = "quarantine/app"
	orig := s.pushImage(repo, "1.0", 1, nil, nil)
	p1 := s.pushImage(repo, "1.0-1", 1, nil, nil)
	p2 := s.pushImage(repo, "1.0-2", 1, nil, nil)
	p3 := s.pushImage(repo, "1.0-3", 1, nil, nil)
	old := s.pushImage(repo, "old", 2, nil, nil)
	pending := s.pushImage(repo, "pending", 1, nil, nil)
	pinned := s.pushImage(repo, "keep-me", 1, nil, nil)
	other := s.pushImage("quarantine/other", "old", 1, nil, nil) // no policy matches it

	policy := config.RetentionPolicy{Repositories: []string{"quarantine/app"}, KeepPatchTags: intp(1), KeepDays: intp(30), KeepTags: []string{"keep-*"}}
	svc, rec := newService(t, s, tg, 100, Guards{Pending: func(d digest.Digest) bool { return d == pending.desc.Digest }}, policy)

	dry := runToEnd(t, svc, Request{DryRun: true, Actor: "alice"})
	if after := s.blobsOnDisk(); len(after) == 0 {
		t.Fatal("no blobs on disk")
	}
	for _, img := range []image{orig, p1, p2, p3, old, pending, pinned} {
		s.mustPull(repo, img.desc.Digest.String(), img) // the dry run deleted nothing
	}
	real := runToEnd(t, svc, Request{Actor: "alice"})

	wantDeleted := []string{repo + ":1.0-1", repo + ":1.0-2", repo + ":old"}
	if got := deletedTags(dry.Report.Retention); !slices.Equal(got, wantDeleted) {
		t.Errorf("dry run deletes tags %v, want %v", got, wantDeleted)
	}
	if !slices.Equal(dry.Report.Retention.Deleted, real.Report.Retention.Deleted) {
		t.Errorf("dry run's tags %+v\nreal run's %+v", dry.Report.Retention.Deleted, real.Report.Retention.Deleted)
	}
	dryBlobs, realBlobs := deletedBlobs(dry.Report.Collection), deletedBlobs(real.Report.Collection)
	if !sameSet(dryBlobs, realBlobs) || len(realBlobs) == 0 {
		t.Errorf("dry run's blobs %v\nreal run's %v", dryBlobs, realBlobs)
	}
	if dry.Report.Collection.FreedBytes != real.Report.Collection.FreedBytes {
		t.Errorf("dry run frees %d bytes, real run %d", dry.Report.Collection.FreedBytes, real.Report.Collection.FreedBytes)
	}
	for _, img := range []image{p1, p2, old} {
		for _, b := range img.blobs {
			if !realBlobs[b.Digest] {
				t.Errorf("blob %s of a deleted tag kept", b.Digest)
			}
		}
		if code := s.status("/v2/" + repo + "/manifests/" + img.desc.Digest.String()); code != http.StatusNotFound {
			t.Errorf("manifest %s: %d after the run, want 404", img.desc.Digest, code)
		}
	}
	s.mustPull(repo, "1.0", orig)        // the original of the remaining patch
	s.mustPull(repo, "1.0-3", p3)        // the newest patch
	s.mustPull(repo, "pending", pending) // verdict pending
	s.mustPull(repo, "keep-me", pinned)  // keepTags
	s.mustPull("quarantine/other", "old", other)

	if got := rec.actions(audit.ActionGC); len(got) != 2 || got[0].Actor != "alice" {
		t.Errorf("audit gc entries %+v, want 2 by alice", got)
	}
	var audited []string
	for _, e := range rec.actions(audit.ActionDelete) {
		audited = append(audited, e.Repository+":"+e.Reference)
	}
	slices.Sort(audited)
	if !slices.Equal(audited, wantDeleted) {
		t.Errorf("audited deletions %v, want %v", audited, wantDeleted)
	}

	// Nothing left to do: the next dry run deletes nothing.
	if again := runToEnd(t, svc, Request{DryRun: true}); len(again.Report.Retention.Deleted) != 0 || again.Report.Collection.FreedBytes != 0 {
		t.Errorf("a second run would delete %+v and free %d bytes", again.Report.Retention.Deleted, again.Report.Collection.FreedBytes)
	}
}
