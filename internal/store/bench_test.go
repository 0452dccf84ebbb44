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
			// What GET /api/v1/cves/{id} asks: the summary, then one page
			// of 100 images (the last page: the deepest offset).
			for _, c := range []struct{ name, cve string }{{"widespread-cve", storetest.WidespreadCVE}, {"typical-cve", storetest.PoolCVE(1234)}} {
				q := store.FindingQuery{CVE: c.cve, Scope: all}
				b.Run("summary-"+c.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := s.FindingsSummary(ctx, q); err != nil {
							b.Fatal(err)
						}
					}
				})
				sum, err := s.FindingsSummary(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				b.Run("last-page-"+c.name, func(b *testing.B) {
					pq := q
					pq.Limit, pq.ImageLimit, pq.ImageOffset = store.MaxFindingRows, 100, max(0, (sum.Digests-1)/100*100)
					for b.Loop() {
						if rows, _, err := s.FindingsWhere(ctx, pq); err != nil || len(rows) == 0 {
							b.Fatal(len(rows), err)
						}
					}
				})
			}
			b.Run("history-90-days", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.FindingHistory(ctx, 90); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
