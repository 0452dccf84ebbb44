package registry

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
)

// Quota decides whether a repository may grow. The registry asks it for
// bytes before it takes them: a monolithic upload or a chunk whose length
// the client announces (Content-Length, Content-Range) is refused before
// its body is read; a chunk of unannounced length may take at most what
// Reserve granted. See quota.go of internal/gc for the accounting.
type Quota interface {
	// Reserve accounts n more bytes to repo (and its namespace), or
	// refuses with a *QuotaError when a limit would be exceeded.
	Reserve(ctx context.Context, repo string, n int64) error
	// Available returns how many more bytes repo may take now, or -1
	// when no limit applies to it.
	Available(ctx context.Context, repo string) (int64, error)
	// Release gives back n bytes reserved for repo that were not stored
	// (a failed or cancelled upload, a blob the repository held already).
	Release(ctx context.Context, repo string, n int64)
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
