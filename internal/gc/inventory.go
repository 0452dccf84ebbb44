package gc

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/kube"
)

// Inventory is what collections read of the Kubernetes inventory
// (kube.InventoryStore).
type Inventory interface {
	Digests(ctx context.Context) ([]kube.DigestUse, error)
}

// InventoryDigests is Guards.RunningDigests over inv: the manifest
// digests its pods run (records whose digest does not parse are
// skipped: they name nothing stored).
func InventoryDigests(inv Inventory) func(ctx context.Context) ([]digest.Digest, error) {
	return func(ctx context.Context) ([]digest.Digest, error) {
		uses, err := inv.Digests(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]digest.Digest, 0, len(uses))
		for _, u := range uses {
			if d, err := digest.Parse(u.Digest); err == nil {
				out = append(out, d)
			}
		}
		return out, nil
	}
}
