package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drydock-project/drydock/internal/buildinfo"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("event dispatcher closed")

// dropLogInterval limits the warnings about a full queue to one per receiver
// per interval, each with the number of drops since the previous one.
const dropLogInterval = 10 * time.Second

// maxResponseDrain is how much of a response body is read, so that the
// connection can be reused, before it is closed.
const maxResponseDrain = 64 << 10

// Dispatcher delivers published events to webhook receivers. It is safe for
// concurrent use. Close must be called to stop its goroutines.
type Dispatcher struct {
	opts   options
	queues []*queue
	ctx    context.Context // cancelled when Close gives up, or when all workers are done
	cancel context.CancelFunc
	done   chan struct{} // closed when every worker has returned

	mu     sync.RWMutex // guards closed and sending to, or closing, the queues
	closed bool
}

// queue is one receiver's bounded queue and counters.
type queue struct {
	r   Receiver
	url string // for logs: no user info, no query

	ch chan encoded

	delivered, failed, dropped, retried atomic.Uint64
	queued                              atomic.Int64 // accepted and not finished, including the one in flight

	lastDropLog   atomic.Int64 // unix nanoseconds of the last drop warning; 0 for never
	unloggedDrops atomic.Uint64
}

// ReceiverStats are the counters of one receiver since the dispatcher was
// created. Delivered and Failed count events (an event retried and then
// delivered counts once in Delivered); Retried counts failed attempts that
// were followed by another; Dropped counts events not queued because the
// queue was full; Queued is the number of events accepted but not finished
// yet, including the one being delivered. Events abandoned when Close gives
// up count as Failed.
type ReceiverStats struct {
	Name      string
	Delivered uint64
	Failed    uint64
	Dropped   uint64
	Retried   uint64
	Queued    int
}

// NewDispatcher validates the receivers and options and starts one delivery
// goroutine per receiver. Errors about a receiver are *ConfigError. With no
// receivers, Publish only validates events.
func NewDispatcher(receivers []Receiver, opts ...Option) (*Dispatcher, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	rs, err := validateReceivers(receivers)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{opts: o, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, r := range rs {
		q := &queue{r: r, url: logURL(r.URL), ch: make(chan encoded, o.queueSize)}
		d.queues = append(d.queues, q)
		wg.Go(func() { d.run(q) })
	}
	go func() {
		wg.Wait()
		cancel()
		close(d.done)
	}()
	return d, nil
}

// logURL returns u without user info and query, which may hold credentials.
func logURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}

// Publish encodes e and queues it for every receiver that takes its type. It
// never blocks on a receiver: when a receiver's queue is full the event is
// dropped for that receiver, counted in its Stats and logged. It returns an
// error only for an event that cannot be encoded (unknown type, data that
// encoding/json rejects) or after Close.
func (d *Dispatcher) Publish(e Event) error {
	enc, err := encode(e, d.opts.source, d.opts.clock.Now())
	if err != nil {
		return err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("publishing %s event %q: %w", e.Type, e.Subject, ErrClosed)
	}
	for _, q := range d.queues {
		if !q.r.wants(enc.typ) {
			continue
		}
		q.queued.Add(1)
		select {
		case q.ch <- enc:
		default:
			q.queued.Add(-1)
			d.drop(q, enc)
		}
	}
	return nil
}

// drop counts an event that did not fit in q and warns, at most once per
// dropLogInterval per receiver.
func (d *Dispatcher) drop(q *queue, enc encoded) {
	total := q.dropped.Add(1)
	q.unloggedDrops.Add(1)
	now := d.opts.clock.Now().UnixNano()
	last := q.lastDropLog.Load()
	if last != 0 && now-last < int64(dropLogInterval) {
		return
	}
	if !q.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	d.opts.log.Warn("event dropped: receiver queue full",
		"receiver", q.r.Name, "event_id", enc.id, "type", enc.typ,
		"dropped", q.unloggedDrops.Swap(0), "dropped_total", total, "queue_size", cap(q.ch))
}

// Close stops accepting events and waits until every queued event has been
// delivered or has failed, or until ctx is done. In the latter case it
// cancels the deliveries in flight, abandons what is left in the queues
// (counted as failed) and returns an error wrapping ctx.Err() without waiting
// further. Close may be called more than once.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for _, q := range d.queues {
			close(q.ch)
		}
	}
	d.mu.Unlock()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		select {
		case <-d.done: // finished just as ctx expired
			return nil
		default:
		}
		var left int64
		for _, q := range d.queues {
			left += q.queued.Load()
		}
		d.cancel()
		return fmt.Errorf("closing event dispatcher with %d events undelivered: %w", left, ctx.Err())
	}
}

