package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/registry"
)

// runnerLock serializes changes of gc_state's runner.
const runnerLock = "gc runner"

// ErrBusy is returned by Lead while another live member runs a collection.
var ErrBusy = errors.New("another collection is running")

// Cycle is the collector's side of one collection: one at a time across
// every member (gc_state.runner), implementing registry.Coordinator.
type Cycle struct {
	m        *Member
	epoch    int64
	armed    bool
	finished bool
}

var _ registry.Coordinator = (*Cycle)(nil)

// Lead makes this member the collector, or returns ErrBusy while another
// live member is. The cycle must be ended with Finish.
func (m *Member) Lead(ctx context.Context) (*Cycle, error) {
	id := m.ID()
	err := m.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, runnerLock); err != nil {
			return err
		}
		st, err := readState(ctx, tx)
		if err != nil {
			return err
		}
		if st.runner != "" && st.runner != id {
			alive, err := m.live.alive(ctx, st.runner)
			if err != nil {
				return err
			}
			if alive {
				return fmt.Errorf("%w (member %s)", ErrBusy, st.runner)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE gc_state SET runner = ?, changed_at = ? WHERE id = 1`, id, now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Cycle{m: m}, nil
}

// Arm implements registry.Coordinator: the epoch moves on, the keys of
// earlier cycles are dropped, and Arm waits until every live member has
// acknowledged the new epoch.
func (c *Cycle) Arm(ctx context.Context) error {
	id := c.m.ID()
	err := c.m.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, runnerLock); err != nil {
			return err
		}
		st, err := readState(ctx, tx)
		if err != nil {
			return err
		}
		if st.runner != id {
			return fmt.Errorf("arming: member %s is not the collector (%q is)", id, st.runner)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM gc_keys`); err != nil {
			return err
		}
		c.epoch = st.epoch + 1
		_, err = tx.ExecContext(ctx, `UPDATE gc_state SET epoch = ?, phase = ?, changed_at = ? WHERE id = 1`, c.epoch, phaseActive, now())
		return err
	})
	if err != nil {
		return err
	}
	c.m.keys.reset()
	c.armed = true
	if err := c.m.sync(ctx); err != nil {
		return err
	}
	return c.waitAcks(ctx)
}

// waitAcks waits until every live member has acknowledged the epoch;
// members found dead are removed.
func (c *Cycle) waitAcks(ctx context.Context) error {
	wait := 10 * time.Millisecond
	for {
		pending, err := c.pendingMembers(ctx)
		if err != nil {
			return err
		}
		var alive []string
		for _, id := range pending {
			ok, err := c.m.live.alive(ctx, id)
			if err != nil {
				return err
			}
			if ok || id == c.m.ID() {
				alive = append(alive, id)
				continue
			}
			if _, err := c.m.db.ExecContext(ctx, `DELETE FROM gc_members WHERE id = ?`, id); err != nil {
				return fmt.Errorf("removing dead member %s: %w", id, err)
			}
			c.m.log.Info("collection barrier: removed a dead member", "member", id)
		}
		if len(alive) == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for members %v to acknowledge collection %d: %w", alive, c.epoch, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, c.m.poll)
		if slices.Contains(alive, c.m.ID()) {
			if err := c.m.sync(ctx); err != nil {
				return err
			}
		}
	}
}

func (c *Cycle) pendingMembers(ctx context.Context) ([]string, error) {
	rows, err := c.m.db.QueryContext(ctx, `SELECT id FROM gc_members WHERE acked_epoch < ? ORDER BY id`, c.epoch)
	if err != nil {
		return nil, fmt.Errorf("reading members: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Claim implements registry.Coordinator.
func (c *Cycle) Claim(ctx context.Context, keys []string) ([]string, error) {
	var out []string
	for i := 0; i < len(keys); i += keyBatch {
		batch := keys[i:min(i+keyBatch, len(keys))]
		got, tm, err := c.m.keys.claim(ctx, batch)
		c.m.traceKeys("claim", len(batch), tm, 0)
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// Release implements registry.Coordinator.
func (c *Cycle) Release(ctx context.Context, keys []string) error {
	for i := 0; i < len(keys); i += keyBatch {
		batch := keys[i:min(i+keyBatch, len(keys))]
		tm, err := c.m.keys.release(ctx, batch)
		c.m.traceKeys("release", len(batch), tm, 0)
		if err != nil {
			return err
		}
	}
	return nil
}

// Finish implements registry.Coordinator: the cycle ends and this member
// stops being the collector. It may be called more than once, and without
// Arm.
func (c *Cycle) Finish(ctx context.Context) error {
	if c.finished {
		return nil
	}
	id := c.m.ID()
	err := c.m.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, runnerLock); err != nil {
			return err
		}
		st, err := readState(ctx, tx)
		if err != nil || st.runner != id {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM gc_keys`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE gc_state SET phase = ?, runner = '', changed_at = ? WHERE id = 1`, phaseIdle, now())
		return err
	})
	if err != nil {
		return fmt.Errorf("ending collection: %w", err)
	}
	c.m.keys.reset()
	c.finished = true
	return c.m.sync(ctx)
}

// Epoch is the cycle's epoch (0 before Arm).
func (c *Cycle) Epoch() int64 { return c.epoch }
