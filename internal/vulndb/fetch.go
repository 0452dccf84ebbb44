package vulndb

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// FetchError reports a file of a source that could not be fetched.
type FetchError struct {
	Source string
	URL    string
	// StatusCode is the HTTP status when the server answered with an
	// error status, else 0.
	StatusCode int
	Err        error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("source %s: fetching %s: %v", e.Source, e.URL, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Progress reports one file of an update.
type Progress struct {
	Source string
	URL    string
	// Phase is "download" (bytes arriving), "done" (the file is fetched),
	// "import" (its import started) or "imported".
	Phase string
	// Complete and Total are bytes downloaded and expected (Total is -1
	// when the server did not say).
	Complete, Total int64
	// Unchanged is set in the "done" report of a file the server said has
	// not changed (nothing was downloaded).
	Unchanged bool
}

// fetched is a file ready for import.
type fetched struct {
	FetchMeta
	path       string
	downloaded int64
}

// cacheEntry is the sidecar of a cached download.
type cacheEntry struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	SHA256       string `json:"sha256"`
	Size         int64  `json:"size"`
}

type fetcher struct {
	client   *http.Client
	cacheDir string
	maxSize  int64
	timeout  time.Duration
	retries  int
	backoff  time.Duration
	now      func() time.Time
	progress func(Progress)
}

// isRemote reports whether loc is an http(s) URL rather than a local file.
func isRemote(loc string) bool {
	return strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://")
}

// fetch makes loc (an http(s) URL or a local path, file:// allowed)
// available as a local file.
func (f *fetcher) fetch(ctx context.Context, source, loc string) (*fetched, error) {
	if !isRemote(loc) {
		return f.local(source, loc)
	}
	dir := filepath.Join(f.cacheDir, cacheKey(loc))
	name := path.Base(strings.TrimSuffix(mustPath(loc), "/"))
	if name == "." || name == "/" || name == "" {
		name = "download"
	}
	cached := filepath.Join(dir, name)
	var prev *cacheEntry
	// A cached copy is used for a conditional request only if it is intact.
	if e, err := readCacheEntry(dir); err == nil && e.URL == loc {
		if sum, err := fileSHA256(cached); err == nil && sum == e.SHA256 {
			prev = e
		}
	}
	var lastErr error
	for attempt := 0; attempt <= f.retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(f.backoff << (attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, &FetchError{Source: source, URL: loc, Err: ctx.Err()}
			case <-t.C:
			}
		}
		res, retry, err := f.try(ctx, source, loc, dir, cached, prev)
		if err == nil {
			if err := checkFile(res.path, loc); err != nil {
				return nil, &FetchError{Source: source, URL: loc, Err: err}
			}
			return res, nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func mustPath(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	return u.Path
}

func cacheKey(loc string) string {
	h := sha256.Sum256([]byte(loc))
	return hex.EncodeToString(h[:12])
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readCacheEntry(dir string) (*cacheEntry, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cache.json"))
	if err != nil {
		return nil, err
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// try makes one attempt; retry says whether another may succeed.
func (f *fetcher) try(ctx context.Context, source, loc, dir, cached string, prev *cacheEntry) (_ *fetched, retry bool, _ error) {
	fail := func(code int, retry bool, err error) (*fetched, bool, error) {
		return nil, retry, &FetchError{Source: source, URL: loc, StatusCode: code, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return fail(0, false, err)
	}
	if prev != nil {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fail(0, true, fmt.Errorf("unreachable: %w", err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && prev != nil:
		f.report(Progress{Source: source, URL: loc, Phase: "done", Complete: 0, Total: prev.Size, Unchanged: true})
		return &fetched{path: cached, FetchMeta: FetchMeta{URL: loc, ETag: prev.ETag, LastModified: prev.LastModified,
			SHA256: prev.SHA256, Size: prev.Size, FetchedAt: f.now(), Unchanged: true}}, false, nil
	case resp.StatusCode != http.StatusOK:
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		return fail(resp.StatusCode, retry, fmt.Errorf("server answered %s", resp.Status))
	case resp.ContentLength > f.maxSize:
		return fail(0, false, fmt.Errorf("%d bytes, more than the limit of %d", resp.ContentLength, f.maxSize))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(0, false, fmt.Errorf("creating download cache: %w", err))
	}
	tmp, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return fail(0, false, fmt.Errorf("creating download cache: %w", err))
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	pw := &progressWriter{f: f, p: Progress{Source: source, URL: loc, Phase: "download", Total: resp.ContentLength}}
	n, err := io.Copy(io.MultiWriter(tmp, h, pw), io.LimitReader(resp.Body, f.maxSize+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail(0, true, fmt.Errorf("truncated body: got %d of %d bytes", n, resp.ContentLength))
	case err != nil:
		return fail(0, true, fmt.Errorf("reading body after %d bytes: %w", n, err))
	case n > f.maxSize:
		return fail(0, false, fmt.Errorf("more than the limit of %d bytes", f.maxSize))
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return fail(0, true, fmt.Errorf("truncated body: got %d of %d bytes", n, resp.ContentLength))
	}
	if err := os.Rename(tmp.Name(), cached); err != nil {
		return fail(0, false, fmt.Errorf("storing download: %w", err))
	}
	e := cacheEntry{URL: loc, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}
	if b, err := json.Marshal(e); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "cache.json"), b, 0o644)
	}
	unchanged := prev != nil && prev.SHA256 == e.SHA256
	f.report(Progress{Source: source, URL: loc, Phase: "done", Complete: n, Total: n, Unchanged: unchanged})
	return &fetched{path: cached, downloaded: n, FetchMeta: FetchMeta{URL: loc, ETag: e.ETag, LastModified: e.LastModified,
		SHA256: e.SHA256, Size: n, FetchedAt: f.now(), Unchanged: unchanged}}, false, nil
}

// local hashes a local file given in place of a URL.
func (f *fetcher) local(source, loc string) (*fetched, error) {
	p := strings.TrimPrefix(loc, "file://")
	fail := func(err error) (*fetched, error) { return nil, &FetchError{Source: source, URL: loc, Err: err} }
	r, err := os.Open(p)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fail(fmt.Errorf("reading: %w", err))
	}
	if err := checkFile(p, p); err != nil {
		return fail(err)
	}
	f.report(Progress{Source: source, URL: loc, Phase: "done", Complete: n, Total: n})
	return &fetched{path: p, FetchMeta: FetchMeta{URL: loc, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, FetchedAt: f.now()}}, nil
}

// checkFile catches what is wrong with a file whatever the source: a .zip
// must be a readable zip archive.
func checkFile(file, loc string) error {
	if !strings.HasSuffix(strings.ToLower(mustPath(loc)), ".zip") {
		return nil
	}
	z, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("bad zip: %w", err)
	}
	return z.Close()
}

func (f *fetcher) report(p Progress) {
	if f.progress != nil {
		f.progress(p)
	}
}

// progressWriter reports download progress every 256 KiB.
type progressWriter struct {
	f    *fetcher
	p    Progress
	last int64
}

func (w *progressWriter) Write(b []byte) (int, error) {
	w.p.Complete += int64(len(b))
	if w.p.Complete-w.last >= 256<<10 {
		w.last = w.p.Complete
		w.f.report(w.p)
	}
	return len(b), nil
}
