package audit

import (
	"context"
	"fmt"
	"sync"
)

// Memory is an in-memory Backend for tests of other packages.
type Memory struct {
	mu      sync.Mutex
	entries []*Entry
}

// NewMemory returns an empty in-memory Backend.
func NewMemory() *Memory { return &Memory{} }

// Append implements Backend.
func (m *Memory) Append(ctx context.Context, next func(prev *Entry) (*Entry, error)) (*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var prev *Entry
	if n := len(m.entries); n > 0 {
		prev = cloneEntry(m.entries[n-1])
	}
	e, err := next(prev)
	if err != nil {
		return nil, err
	}
	if err := checkNext(prev, e); err != nil {
		return nil, err
	}
	m.entries = append(m.entries, cloneEntry(e))
	return cloneEntry(e), nil
}

// Scan implements Backend.
func (m *Memory) Scan(ctx context.Context, fromSeq int64, fn func(*Entry) error) error {
	m.mu.Lock()
	var todo []*Entry
	for _, e := range m.entries {
		if e.Seq >= fromSeq {
			todo = append(todo, cloneEntry(e))
		}
	}
	m.mu.Unlock()
	for _, e := range todo {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Last implements Backend.
func (m *Memory) Last(ctx context.Context) (*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) == 0 {
		return nil, nil
	}
	return cloneEntry(m.entries[len(m.entries)-1]), nil
}

// Newest implements Backend.
func (m *Memory) Newest(ctx context.Context, before int64, action Action, limit int) ([]*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Entry
	for i := len(m.entries) - 1; i >= 0 && len(out) < limit; i-- {
		e := m.entries[i]
		if (before <= 0 || e.Seq < before) && (action == "" || e.Action == action) {
			out = append(out, cloneEntry(e))
		}
	}
	return out, nil
}

// checkNext enforces the Append contract: e is the entry after prev.
func checkNext(prev, e *Entry) error {
	if e == nil {
		return fmt.Errorf("appending audit entry: no entry to append")
	}
	want := int64(1)
	if prev != nil {
		want = prev.Seq + 1
	}
	if e.Seq != want {
		return fmt.Errorf("appending audit entry %d: next seq is %d", e.Seq, want)
	}
	return nil
}

func cloneEntry(e *Entry) *Entry {
	c := *e
	if e.Detail != nil {
		c.Detail = append([]byte(nil), e.Detail...)
	}
	return &c
}
