package vulndb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Default update limits.
const (
	DefaultMaxDownload = 2 << 30 // bytes per file
	DefaultTimeout     = 10 * time.Minute
	DefaultRetries     = 3
	DefaultBackoff     = time.Second
)

// DefaultPath is the database file under a data directory.
func DefaultPath(dataDir string) string { return filepath.Join(dataDir, "vulndb", "drydock-vuln.db") }

// UpdateOption configures Update.
type UpdateOption func(*updateConfig) error

type updateConfig struct {
	fetcher
	overrides map[string][]string
	only      []string
	keepGoing bool
}

// WithSourceURLs replaces the default URLs of the named source by urls
// (http(s) URLs or local files). Several calls for one source add up.
func WithSourceURLs(source string, urls ...string) UpdateOption {
	return func(c *updateConfig) error {
		if source == "" || len(urls) == 0 {
			return errors.New("vulndb.WithSourceURLs: a source name and at least one URL are required")
		}
		c.overrides[source] = append(c.overrides[source], urls...)
		return nil
	}
}

// WithOnly updates only the named sources; the others keep what the
// previous database had from them.
func WithOnly(sources ...string) UpdateOption {
	return func(c *updateConfig) error {
		c.only = append(c.only, sources...)
		return nil
	}
}

// WithKeepGoing makes a failing source keep its records from the previous
// database (if any) instead of failing the update.
func WithKeepGoing(keep bool) UpdateOption {
	return func(c *updateConfig) error { c.keepGoing = keep; return nil }
}

// WithHTTPClient sets the HTTP client (default: http.DefaultClient's
// transport with no overall timeout; WithTimeout bounds each download).
func WithHTTPClient(hc *http.Client) UpdateOption {
	return func(c *updateConfig) error {
		if hc == nil {
			return errors.New("vulndb.WithHTTPClient: nil client")
		}
		c.client = hc
		return nil
	}
}

// WithCacheDir sets the download cache (default: "cache" beside the
// database file).
func WithCacheDir(dir string) UpdateOption {
	return func(c *updateConfig) error { c.cacheDir = dir; return nil }
}

