package scan

import (
	"context"
	"errors"

	"github.com/drydock-project/drydock/internal/inventory"
)

// StoredInventory reads from c the inventory a Scanner made with opts
// (and c as its InventoryCache) stored for an image's manifest digest:
// its installed packages, without reading a layer. ok is false when none
// is stored (never scanned here, or by analyzers of another version).
func StoredInventory(ctx context.Context, c InventoryCache, manifestDigest string, opts ...Option) (snap *Snapshot, ok bool, err error) {
	if c == nil {
		return nil, false, errors.New("scan.StoredInventory: nil cache")
	}
	s := &Scanner{limits: DefaultLimits()}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, false, err
		}
	}
	if s.analyzers == nil {
		if s.analyzers, err = inventory.Analyzers(s.limits.AnalyzerOptions()...); err != nil {
			return nil, false, err
		}
	}
	return c.Get(ctx, s.cacheKey(manifestDigest))
}
