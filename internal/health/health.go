// Package health knows whether the services a drydock process depends on
// (its database, its object storage) answer, and turns their outages into
// clear 503 answers instead of 500s.
//
// A Checker probes each dependency every interval. While one is down, the
// Gate middleware answers every request (but liveness and metrics) 503
// UNAVAILABLE with Retry-After, naming what is down, without touching the
// dependency; a request that fails with a 5xx between two probes is probed
// at once, and answered 503 too when a dependency turns out to be down.
// Nothing is written during an outage, so nothing is left half-done by it:
// the registry and the stores write in an order (or a transaction) that a
// failure at any step leaves consistent. The checker recovers by itself.
package health

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Probe checks one dependency.
type Probe struct {
	Name  string
	Check func(ctx context.Context) error
}

// Checker probes dependencies and remembers which are down.
type Checker struct {
	probes   []Probe
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time

	mu      sync.Mutex
	down    map[string]error
	checked time.Time
	running chan struct{} // closed when the probe in progress ends
}

// NewChecker returns a checker of probes, run every interval (each with a
// timeout of at most interval, 2s by default).
func NewChecker(interval time.Duration, probes ...Probe) *Checker {
	return &Checker{probes: probes, interval: interval, timeout: min(interval*2, 2*time.Second), now: time.Now, down: map[string]error{}}
}

// Run probes every interval until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		_ = c.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check probes every dependency now (or waits for a probe already running)
// and returns what is down, nil when everything answers.
func (c *Checker) Check(ctx context.Context) error {
	c.mu.Lock()
	if c.running != nil {
		running := c.running
		c.mu.Unlock()
		select {
		case <-running:
		case <-ctx.Done():
			return ctx.Err()
		}
		return c.Down()
	}
	c.running = make(chan struct{})
	c.mu.Unlock()

	results := make([]error, len(c.probes))
	var wg sync.WaitGroup
	for i, p := range c.probes {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
			defer cancel()
			results[i] = p.Check(pctx)
		})
	}
	wg.Wait()

	c.mu.Lock()
	clear(c.down)
	for i, p := range c.probes {
		if results[i] != nil {
			c.down[p.Name] = results[i]
		}
	}
	c.checked = c.now()
	close(c.running)
	c.running = nil
	c.mu.Unlock()
	return c.Down()
}

// recheck is Check unless a probe finished within the last second.
func (c *Checker) recheck(ctx context.Context) error {
	c.mu.Lock()
	fresh := c.running == nil && c.now().Sub(c.checked) < time.Second
	c.mu.Unlock()
	if fresh {
		return c.Down()
	}
	return c.Check(ctx)
}

// Down returns the last probe's failures as one error naming each
// dependency, nil when everything answered.
func (c *Checker) Down() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.down) == 0 {
		return nil
	}
	names := make([]string, 0, len(c.down))
	for n := range c.down {
		names = append(names, n)
	}
	sort.Strings(names)
	errs := make([]error, len(names))
	for i, n := range names {
		errs[i] = &DownError{Name: n, Err: c.down[n]}
	}
	return errors.Join(errs...)
}

// DownError is a dependency that does not answer.
type DownError struct {
	Name string
	Err  error
}

func (e *DownError) Error() string { return e.Name + " unavailable: " + e.Err.Error() }
func (e *DownError) Unwrap() error { return e.Err }

// RetryAfter is the Retry-After of 503 answers, in seconds.
const RetryAfter = 5

// WriteUnavailable answers 503 UNAVAILABLE, in the registry's error format
// under /v2/ and the API's under /api/, plain text elsewhere.
func WriteUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	msg := "service unavailable: " + strings.ReplaceAll(err.Error(), "\n", "; ") + "; retry later"
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	h.Del("Location")
	h.Set("Retry-After", strconv.Itoa(RetryAfter))
	var body []byte
	switch {
	case strings.HasPrefix(r.URL.Path, "/v2"):
		body, _ = json.Marshal(map[string]any{"errors": []map[string]string{{"code": "UNAVAILABLE", "message": msg}}})
		h.Set("Content-Type", "application/json")
	case strings.HasPrefix(r.URL.Path, "/api/"):
		body, _ = json.Marshal(map[string]any{"error": map[string]string{"code": "UNAVAILABLE", "message": msg}})
		h.Set("Content-Type", "application/json")
	default:
		body = []byte(msg + "\n")
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// Gate answers 503 while a dependency is down, and turns a 5xx answered
// between two probes into a 503 when a probe made at once finds one down.
// Requests for which exempt returns true pass untouched.
func (c *Checker) Gate(next http.Handler, exempt func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exempt != nil && exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		if err := c.Down(); err != nil {
			WriteUnavailable(w, r, err)
			return
		}
		next.ServeHTTP(&gateWriter{ResponseWriter: w, c: c, r: r}, r)
	})
}

type gateWriter struct {
	http.ResponseWriter
	c         *Checker
	r         *http.Request
	wrote     bool
	swallowed bool
}

func (g *gateWriter) WriteHeader(code int) {
	if g.wrote {
		return
	}
	g.wrote = true
	if code >= 500 && code != http.StatusServiceUnavailable {
		if err := g.c.recheck(g.r.Context()); err != nil {
			g.swallowed = true
			WriteUnavailable(g.ResponseWriter, g.r, err)
			return
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gateWriter) Write(b []byte) (int, error) {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	if g.swallowed {
		return len(b), nil
	}
	return g.ResponseWriter.Write(b)
}

// ReadFrom keeps the sendfile path of io.Copy for blob downloads.
func (g *gateWriter) ReadFrom(src io.Reader) (int64, error) {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	if g.swallowed {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := g.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{g.ResponseWriter}, src)
}

func (g *gateWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// Unavailable reports whether err means a dependency could not be reached,
// dropped the connection or is shutting down: a failure of the service,
// not of the request, that a retry after the outage fixes.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, syscall.ETIMEDOUT,
		net.ErrClosed, io.ErrUnexpectedEOF, driver.ErrBadConn, sql.ErrConnDone} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "57P"), // admin or crash shutdown, cannot connect now
			pe.Code == "53300":                // too many connections
			return true
		}
	}
	// The AWS SDK (distribution's S3 driver) wraps transport failures in
	// errors with a code and an original error, without Unwrap.
	var aws interface {
		Code() string
		OrigErr() error
	}
	if errors.As(err, &aws) {
		switch aws.Code() {
		case "RequestError", "ServiceUnavailable", "SlowDown", "InternalError", "RequestTimeout":
			return true
		}
		return Unavailable(aws.OrigErr())
	}
	return false
}