// WithMaxDownload bounds the size of each downloaded file.
func WithMaxDownload(n int64) UpdateOption {
	return func(c *updateConfig) error {
		if n <= 0 {
			return fmt.Errorf("vulndb.WithMaxDownload: %d is not positive", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithTimeout bounds each download attempt.
func WithTimeout(d time.Duration) UpdateOption {
	return func(c *updateConfig) error {
		if d <= 0 {
			return fmt.Errorf("vulndb.WithTimeout: %v is not positive", d)
		}
		c.timeout = d
		return nil
	}
}

// WithRetries sets how often a download is retried after a server error
// (5xx, 429), a connection error or a truncated body, and the first
// backoff (doubled each time).
func WithRetries(n int, backoff time.Duration) UpdateOption {
	return func(c *updateConfig) error {
		if n < 0 || backoff < 0 {
			return fmt.Errorf("vulndb.WithRetries: negative value (%d, %v)", n, backoff)
		}
		c.retries, c.backoff = n, backoff
		return nil
	}
}

// WithClock sets the clock that stamps fetches and the build.
func WithClock(now func() time.Time) UpdateOption {
	return func(c *updateConfig) error {
		if now == nil {
			return errors.New("vulndb.WithClock: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithProgress receives progress reports (from the calling goroutine).
func WithProgress(fn func(Progress)) UpdateOption {
	return func(c *updateConfig) error { c.progress = fn; return nil }
}

// UpdateReport says what an update did.
type UpdateReport struct {
	Path    string    `json:"path"`
	BuiltAt time.Time `json:"builtAt"`
	// Downloaded is the number of bytes downloaded over HTTP.
	Downloaded int64 `json:"downloaded"`
	// Sources, sorted by name.
	Sources []SourceReport `json:"sources"`
}

// Unchanged reports whether no file of the update changed.
func (r *UpdateReport) Unchanged() bool {
	for _, s := range r.Sources {
		if !s.Updated {
			continue
		}
		for _, f := range s.Fetches {
			if !f.Unchanged {
				return false
			}
		}
	}
	return true
}

// SourceReport is one source's part of an update.
type SourceReport struct {
	SourceMeta
	// Updated is false for sources the update kept from the previous
	// database (not selected by WithOnly).
	Updated bool `json:"updated"`
	// Err is the failure that made the source keep its previous records
	// (keep-going), or nil.
	Err error `json:"-"`
}

// Update fetches every selected source's files, imports them into a new
// database and, when all went well (or WithKeepGoing), atomically replaces
// the database at dbPath with it. The previous database is never modified:
// on failure it stays as it was, and readers that have it open are not
// disturbed.
//
// Downloads are cached beside the database with their ETag and
// Last-Modified; the next update sends If-None-Match / If-Modified-Since and
// reuses the cached file on 304 Not Modified, so an update that changes
// nothing downloads nothing (it still rebuilds the database from the cached
// files, so a fixed importer takes effect).
func Update(ctx context.Context, dbPath string, sources []Source, opts ...UpdateOption) (*UpdateReport, error) {
	c := &updateConfig{
		fetcher: fetcher{client: &http.Client{}, cacheDir: filepath.Join(filepath.Dir(dbPath), "cache"),
			maxSize: DefaultMaxDownload, timeout: DefaultTimeout, retries: DefaultRetries, backoff: DefaultBackoff, now: time.Now},
		overrides: map[string][]string{},
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	byName := map[string]Source{}
	for _, s := range sources {
		if _, dup := byName[s.Name()]; dup {
			return nil, fmt.Errorf("source %q given twice", s.Name())
		}
		byName[s.Name()] = s
	}
	for _, n := range append(slices.Sorted(maps.Keys(c.overrides)), c.only...) {
		if _, ok := byName[n]; !ok {
			return nil, fmt.Errorf("unknown source %q (known: %s)", n, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		}
	}
	selected := func(n string) bool { return len(c.only) == 0 || slices.Contains(c.only, n) }

	var old *DB
	if _, err := os.Stat(dbPath); err == nil {
		if old, err = Open(dbPath); err != nil && (len(c.only) > 0 || c.keepGoing) {
			return nil, fmt.Errorf("the previous database is needed to keep sources that are not updated: %w", err)
		}
		if old != nil {
			defer old.Close()
		}
	}

	rep := &UpdateReport{Path: dbPath}
	names := slices.Sorted(maps.Keys(byName))
	// Fetch everything first: nothing is written if a download fails.
	files := map[string][]*fetched{}
	fetchErr := map[string]error{}
	for _, n := range names {
		if !selected(n) {
			continue
		}
		urls := c.urls(byName[n])
		if len(urls) == 0 {
			return nil, fmt.Errorf("source %s has no URLs", n)
		}
		for _, u := range urls {
			f, err := c.fetch(ctx, n, u)
			if err != nil {
				if !c.keepGoing {
					return nil, err
				}
				fetchErr[n] = err
				break
			}
			rep.Downloaded += f.downloaded
			files[n] = append(files[n], f)
		}
	}

	b, err := newBuilder(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		sr := SourceReport{SourceMeta: SourceMeta{Name: n}, Updated: selected(n)}
		err := fetchErr[n]
		if sr.Updated && err == nil {
			err = c.importSource(ctx, b, byName[n], files[n], &sr)
		}
		if err != nil && !c.keepGoing {
			b.abort()
			return nil, err
		}
		if !sr.Updated || err != nil {
			sr.Err = err
			sr.Fetches = nil
			failure := ""
			if err != nil {
				failure = err.Error()
			}
			if old != nil {
				if cerr := b.copySource(ctx, old, n, failure); cerr != nil {
					b.abort()
					return nil, cerr
				}
				sr.SourceMeta = sourceMeta(old.meta, n)
				sr.Fetches = slices.Clone(sr.Fetches)
				for i := range sr.Fetches {
					sr.Fetches[i].Error = failure
				}
			}
			if err != nil && len(sr.Fetches) == 0 {
				// Nothing was kept: record the failure itself.
				f := FetchMeta{URL: strings.Join(c.urls(byName[n]), " "), FetchedAt: c.now(), Error: failure}
				if ferr := b.addFetch(ctx, n, f); ferr != nil {
					b.abort()
					return nil, ferr
				}
				sr.Fetches = []FetchMeta{f}
			}
		}
		rep.Sources = append(rep.Sources, sr)
	}
	rep.BuiltAt = c.now().UTC()
	if err := b.commit(ctx, rep.BuiltAt); err != nil {
		return nil, err
	}
	return rep, nil
}

// urls are the files of src this update fetches.
func (c *updateConfig) urls(src Source) []string {
	if u := c.overrides[src.Name()]; len(u) > 0 {
		return u
	}
	return src.DefaultURLs()
}

// importSource imports the fetched files of one source inside a
// savepoint, so that a failure removes exactly its records.
func (c *updateConfig) importSource(ctx context.Context, b *builder, src Source, files []*fetched, sr *SourceReport) error {
	const sp = "import_source"
	if err := b.savepoint(ctx, sp); err != nil {
		return fmt.Errorf("source %s: %w", src.Name(), err)
	}
	for _, f := range files {
		c.report(Progress{Source: src.Name(), URL: f.URL, Phase: "import", Complete: f.Size, Total: f.Size})
		s := &sink{ctx: ctx, b: b, source: src.Name(), stats: f.FetchMeta}
		err := src.Import(ctx, f.URL, f.path, s)
		if err == nil {
			err = b.addFetch(ctx, src.Name(), s.stats)
		}
		if err != nil {
			if rerr := b.rollbackTo(ctx, sp); rerr != nil {
				return fmt.Errorf("source %s: importing %s: %w (and rolling back: %v)", src.Name(), f.URL, err, rerr)
			}
			return fmt.Errorf("source %s: importing %s: %w", src.Name(), f.URL, err)
		}
		c.report(Progress{Source: src.Name(), URL: f.URL, Phase: "imported", Complete: f.Size, Total: f.Size})
		sr.Fetches = append(sr.Fetches, s.stats)
		sr.Advisories += s.stats.Advisories
		sr.Releases += s.stats.Releases
		sr.PackageSupport += s.stats.PackageSupport
		if s.stats.DataAsOf.After(sr.DataAsOf) {
			sr.DataAsOf = s.stats.DataAsOf
		}
	}
	return b.release(ctx, sp)
}

func sourceMeta(m Meta, name string) SourceMeta {
	for _, s := range m.Sources {
		if s.Name == name {
			return s
		}
	}
	return SourceMeta{Name: name}
}
