package workflow

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// maxMemoBody bounds a Release file kept in memory (Debian's main
// InRelease is about 150 KB).
const maxMemoBody = 8 << 20

// runCache is what the images of one run share in this process: an
// archive client that fetches each suite's Release files once (every
// image of a release verifies the same InRelease), and counts what it
// fetched. Packages indexes are not kept in memory: apt's cache on disk,
// keyed by their hash, serves every image after the first.
type runCache struct {
	client *http.Client

	mu      sync.Mutex
	entries map[string]*memoEntry
	fetches map[string]int // URL -> requests sent to the archive, since the last drain
}

type memoEntry struct {
	done   chan struct{}
	status int
	header http.Header
	body   []byte
	err    error
}

// runClient returns the run's cache, making it on first use.
func (e *Engine) runClient(runID string) *runCache {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.runs[runID]
	if !ok {
		c = &runCache{entries: map[string]*memoEntry{}, fetches: map[string]int{}}
		base := e.o.HTTPClient.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.client = &http.Client{Transport: &memoTransport{c: c, base: base}, Timeout: e.o.HTTPClient.Timeout}
		e.runs[runID] = c
	}
	return c
}

// dropRun forgets a finished run's cache.
func (e *Engine) dropRun(runID string) {
	e.mu.Lock()
	delete(e.runs, runID)
	e.mu.Unlock()
}

// drain returns the fetch counts since the last drain.
func (c *runCache) drain() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.fetches
	c.fetches = map[string]int{}
	return out
}

type memoTransport struct {
	c    *runCache
	base http.RoundTripper
}

// releaseFile reports the suite files shared by a run: InRelease, Release
// and Release.gpg under dists/.
func releaseFile(path string) bool {
	return strings.Contains(path, "/dists/") &&
		(strings.HasSuffix(path, "/InRelease") || strings.HasSuffix(path, "/Release") || strings.HasSuffix(path, "/Release.gpg"))
}

func (t *memoTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.URL.String()
	if req.Method != http.MethodGet || !releaseFile(req.URL.Path) || req.Header.Get("Range") != "" {
		t.c.count(key)
		return t.base.RoundTrip(req)
	}
	t.c.mu.Lock()
	m, ok := t.c.entries[key]
	if !ok {
		m = &memoEntry{done: make(chan struct{})}
		t.c.entries[key] = m
	}
	t.c.mu.Unlock()
	if !ok {
		t.c.count(key)
		m.fill(t.base, req)
		close(m.done)
	} else {
		select {
		case <-m.done:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if m.err != nil {
		t.c.mu.Lock()
		delete(t.c.entries, key) // a failure is not remembered
		t.c.mu.Unlock()
		return nil, m.err
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", m.status, http.StatusText(m.status)), StatusCode: m.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: m.header.Clone(),
		Body: io.NopCloser(bytes.NewReader(m.body)), ContentLength: int64(len(m.body)), Request: req,
	}, nil
}

func (m *memoEntry) fill(base http.RoundTripper, req *http.Request) {
	resp, err := base.RoundTrip(req)
	if err != nil {
		m.err = err
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMemoBody+1))
	switch {
	case err != nil:
		m.err = fmt.Errorf("reading %s: %w", req.URL, err)
	case len(body) > maxMemoBody:
		m.err = fmt.Errorf("%s: more than %d bytes", req.URL, maxMemoBody)
	}
	m.status, m.header, m.body = resp.StatusCode, resp.Header, body
	m.header.Del("Content-Length")
}

func (c *runCache) count(url string) {
	c.mu.Lock()
	c.fetches[url]++
	c.mu.Unlock()
}
