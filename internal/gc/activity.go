package gc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/database"
)

// pullResolution is how precisely pulls are recorded: a manifest pulled
// again within this time of the pull this process recorded is not
// written again, so that pulls cost a database write once an hour per
// image, not once per request. Retention counts in days.
const pullResolution = time.Hour

// maxPullMemo bounds the pulls a process remembers having recorded.
const maxPullMemo = 100_000

// activity records when tags are pushed and manifests pulled, for
// retention's keepDays rule.
type activity struct {
	db  *database.DB
	now func() time.Time

	mu       sync.Mutex
	recorded map[string]time.Time // repo@digest -> pull last recorded by this process
}

func newActivity(db *database.DB, now func() time.Time) *activity {
	return &activity{db: db, now: now, recorded: map[string]time.Time{}}
}

// pushed records that repo:tag was pushed (pointing at d) now.
func (a *activity) pushed(ctx context.Context, repo, tag string, d digest.Digest) error {
	_, err := a.db.ExecContext(ctx, `INSERT INTO tag_pushes (repository, tag, digest, pushed_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, pushed_at = excluded.pushed_at`,
		repo, tag, d.String(), ts(a.now()))
	if err != nil {
		return fmt.Errorf("recording the push of %s:%s: %w", repo, tag, err)
	}
	return nil
}

// pulled records that repo@d was pulled now, unless this process recorded
// a pull of it within pullResolution.
func (a *activity) pulled(ctx context.Context, repo string, d digest.Digest) error {
	now := a.now()
	k := repo + "@" + d.String()
	a.mu.Lock()
	last, ok := a.recorded[k]
	if ok && now.Sub(last) < pullResolution && !now.Before(last) {
		a.mu.Unlock()
		return nil
	}
	if len(a.recorded) >= maxPullMemo {
		a.recorded = map[string]time.Time{}
	}
	a.recorded[k] = now
	a.mu.Unlock()
	_, err := a.db.ExecContext(ctx, `INSERT INTO pulls (repository, digest, pulled_at) VALUES (?, ?, ?)
		ON CONFLICT (repository, digest) DO UPDATE SET pulled_at = excluded.pulled_at`, repo, d.String(), ts(now))
	if err != nil {
		a.mu.Lock()
		delete(a.recorded, k)
		a.mu.Unlock()
		return fmt.Errorf("recording the pull of %s@%s: %w", repo, d, err)
	}
	return nil
}

// forget drops the push record of a deleted tag.
func (a *activity) forget(ctx context.Context, repo, tag string) error {
	_, err := a.db.ExecContext(ctx, `DELETE FROM tag_pushes WHERE repository = ? AND tag = ?`, repo, tag)
	return err
}

// pushTimes returns the recorded push times by "repo:tag".
func (a *activity) pushTimes(ctx context.Context) (map[string]time.Time, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT repository, tag, pushed_at FROM tag_pushes`)
	if err != nil {
		return nil, fmt.Errorf("reading push times: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var repo, tag, at string
		if err := rows.Scan(&repo, &tag, &at); err != nil {
			return nil, err
		}
		out[repo+":"+tag] = parseTS(at)
	}
	return out, rows.Err()
}

// pullTimes returns the last pull of each image across the gate's
// namespaces, by imageOf(repo)+"@"+digest: an image promoted to live/ and
// pulled there is in use in quarantine/ too.
func (a *activity) pullTimes(ctx context.Context) (map[string]time.Time, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT repository, digest, pulled_at FROM pulls`)
	if err != nil {
		return nil, fmt.Errorf("reading pull times: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var repo, d, at string
		if err := rows.Scan(&repo, &d, &at); err != nil {
			return nil, err
		}
		k := imageOf(repo) + "@" + d
		if t := parseTS(at); t.After(out[k]) {
			out[k] = t
		}
	}
	return out, rows.Err()
}
