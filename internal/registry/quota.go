package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"
)

// Quota decides whether a repository may grow, and accounts what it
// grows by. The registry asks it as early as the protocol allows, before
// the bytes are sent:
//
//   - POST of an upload session (no size yet): refused when the
//     repository is at its limit already;
//   - POST with ?digest= (monolithic) and PUT or PATCH with a
//     Content-Length or Content-Range: refused before the body is read,
//     with the upload's bytes so far plus the announced ones;
//   - a chunk of unannounced length (chunked transfer encoding): checked
//     once received, and the upload discarded when it is over;
//   - a cross-repository mount: the blob's size, when the repository
//     does not hold it already;
//   - a manifest PUT: its Content-Length.
//
// Concurrent uploads into one repository are each checked against the
// usage before them, so together they may pass a limit by what they
// carry; the next check refuses. See quota.go of internal/gc.
type Quota interface {
	// Check refuses, with a *QuotaError, n more bytes for repo (n = 0:
	// refused when repo or its namespace is at its limit).
	Check(ctx context.Context, repo string, n int64) error
	// Added accounts n bytes newly linked into repo (a blob or manifest
	// it did not hold).
	Added(ctx context.Context, repo string, n int64) error
}

// QuotaError is a refusal by a Quota: the registry answers it 403 DENIED
// with the numbers.
type QuotaError struct {
	// Scope is what the limit applies to: "repository quarantine/app" or
	// "namespace quarantine".
	Scope string `json:"scope"`
	// Limit, Used and Requested are in bytes.
	Limit     int64 `json:"limit"`
	Used      int64 `json:"used"`
	Requested int64 `json:"requested"`
}

func (e *QuotaError) Error() string {
	return "quota exceeded for " + e.Scope + ": " + formatBytes(e.Used) + " used of " + formatBytes(e.Limit) +
		", " + formatBytes(e.Requested) + " more requested"
}

// codeDenied is the spec's code for a refused request.
const codeDenied = "DENIED"

// checkQuota asks the quota, if any, for n more bytes in repo; a refusal
// is answered 403 DENIED with the numbers.
func (r *Registry) checkQuota(ctx context.Context, repo string, n int64) error {
	if r.quota == nil {
		return nil
	}
	err := r.quota.Check(ctx, repo, n)
	var qe *QuotaError
	if errors.As(err, &qe) {
		e := newAPIError(http.StatusForbidden, codeDenied, qe.Error(), qe)
		// The body is refused unread: the connection cannot carry
		// another request (and net/http would otherwise wait to read
		// a small body before answering).
		e.header = http.Header{"Connection": {"close"}}
		return e
	}
	if err != nil {
		return fmt.Errorf("checking the quota of %s: %w", repo, err)
	}
	return nil
}

// linkIsNew reports whether the link at p does not exist yet, when a
// quota needs to know (always false without one).
func (r *Registry) linkIsNew(ctx context.Context, p string) bool {
	if r.quota == nil {
		return false
	}
	ok, err := r.exists(ctx, p)
	return err == nil && !ok
}

// addUsage accounts n bytes newly linked into repo. A failure is logged:
// the bytes are stored, and the next collection recomputes the usage.
func (r *Registry) addUsage(ctx context.Context, repo string, n int64) {
	if r.quota == nil {
		return
	}
	if err := r.quota.Added(context.WithoutCancel(ctx), repo, n); err != nil {
		r.log.WarnContext(ctx, "accounting quota usage", "repo", repo, "bytes", n, "err", err)
	}
}

// WithQuota sets the quota the registry's uploads, mounts and manifest
// pushes are checked against.
func WithQuota(q Quota) Option {
	return func(r *Registry) error {
		if q == nil {
			return errors.New("nil quota")
		}
		r.quota = q
		return nil
	}
}

// PullObserver is told about every manifest served by GET (a pull; HEAD
// requests are not pulls), for retention's "pulled within" rule.
type PullObserver func(ctx context.Context, repo string, d digest.Digest)

// WithPullObserver sets the pull observer.
func WithPullObserver(fn PullObserver) Option {
	return func(r *Registry) error {
		if fn == nil {
			return errors.New("nil pull observer")
		}
		r.pulls = fn
		return nil
	}
}
