// Package store keeps the gate's metadata: the verdict of every image
// digest, whether it has been promoted to live/, the history of its
// verdicts, its latest scan and a few settings. One implementation, SQL,
// runs on every engine internal/database opens (a SQLite file in the data
// directory, or PostgreSQL shared by replicas); internal/store/storetest
// is the conformance suite every Store passes on both.
//
// Persistence stores; it does not decide. UpdateImage hands the stored
// record of a digest to a function of the caller's (the gatekeeper passes
// the gate's stability rules, gate.Transition) inside one transaction
// that holds the digest's lock, so concurrent decisions on the same digest,
// in one process or in several replicas, apply one after the other, each
// to the record the previous one stored.
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
	// UpdateImage calls fn with a copy of the stored record of digest (nil
	// when there is none) and stores the record fn returns, atomically: no
	// other UpdateImage or MarkPromoted of the same digest, in this
	// process or another, runs in between. fn returning nil stores
	// nothing; a stored verdict that differs from the previous one is added
	// to the digest's history. It returns the record stored afterwards.
	// fn may be called more than once when the database retries the
	// transaction, so it must have no other effects; its error is
	// returned unchanged.
	UpdateImage(ctx context.Context, digest string, fn func(prev *Image) (*Image, error)) (*Image, error)
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
	// PutScans records several scans as PutScan does, in one transaction:
	// all or none.
	PutScans(ctx context.Context, scans ...Scan) error
	Scan(ctx context.Context, digest string) (*Scan, error)
	SetSource(ctx context.Context, digest, repository, source string) error
	// ScanStates lists every recorded scan without its reports.
	ScanStates(ctx context.Context) ([]ScanState, error)
	// Setting and SetSetting keep small named values (the hash of the
	// policy last seen, so a restart is not taken for a policy change).
	Setting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
	// SwapSetting sets key to value only if it holds old ("" for unset),
	// atomically, and reports whether it did: of several processes
	// noticing the same thing, one acts on it.
	SwapSetting(ctx context.Context, key, old, value string) (bool, error)
	// Serialize runs fn while holding digest's decision lock: no other
	// Serialize of the same digest runs meanwhile, in this process or in
	// another sharing the database. fn reads and records through the
	// store as usual (UpdateImage takes its own lock).
	Serialize(ctx context.Context, digest string, fn func(ctx context.Context) error) error
	// List returns images, most recently updated first.
	List(ctx context.Context, f Filter) ([]Image, error)
	// CountByState returns how many digests have each verdict state.
	CountByState(ctx context.Context) (map[string]int, error)
	// The findings index (see findings.go), kept by PutScan: totals over
	// repositories, counts per image, where a CVE or a package is, and
	// the repositories there are (to build a caller's scope).
	FindingTotals(ctx context.Context, sc RepositoryScope) (*FindingTotals, error)
	ImageFindingCounts(ctx context.Context, digests []string) (map[string]ImageCounts, error)
	FindingsWhere(ctx context.Context, q FindingQuery) ([]IndexedFinding, bool, error)
	FindingsSummary(ctx context.Context, q FindingQuery) (*WhereSummary, error)
	Repositories(ctx context.Context) ([]string, error)
	// FindingHistory is the fixable findings by severity per day;
	// EndOfLife the images whose OS's public support ends by a day (see
	// history.go).
	FindingHistory(ctx context.Context, days int) ([]HistoryPoint, error)
	EndOfLife(ctx context.Context, sc RepositoryScope, by time.Time, limit int) ([]SupportedImage, int, error)
	// Images returns a page of the images of some repositories, filtered,
	// with their count and the counts by state.
	Images(ctx context.Context, q ImageQuery) (*ImagePage, error)
	// Close releases the database.
	Close() error
}
