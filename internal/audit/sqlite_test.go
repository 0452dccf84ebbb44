package audit

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openSQLite opens path with the given pragmas ("busy_timeout(10000)").
func openSQLite(t testing.TB, path string, pragmas ...string) *sql.DB {
	t.Helper()
	q := url.Values{"_pragma": pragmas}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newSQLiteBackend(t testing.TB, db *sql.DB) *SQLiteBackend {
	t.Helper()
	b, err := NewSQLite(db)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSQLiteBackend(t *testing.T) {
	runBackendSuite(t, func(t *testing.T) Backend {
		db := openSQLite(t, filepath.Join(t.TempDir(), "audit.db"), "busy_timeout(10000)", "journal_mode(WAL)")
		db.SetMaxOpenConns(1) // a leaked transaction or open rows would deadlock the suite
		return newSQLiteBackend(t, db)
	})
}

func TestSQLiteRefusesUpdateAndDelete(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "audit.db"))
	l := newTestLog(t, newSQLiteBackend(t, db))
	recordN(t, l, 3)
	for _, stmt := range []string{
		`UPDATE audit_log SET actor = 'mallory' WHERE seq = 2`,
		`DELETE FROM audit_log WHERE seq = 2`,
		`DELETE FROM audit_log`,
	} {
		if _, err := db.Exec(stmt); err == nil {
			t.Errorf("%s: succeeded", stmt)
		}
	}
	// Re-opening the schema keeps the triggers and the data.
	l = newTestLog(t, newSQLiteBackend(t, db))
	if res := mustVerify(t, l); !res.OK() || res.Entries != 3 {
		t.Fatalf("Verify = %+v", res)
	}
}

