package audit

import (
	"context"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
)

// newSQLLog opens the audit log of tg through a new handle.
func newSQLLog(t testing.TB, tg dbtest.Target, opts ...Option) *Log {
	t.Helper()
	b, err := NewSQL(context.Background(), tg.Open(t, Component))
	if err != nil {
		t.Fatal(err)
	}
	return newTestLog(t, b, opts...)
}

// dropGuards are the statements that remove the append-only triggers, as
// someone with owner rights on the database could.
func dropGuards(d database.Driver) []string {
	if d == database.Postgres {
		return []string{`DROP TRIGGER audit_log_no_update ON audit_log`, `DROP TRIGGER audit_log_no_truncate ON audit_log`}
	}
	return []string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`}
}

func TestSQLRefusesUpdateAndDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		l := newSQLLog(t, tg)
		recordN(t, l, 3)
		raw := tg.Open(t, Component)
		stmts := []string{
			`UPDATE audit_log SET actor = 'mallory' WHERE seq = 2`,
			`DELETE FROM audit_log WHERE seq = 2`,
			`DELETE FROM audit_log`,
		}
		if tg.Driver() == database.Postgres {
			stmts = append(stmts, `TRUNCATE audit_log`)
		}
		for _, stmt := range stmts {
			if _, err := raw.ExecContext(context.Background(), stmt); err == nil {
				t.Errorf("%s: succeeded", stmt)
			}
		}
		// Opening again (migrations already applied) keeps the guards and the data.
		l = newSQLLog(t, tg)
		if res := mustVerify(t, l); !res.OK() || res.Entries != 3 {
			t.Fatalf("Verify = %+v", res)
		}
	})
}

func TestSQLTamper(t *testing.T) {
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
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tg := newTarget(t)
				l := newSQLLog(t, tg)
				recordN(t, l, 6)
				raw := tg.Open(t, Component) // the attacker's handle
				ctx := context.Background()
				conn, err := raw.SQL().Conn(ctx) // one session: the temporary table must stay visible
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				for _, stmt := range append(dropGuards(tg.Driver()), tt.sql...) {
					if _, err := conn.ExecContext(ctx, stmt); err != nil {
						t.Fatalf("%s: %v", stmt, err)
					}
				}
				res := mustVerify(t, l)
				if res.OK() || res.Broken.Seq != tt.wantSeq || res.Broken.Reason != tt.wantReason {
					t.Fatalf("Verify = %+v (%v), want entry %d: %s", res, res.Broken, tt.wantSeq, tt.wantReason)
				}
			})
		}
	})
}

func TestSQLTruncatedTailNeedsAnchor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		ctx := context.Background()
		tg := newTarget(t)
		l := newSQLLog(t, tg)
		recordN(t, l, 6)
		anchor, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		raw := tg.Open(t, Component)
		for _, stmt := range append(dropGuards(tg.Driver()), `DELETE FROM audit_log WHERE seq > 4`) {
			if _, err := raw.ExecContext(ctx, stmt); err != nil {
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
	})
}

func TestSQLFollowAcrossHandles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(testing.TB) dbtest.Target) {
		tg := newTarget(t)
		writer := newSQLLog(t, tg)
		follower := newSQLLog(t, tg, WithPollInterval(5*time.Millisecond))
		recordN(t, writer, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		entries, done := follow(ctx, follower, 0)
		expectSeqs(t, entries, 1)
		recordN(t, writer, 2)
		expectSeqs(t, entries, 2, 3)
		cancel()
		<-done
	})
}
