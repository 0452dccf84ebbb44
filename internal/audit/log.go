package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Backend stores audit entries. Implementations: [NewSQL] (SQLite or
// PostgreSQL, through internal/database) and [NewMemory];
// internal/audit/audittest is the suite every backend passes.
type Backend interface {
	// Append calls next with the last stored entry (nil when the log is
	// empty) and stores the entry it returns, atomically: reading the last
	// entry and inserting the new one happen in one write transaction, so no
	// other writer, in this process or another, appends in between. The
	// returned entry's Seq must be the last Seq plus one (1 for the first).
	// next may be called more than once if the backend retries, and its
	// error is returned unchanged.
	Append(ctx context.Context, next func(prev *Entry) (*Entry, error)) (*Entry, error)
	// Scan calls fn for each stored entry with Seq >= fromSeq, in
	// ascending Seq order, and stops at fn's first error, returning it. A
	// stored row that cannot be decoded is reported as a *RowError. fn may
	// call the backend (Append included).
	Scan(ctx context.Context, fromSeq int64, fn func(*Entry) error) error
	// Last returns the entry with the highest Seq, or nil when the log is
	// empty.
	Last(ctx context.Context) (*Entry, error)
	// Newest returns up to limit entries with Seq < before (every Seq
	// when before is 0) whose Action is action (every action when it is
	// ""), newest first. It reads only what it returns, whatever the
	// log's size, so a page of one action costs the same as any page.
	Newest(ctx context.Context, before int64, action Action, limit int) ([]*Entry, error)
}

// RowError reports a stored row that cannot be decoded into an Entry.
type RowError struct {
	Seq int64
	Err error
}

func (e *RowError) Error() string { return fmt.Sprintf("audit entry %d: %v", e.Seq, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// Clock supplies the time entries are recorded at.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures a Log.
type Option func(*Log) error

// WithClock sets the clock entry times come from (default: the system clock).
func WithClock(c Clock) Option {
	return func(l *Log) error {
		if c == nil {
			return errors.New("audit: nil clock")
		}
		l.clock = c
		return nil
	}
}

// WithPollInterval sets how often Follow polls the backend for entries other
// processes recorded (default 1s). It must be positive.
func WithPollInterval(d time.Duration) Option {
	return func(l *Log) error {
		if d <= 0 {
			return fmt.Errorf("audit: poll interval %v is not positive", d)
		}
		l.poll = d
		return nil
	}
}

// WithNotify adds a wake-up source for Follow besides polling and this Log's
// own Record calls, e.g. a PostgreSQL LISTEN. Each Follow call subscribes
// once; a receive on the channel makes it look for new entries, and the
// channel should be released when ctx ends.
func WithNotify(subscribe func(ctx context.Context) <-chan struct{}) Option {
	return func(l *Log) error {
		if subscribe == nil {
			return errors.New("audit: nil notify subscription")
		}
		l.subscribe = subscribe
		return nil
	}
}

// Log is the audit log: it records entries on the hash chain, reads them
// back and verifies the chain. It is safe for concurrent use.
type Log struct {
	b         Backend
	clock     Clock
	poll      time.Duration
	subscribe func(context.Context) <-chan struct{}

	mu   sync.Mutex
	wake chan struct{} // closed and replaced after each Record
}

// New returns a Log stored in b.
func New(b Backend, opts ...Option) (*Log, error) {
	if b == nil {
		return nil, errors.New("audit: nil backend")
	}
	l := &Log{b: b, clock: systemClock{}, poll: time.Second, wake: make(chan struct{})}
	for _, o := range opts {
		if err := o(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Record appends e to the log and returns the stored entry. It fills Seq,
// Time (the clock's time in UTC, truncated to microseconds), PrevHash and
// Hash; an empty Outcome means OutcomeOK. Detail is stored in canonical
// form. Errors wrap ErrInvalidEntry when e itself is unacceptable.
func (l *Log) Record(ctx context.Context, e Entry) (*Entry, error) {
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	detail, err := canonicalDetail(e.Detail)
	if err != nil {
		return nil, err
	}
	e.Detail = detail
	stored, err := l.b.Append(ctx, func(prev *Entry) (*Entry, error) {
		n := e
		n.Seq, n.PrevHash = 1, GenesisHash
		if prev != nil {
			n.Seq, n.PrevHash = prev.Seq+1, prev.Hash
		}
		n.Time = l.clock.Now().UTC().Truncate(time.Microsecond)
		if y := n.Time.Year(); y < 1 || y > 9999 {
			return nil, fmt.Errorf("%w: clock time %v is outside years 1-9999", ErrInvalidEntry, n.Time)
		}
		n.Hash = n.ComputeHash()
		return &n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording audit %s by %q: %w", e.Action, e.Actor, err)
	}
	l.mu.Lock()
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
	return stored, nil
}

// Scan calls fn for each entry with Seq >= fromSeq, oldest first, without
// verifying the chain.
func (l *Log) Scan(ctx context.Context, fromSeq int64, fn func(*Entry) error) error {
	return l.b.Scan(ctx, fromSeq, fn)
}

// Newest returns up to limit entries with Seq < before (0: the newest)
// whose action is action ("" for every action), newest first, without
// verifying the chain.
func (l *Log) Newest(ctx context.Context, before int64, action Action, limit int) ([]*Entry, error) {
	if limit < 1 {
		return nil, fmt.Errorf("reading audit entries: limit %d is below 1", limit)
	}
	return l.b.Newest(ctx, before, action, limit)
}

// Head returns the latest entry's seq and hash, unverified; (0, GenesisHash)
// for an empty log. Recording it elsewhere lets VerifyFrom detect a
// truncated tail later.
func (l *Log) Head(ctx context.Context) (Anchor, error) {
	e, err := l.b.Last(ctx)
	if err != nil {
		return Anchor{}, fmt.Errorf("reading audit head: %w", err)
	}
	if e == nil {
		return Anchor{Hash: GenesisHash}, nil
	}
	return Anchor{Seq: e.Seq, Hash: e.Hash}, nil
}

// Follow calls fn for each entry with Seq >= fromSeq, oldest first, then for
// each entry recorded afterwards, until ctx ends (returning ctx.Err()) or fn
// or the backend fails. It wakes when this Log records, on the WithNotify
// source, and every poll interval for entries other processes recorded.
func (l *Log) Follow(ctx context.Context, fromSeq int64, fn func(*Entry) error) error {
	next := max(fromSeq, 1)
	var notify <-chan struct{}
	if l.subscribe != nil {
		notify = l.subscribe(ctx)
	}
	tick := time.NewTicker(l.poll)
	defer tick.Stop()
	for {
		l.mu.Lock()
		wake := l.wake
		l.mu.Unlock()
		err := l.b.Scan(ctx, next, func(e *Entry) error {
			if e.Seq < next {
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
			next = e.Seq + 1
			return nil
		})
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-tick.C:
		case _, ok := <-notify:
			if !ok {
				notify = nil
			}
		}
	}
}

// Reason says why verification stopped at an entry.
type Reason string

// Reasons a chain is broken.
const (
	// ReasonHashMismatch: the entry's content does not match its hash; it
	// was edited.
	ReasonHashMismatch Reason = "hash_mismatch"
	// ReasonPrevMismatch: the entry does not carry the previous entry's
	// hash; an entry before it was deleted, inserted, replaced or moved.
	ReasonPrevMismatch Reason = "prev_mismatch"
	// ReasonSeqGap: a seq is missing (an entry was deleted) or out of order.
	ReasonSeqGap Reason = "seq_gap"
	// ReasonMalformed: the stored row cannot be decoded.
	ReasonMalformed Reason = "malformed"
	// ReasonAnchorMismatch: the entry at the anchor's seq has another hash.
	ReasonAnchorMismatch Reason = "anchor_mismatch"
	// ReasonTruncated: the log ends before the anchor's seq.
	ReasonTruncated Reason = "truncated"
)

// Break is the first place the chain is broken.
type Break struct {
	Seq    int64  `json:"seq"`
	Reason Reason `json:"reason"`
	Detail string `json:"detail"`
}

func (b *Break) String() string {
	return fmt.Sprintf("entry %d: %s: %s", b.Seq, b.Reason, b.Detail)
}

// VerifyResult is the outcome of verifying the chain.
type VerifyResult struct {
	// Entries is the number of entries verified intact, from seq 1.
	Entries int64 `json:"entries"`
	// Head is the last intact entry (seq 0 and GenesisHash if none); when
	// the chain is intact, pin it to detect truncation later.
	Head Anchor `json:"head"`
	// Broken is the first break, nil when the chain is intact.
	Broken *Break `json:"broken,omitempty"`
}

// OK reports whether the chain is intact.
func (r *VerifyResult) OK() bool { return r.Broken == nil }

// Verify checks the whole chain from its first entry. A broken chain is
// reported in the result, not as an error; errors are failures to read.
func (l *Log) Verify(ctx context.Context) (*VerifyResult, error) {
	return l.VerifyFrom(ctx, Anchor{})
}

// VerifyFrom checks the whole chain, as Verify does, and also that it still
// passes through anchor, a head recorded earlier: the entry at anchor.Seq
// must exist and carry anchor.Hash. The zero Anchor checks nothing extra.
func (l *Log) VerifyFrom(ctx context.Context, anchor Anchor) (*VerifyResult, error) {
	if err := anchor.check(); err != nil {
		return nil, fmt.Errorf("verifying audit log: anchor: %w", err)
	}
	res := &VerifyResult{Head: Anchor{Hash: GenesisHash}}
	errStop := errors.New("stop")
	err := l.b.Scan(ctx, math.MinInt64, func(e *Entry) error {
		want := res.Head.Seq + 1
		switch {
		case e.Seq > want:
			res.Broken = &Break{Seq: want, Reason: ReasonSeqGap,
				Detail: fmt.Sprintf("entry %d is missing; next stored entry is %d", want, e.Seq)}
		case e.Seq < want:
			res.Broken = &Break{Seq: e.Seq, Reason: ReasonSeqGap,
				Detail: fmt.Sprintf("entry %d stored after entry %d", e.Seq, res.Head.Seq)}
		case e.ComputeHash() != e.Hash:
			res.Broken = &Break{Seq: e.Seq, Reason: ReasonHashMismatch,
				Detail: fmt.Sprintf("content hashes to %s, stored hash is %q: entry edited", e.ComputeHash(), e.Hash)}
		case e.PrevHash != res.Head.Hash:
			res.Broken = &Break{Seq: e.Seq, Reason: ReasonPrevMismatch,
				Detail: fmt.Sprintf("prev_hash %q, previous entry's hash is %s: entry deleted, inserted or moved", e.PrevHash, res.Head.Hash)}
		case e.Seq == anchor.Seq && e.Hash != anchor.Hash:
			res.Broken = &Break{Seq: e.Seq, Reason: ReasonAnchorMismatch,
				Detail: fmt.Sprintf("hash %s, anchor pins %s: chain rewritten", e.Hash, anchor.Hash)}
		}
		if res.Broken != nil {
			return errStop
		}
		res.Entries++
		res.Head = Anchor{Seq: e.Seq, Hash: e.Hash}
		return nil
	})
	var rowErr *RowError
	switch {
	case errors.Is(err, errStop):
	case errors.As(err, &rowErr) && rowErr.Seq > res.Head.Seq+1:
		res.Broken = &Break{Seq: res.Head.Seq + 1, Reason: ReasonSeqGap,
			Detail: fmt.Sprintf("entry %d is missing; next stored entry is %d", res.Head.Seq+1, rowErr.Seq)}
	case errors.As(err, &rowErr):
		res.Broken = &Break{Seq: rowErr.Seq, Reason: ReasonMalformed, Detail: rowErr.Err.Error()}
	case err != nil:
		return nil, fmt.Errorf("verifying audit log: %w", err)
	}
	if res.Broken == nil && res.Head.Seq < anchor.Seq {
		res.Broken = &Break{Seq: res.Head.Seq + 1, Reason: ReasonTruncated,
			Detail: fmt.Sprintf("log ends at entry %d, anchor pins entry %d", res.Head.Seq, anchor.Seq)}
	}
	return res, nil
}
