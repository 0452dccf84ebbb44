package gatekeeper

import (
	"context"

	"github.com/drydock-project/drydock/internal/scan"
)

// Inventory returns the inventory the gate's scans stored for an image's
// manifest digest (its installed packages), reading no layer; ok is false
// when none is stored, or the gate keeps no inventory cache.
func (k *Keeper) Inventory(ctx context.Context, manifestDigest string) (*scan.Snapshot, bool, error) {
	if k.cache == nil {
		return nil, false, nil
	}
	return scan.StoredInventory(ctx, k.cache, manifestDigest, k.scanOpts...)
}