func TestSQLiteTamper(t *testing.T) {
	const cols = `time, actor, action, repository, reference, digest, outcome, detail, prev_hash, hash`
	tests := []struct {
		name       string
		sql        []string
		wantSeq    int64
		wantReason Reason
	}{
		{"update actor", []string{`UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`}, 3, ReasonHashMismatch},
		{"update digest", []string{`UPDATE audit_log SET digest = 'sha256:0000' WHERE seq = 2`}, 2, ReasonHashMismatch},
		{"update detail", []string{`UPDATE audit_log SET detail = '{"i":40}' WHERE seq = 5`}, 5, ReasonHashMismatch},
		{"update detail whitespace", []string{`UPDATE audit_log SET detail = '{"i": 4}' WHERE seq = 5`}, 5, ReasonHashMismatch},
		{"update time", []string{`UPDATE audit_log SET time = '2030-01-01T00:00:00Z' WHERE seq = 4`}, 4, ReasonHashMismatch},
		{"update time to another form", []string{`UPDATE audit_log SET time = replace(time, 'Z', '+00:00') WHERE seq = 4`}, 4, ReasonMalformed},
		{"update time to a number", []string{`UPDATE audit_log SET time = 12345 WHERE seq = 4`}, 4, ReasonMalformed},
		{"update detail to invalid JSON", []string{`UPDATE audit_log SET detail = '{' WHERE seq = 2`}, 2, ReasonMalformed},
		{"update hash", []string{`UPDATE audit_log SET hash = '` + GenesisHash + `' WHERE seq = 6`}, 6, ReasonHashMismatch},
		{"point prev_hash at another entry", []string{`UPDATE audit_log SET prev_hash = (SELECT hash FROM audit_log WHERE seq = 1) WHERE seq = 3`}, 3, ReasonHashMismatch},
		{"delete middle row", []string{`DELETE FROM audit_log WHERE seq = 4`}, 4, ReasonSeqGap},
		{"delete first row", []string{`DELETE FROM audit_log WHERE seq = 1`}, 1, ReasonSeqGap},
		{"delete and renumber", []string{`DELETE FROM audit_log WHERE seq = 4`, `UPDATE audit_log SET seq = seq - 1 WHERE seq > 4`}, 4, ReasonHashMismatch},
		{"swap two rows", []string{
			`CREATE TEMP TABLE orig AS SELECT * FROM audit_log WHERE seq IN (2, 5)`,
			`UPDATE audit_log SET (` + cols + `) = (SELECT ` + cols + ` FROM orig WHERE orig.seq = 7 - audit_log.seq) WHERE seq IN (2, 5)`,
		}, 2, ReasonHashMismatch},
		{"insert before the first row", []string{`INSERT INTO audit_log SELECT 0, ` + cols + ` FROM audit_log WHERE seq = 1`}, 0, ReasonSeqGap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			l := newTestLog(t, newSQLiteBackend(t, openSQLite(t, path)))
			recordN(t, l, 6)
			raw := openSQLite(t, path) // the attacker's handle
			for _, stmt := range append([]string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`}, tt.sql...) {
				if _, err := raw.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			res := mustVerify(t, l)
			if res.OK() || res.Broken.Seq != tt.wantSeq || res.Broken.Reason != tt.wantReason {
				t.Fatalf("Verify = %+v (%v), want entry %d: %s", res, res.Broken, tt.wantSeq, tt.wantReason)
			}
		})
	}
}

func TestSQLiteTruncatedTailNeedsAnchor(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	l := newTestLog(t, newSQLiteBackend(t, openSQLite(t, path)))
	recordN(t, l, 6)
	anchor, err := l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw := openSQLite(t, path)
	for _, stmt := range []string{`DROP TRIGGER audit_log_no_delete`, `DELETE FROM audit_log WHERE seq > 4`} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if res := mustVerify(t, l); !res.OK() || res.Entries != 4 {
		t.Fatalf("Verify = %+v; truncation is only detectable with an anchor", res)
	}
	res, err := l.VerifyFrom(ctx, anchor)
	if err != nil || res.OK() || res.Broken.Seq != 5 || res.Broken.Reason != ReasonTruncated {
		t.Fatalf("VerifyFrom(%v) = %+v, %v; want entry 5 truncated", anchor, res, err)
	}
}

// TestSQLiteConcurrentAppends records from 8 goroutines through two *sql.DB
// handles on one file, as two processes would; the second handle has no
// busy_timeout, so it relies on the backend's retries.
func TestSQLiteConcurrentAppends(t *testing.T) {
	const workers, perWorker = 8, 200
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	db1 := openSQLite(t, path, "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)")
	l1 := newTestLog(t, newSQLiteBackend(t, db1))
	db2 := openSQLite(t, path, "synchronous(NORMAL)")
	l2 := newTestLog(t, newSQLiteBackend(t, db2))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		l := l1
		if w%2 == 1 {
			l = l2
		}
		wg.Go(func() {
			for i := range perWorker {
				d, err := Detail(map[string]int{"worker": w, "i": i})
				if err == nil {
					_, err = l.Record(ctx, Entry{Actor: fmt.Sprintf("worker-%d", w), Action: ActionPush, Detail: d})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, l := range []*Log{l1, l2} {
		if res := mustVerify(t, l); !res.OK() || res.Entries != workers*perWorker {
			t.Fatalf("Verify = %+v (%v), want %d intact entries", res, res.Broken, workers*perWorker)
		}
	}
	seen := map[string]bool{}
	for _, e := range collect(t, l1) {
		if seen[string(e.Detail)] {
			t.Fatalf("entry %s recorded twice", e.Detail)
		}
		seen[string(e.Detail)] = true
	}
	if len(seen) != workers*perWorker {
		t.Fatalf("%d distinct entries, want %d", len(seen), workers*perWorker)
	}
}

func TestSQLiteFollowAcrossHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	writer := newTestLog(t, newSQLiteBackend(t, openSQLite(t, path, "busy_timeout(10000)")))
	follower := newTestLog(t, newSQLiteBackend(t, openSQLite(t, path, "busy_timeout(10000)")), WithPollInterval(5*time.Millisecond))
	recordN(t, writer, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entries, done := follow(ctx, follower, 0)
	expectSeqs(t, entries, 1)
	recordN(t, writer, 2)
	expectSeqs(t, entries, 2, 3)
	cancel()
	<-done
}
