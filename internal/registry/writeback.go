package registry

import (
	"context"
	"time"
)

// Writeback writes the storage's pending changes to stable storage (the
// sync WithStorageSync set) every interval, when anything was written or
// deleted since the previous sync, until ctx ends. Without a storage
// sync, or with an interval of 0, it returns at once.
//
// Why the registry does the kernel's job: each push creates files and
// directories, and each deletion (a collection deletes tens of thousands)
// frees some; both leave dirty metadata blocks (inode tables, bitmaps,
// directories) that no fsync of a blob writes. Linux writes them back
// once the oldest is 30 s old (vm.dirty_expire_centisecs), and then all
// of them at once: hundreds of megabytes in half a second, during which
// every push's fsync waits (BenchmarkPushDuringGC, ext4: a few requests
// held 100-400 ms at each burst, idle or not, and several times as often
// during a collection). Synced every quarter of a second, the same blocks
// go in steps that hold no fsync long. A failed sync is logged, once per
// run of failures; nothing the registry decides depends on it.
func (r *Registry) Writeback(ctx context.Context, every time.Duration) {
	if r.sync == nil || every <= 0 {
		return
	}
	t := time.NewTimer(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.writes.changed.Swap(false) {
			if err := r.sync(); err != nil {
				r.writes.changed.Store(true) // still unwritten: try again
				if !failing {
					r.log.Warn("writing the storage back", "err", err)
					failing = true
				}
			} else {
				failing = false
				r.synced.Add(1)
			}
		}
		t.Reset(every)
	}
}

// Writebacks returns how many syncs Writeback has made.
func (r *Registry) Writebacks() int64 { return r.synced.Load() }
