package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Clock tells the time. The dispatcher reads it for event times, signature
// timestamps and Retry-After dates.
type Clock interface{ Now() time.Time }

// SleepFunc waits for d or until ctx is done, whichever is first, and returns
// ctx.Err() in the latter case.
type SleepFunc func(ctx context.Context, d time.Duration) error

// Option configures a Dispatcher. Options reject invalid values.
type Option func(*options) error

// Defaults used by NewDispatcher.
const (
	DefaultQueueSize   = 1024
	DefaultMaxAttempts = 8
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultTimeout     = 10 * time.Second
)

type options struct {
	client      *http.Client
	log         *slog.Logger
	clock       Clock
	source      string
	queueSize   int
	maxAttempts int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	timeout     time.Duration
	sleep       SleepFunc
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func defaultOptions() options {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return options{
		client: &http.Client{
			// A webhook is configured with its final URL; following redirects
			// would let a receiver point drydock at another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log:         slog.New(slog.DiscardHandler),
		clock:       systemClock{},
		source:      (&url.URL{Scheme: "drydock", Host: host}).String(),
		queueSize:   DefaultQueueSize,
		maxAttempts: DefaultMaxAttempts,
		baseBackoff: DefaultBaseBackoff,
		maxBackoff:  DefaultMaxBackoff,
		timeout:     DefaultTimeout,
		sleep:       sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WithHTTPClient sends requests with c instead of a client that uses the
// default transport and does not follow redirects. Each attempt is still
// bounded by WithTimeout.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("events: WithHTTPClient: nil client")
		}
		o.client = c
		return nil
	}
}

// WithLogger logs drops, retries and failures to l. By default nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("events: WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithClock reads the time from c instead of the system clock.
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("events: WithClock: nil clock")
		}
		o.clock = c
		return nil
	}
}

// WithSource sets the CloudEvents "source" attribute, a non-empty URI
// reference such as "drydock://registry.example.com". The default is
// "drydock://" followed by the host name.
func WithSource(source string) Option {
	return func(o *options) error {
		if source == "" {
			return errors.New("events: WithSource: empty source")
		}
		if _, err := url.Parse(source); err != nil {
			return fmt.Errorf("events: WithSource %q: not a URI reference: %w", source, err)
		}
		o.source = source
		return nil
	}
}

// WithQueueSize bounds the number of events waiting for each receiver
// (default 1024). Events published while a receiver's queue is full are
// dropped for that receiver.
func WithQueueSize(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("events: WithQueueSize %d: must be at least 1", n)
		}
		o.queueSize = n
		return nil
	}
}

// WithRetry sets how often a delivery is attempted (maxAttempts, default 8,
// counting the first) and the backoff between attempts: jittered exponential
// starting at base (default 1s) and capped at max (default 5m).
func WithRetry(maxAttempts int, base, max time.Duration) Option {
	return func(o *options) error {
		switch {
		case maxAttempts < 1:
			return fmt.Errorf("events: WithRetry: max attempts %d: must be at least 1", maxAttempts)
		case base <= 0:
			return fmt.Errorf("events: WithRetry: base backoff %v: must be positive", base)
		case max < base:
			return fmt.Errorf("events: WithRetry: max backoff %v: less than base backoff %v", max, base)
		}
		o.maxAttempts, o.baseBackoff, o.maxBackoff = maxAttempts, base, max
		return nil
	}
}

// WithTimeout bounds each delivery attempt, from connecting to reading the
// response (default 10s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("events: WithTimeout %v: must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithSleep replaces the wait between attempts, e.g. to record backoffs in
// tests instead of waiting. f must return promptly once ctx is done.
func WithSleep(f SleepFunc) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("events: WithSleep: nil function")
		}
		o.sleep = f
		return nil
	}
}
