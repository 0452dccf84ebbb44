package audit

import (
	"context"
	"errors"
	"testing"
	"time"
)

// follow runs l.Follow in a goroutine, sending entries to the returned
// channel; the error channel gets Follow's result.
func follow(ctx context.Context, l *Log, from int64) (<-chan *Entry, <-chan error) {
	entries := make(chan *Entry)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, from, func(e *Entry) error {
			select {
			case entries <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return entries, done
}

func expectSeqs(t *testing.T, entries <-chan *Entry, seqs ...int64) {
	t.Helper()
	for _, want := range seqs {
		select {
		case e := <-entries:
			if e.Seq != want {
				t.Fatalf("followed entry %d, want %d", e.Seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for entry %d", want)
		}
	}
}

func TestFollow(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the following Log, the writing Log, and a
		// function to call after each write.
		setup func(t *testing.T, m *Memory) (follower, writer *Log, afterWrite func())
	}{
		{"woken by Record in the same process", func(t *testing.T, m *Memory) (*Log, *Log, func()) {
			l := newTestLog(t, m, WithPollInterval(time.Hour))
			return l, l, func() {}
		}},
		{"polls for another process's entries", func(t *testing.T, m *Memory) (*Log, *Log, func()) {
			return newTestLog(t, m, WithPollInterval(5*time.Millisecond)), newTestLog(t, m), func() {}
		}},
		{"woken by the notify source", func(t *testing.T, m *Memory) (*Log, *Log, func()) {
			notify := make(chan struct{})
			f := newTestLog(t, m, WithPollInterval(time.Hour), WithNotify(func(ctx context.Context) <-chan struct{} { return notify }))
			return f, newTestLog(t, m), func() { notify <- struct{}{} }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory()
			follower, writer, afterWrite := tt.setup(t, m)
			recordN(t, writer, 2)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			entries, done := follow(ctx, follower, 2)
			expectSeqs(t, entries, 2)
			for seq := int64(3); seq <= 5; seq++ {
				recordN(t, writer, 1)
				afterWrite()
				expectSeqs(t, entries, seq)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Follow = %v, want context.Canceled", err)
			}
		})
	}
}

func TestFollowStopsOnCallbackError(t *testing.T) {
	l := newTestLog(t, NewMemory(), WithPollInterval(time.Hour))
	recordN(t, l, 3)
	stop := errors.New("stop")
	var seen []int64
	err := l.Follow(context.Background(), 0, func(e *Entry) error {
		if seen = append(seen, e.Seq); e.Seq == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(seen) != 2 {
		t.Fatalf("Follow = %v after %v, want stop after [1 2]", err, seen)
	}
}

func TestFollowNotifyClosed(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	l := newTestLog(t, NewMemory(), WithPollInterval(time.Hour),
		WithNotify(func(context.Context) <-chan struct{} { return closed }))
	ctx, cancel := context.WithCancel(context.Background())
	entries, done := follow(ctx, l, 1)
	recordN(t, l, 1)
	expectSeqs(t, entries, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow = %v, want context.Canceled", err)
	}
}
