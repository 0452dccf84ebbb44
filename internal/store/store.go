// Package store keeps the gate's metadata: the verdict of every image
// digest, whether it has been promoted to live/, and the history of its
// verdicts. The default backend is SQLite in the data directory; the
// Store interface leaves room for PostgreSQL.
//
// RecordVerdict applies the gate's stability rules (gate.Transition: a
// grace window before a pass turns into a fail after a rescan, never back
// to pending once promoted) against the stored verdict inside one
// transaction, so concurrent scans of the same digest cannot lose a
// verdict or apply the rules to a stale one.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
)

// ErrNotFound is returned for a digest the store has no verdict for.
var ErrNotFound = errors.New("no verdict for this digest")

// Image is what the gate knows about one digest.
type Image struct {
	Digest     string `json:"digest"`
	Repository string `json:"repository"` // where it was first seen, e.g. "quarantine/nginx"
	// Verdict is the effective verdict.
	Verdict   gate.Verdict `json:"verdict"`
	Promoted  bool         `json:"promoted"`
	UpdatedAt time.Time    `json:"updatedAt"`
}

// Filter selects images for List; zero fields match everything.
type Filter struct {
	Repository string
	State      gate.State
	Limit      int
}

// Store is the gate's metadata store.
type Store interface {
	// RecordVerdict stores next, a fresh gate.Evaluate result for digest,
	// as the digest's effective verdict after gate.Transition against the
	// stored one, and returns the effective verdict and a pending flip.
	RecordVerdict(ctx context.Context, digest, repository string, next gate.Verdict, now time.Time, grace time.Duration) (gate.Verdict, *gate.Flip, error)
	// Image returns the stored state of a digest, or ErrNotFound.
	Image(ctx context.Context, digest string) (*Image, error)
	// MarkPromoted records that digest was promoted to live/. It fails
	// unless the stored verdict is promotable (pass or exempt).
	MarkPromoted(ctx context.Context, digest string, now time.Time) error
	// History returns the effective verdicts recorded for digest, oldest
	// first; a re-evaluation that changes nothing but the time adds none.
	History(ctx context.Context, digest string) ([]gate.Verdict, error)
	// PutScan records the latest scan of a digest; Scan reads it back
	// (ErrNotFound when there is none); SetSource records where a digest
	// was imported from.
	PutScan(ctx context.Context, sc Scan) error
	Scan(ctx context.Context, digest string) (*Scan, error)
	SetSource(ctx context.Context, digest, repository, source string) error
	// ScanStates lists every recorded scan without its reports.
	ScanStates(ctx context.Context) ([]ScanState, error)
	// Setting and SetSetting keep small named values (the hash of the
	// policy last seen, so a restart is not taken for a policy change).
	Setting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
	// List returns images, most recently updated first.
	List(ctx context.Context, f Filter) ([]Image, error)
	Close() error
}
