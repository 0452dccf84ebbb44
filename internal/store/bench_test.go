package store_test

import (
	"context"
	"testing"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
)

// BenchmarkFindingsIndex measures the index's queries at scale (SCALE
// below: 10,000 images, 1,000,000 findings) on SQLite and PostgreSQL.
// Figures, not assertions: make bench-ui.
func BenchmarkFindingsIndex(b *testing.B) {
	ctx := context.Background()
	sc := storetest.Scale{Images: 10000, Repositories: 500, PerImage: 100}
	if testing.Short() {
		sc.Images = 1000
	}
	for _, tg := range []struct {
		name string
		new  func(testing.TB) dbtest.Target
	}{{"sqlite", storetest.MemorySQLite}, {"postgres", dbtest.Postgres}} {
		b.Run(tg.name, func(b *testing.B) {
			s, err := store.Open(ctx, tg.new(b).Opener(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			storetest.Populate(b, s, sc)
			all := store.RepositoryScope{All: true}
			b.Run("totals", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.FindingTotals(ctx, all); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("where-widespread-cve", func(b *testing.B) {
				for b.Loop() {
					if rows, _, err := s.FindingsWhere(ctx, store.FindingQuery{CVE: storetest.WidespreadCVE, Scope: all, Limit: store.MaxFindingRows}); err != nil || len(rows) != sc.Images {
						b.Fatal(len(rows), err)
					}
				}
			})
			b.Run("where-typical-cve", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := s.FindingsWhere(ctx, store.FindingQuery{CVE: storetest.PoolCVE(1234), Scope: all, Limit: store.MaxFindingRows}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