// Stats returns the counters of every receiver, sorted by name.
func (d *Dispatcher) Stats() []ReceiverStats {
	out := make([]ReceiverStats, 0, len(d.queues))
	for _, q := range d.queues {
		out = append(out, ReceiverStats{
			Name:      q.r.Name,
			Delivered: q.delivered.Load(),
			Failed:    q.failed.Load(),
			Dropped:   q.dropped.Load(),
			Retried:   q.retried.Load(),
			Queued:    int(q.queued.Load()),
		})
	}
	slices.SortFunc(out, func(a, b ReceiverStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// run delivers q's events in order until q is closed and empty.
func (d *Dispatcher) run(q *queue) {
	var abandoned int
	for enc := range q.ch {
		if d.deliver(q, enc) {
			abandoned++
		}
		q.queued.Add(-1)
	}
	if abandoned > 0 {
		d.opts.log.Error("events abandoned at shutdown", "receiver", q.r.Name, "url", q.url, "events", abandoned)
	}
}

// deliver sends enc to q's receiver, retrying as configured, and counts the
// outcome. It reports whether the event was abandoned because Close gave up;
// such an event counts as failed, without a log line of its own.
func (d *Dispatcher) deliver(q *queue, enc encoded) (abandoned bool) {
	for attempt := 1; ; attempt++ {
		if d.ctx.Err() != nil {
			q.failed.Add(1)
			return true
		}
		wait, err := d.attempt(q, enc)
		if err == nil {
			q.delivered.Add(1)
			d.opts.log.Debug("event delivered", "receiver", q.r.Name, "event_id", enc.id, "type", enc.typ, "attempts", attempt)
			return false
		}
		if d.ctx.Err() != nil {
			q.failed.Add(1)
			return true
		}
		var perm *permanentError
		if errors.As(err, &perm) || attempt >= d.opts.maxAttempts {
			q.failed.Add(1)
			d.opts.log.Error("event delivery failed",
				"receiver", q.r.Name, "url", q.url, "event_id", enc.id, "type", enc.typ,
				"attempts", attempt, "err", err)
			return false
		}
		if wait < 0 {
			wait = d.backoff(attempt)
		}
		q.retried.Add(1)
		d.opts.log.Warn("event delivery attempt failed, retrying",
			"receiver", q.r.Name, "url", q.url, "event_id", enc.id, "type", enc.typ,
			"attempt", attempt, "retry_in", wait, "err", err)
		if err := d.opts.sleep(d.ctx, wait); err != nil {
			q.failed.Add(1)
			return true
		}
	}
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// statusError is a response outside 2xx.
type statusError struct{ code int }

func (e *statusError) Error() string {
	return fmt.Sprintf("receiver answered %d %s", e.code, http.StatusText(e.code))
}

// attempt makes one signed POST of enc to q's receiver. On failure it returns
// the wait the receiver asked for with Retry-After, or -1 for none; failures
// not worth retrying are *permanentError.
func (d *Dispatcher) attempt(q *queue, enc encoded) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.r.URL, bytes.NewReader(enc.body))
	if err != nil {
		// The URL was validated; do not echo it, it may hold credentials.
		return -1, &permanentError{fmt.Errorf("building request for %s", q.url)}
	}
	ts := strconv.FormatInt(d.opts.clock.Now().Unix(), 10)
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "drydock-events/"+buildinfo.Version)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sign(q.r.Secret, ts, enc.body))
	resp, err := d.opts.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the URL, query included
		}
		return -1, fmt.Errorf("posting to %s: %w", q.url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return d.retryAfter(resp.Header.Get("Retry-After")), &statusError{code}
	case code >= 500:
		return -1, &statusError{code}
	default:
		return -1, &permanentError{&statusError{code}}
	}
}

// retryAfter parses a Retry-After value, delay-seconds or an HTTP date, and
// caps it at the maximum backoff. It returns -1 when h is absent or invalid.
func (d *Dispatcher) retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return -1
	}
	maxWait := d.opts.maxBackoff
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		if secs >= int64(maxWait/time.Second) {
			return maxWait
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return -1
	}
	return min(max(t.Sub(d.opts.clock.Now()), 0), maxWait)
}

// backoff returns the wait after the given failed attempt (1 for the first):
// base·2^(attempt-1), capped at the maximum, of which the upper half is
// random ("equal jitter"), so retries of many receivers spread out.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	w := d.opts.baseBackoff
	for i := 1; i < attempt && w < d.opts.maxBackoff; i++ {
		if w > d.opts.maxBackoff/2 {
			w = d.opts.maxBackoff
			break
		}
		w *= 2
	}
	w = min(w, d.opts.maxBackoff)
	half := w / 2
	return w - half + rand.N(half+1)
}
