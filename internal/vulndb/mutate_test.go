package vulndb_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// TestOpenMutatedFiles flips random bytes of a valid database and checks
// that Open and the queries return errors or results, never panic. It
// complements FuzzOpen, whose coverage instrumentation makes the
// transpiled SQLite very slow under -fuzz.
func TestOpenMutatedFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	var recs []any
	for _, p := range []string{"bash", "curl", "openssl"} {
		a := adv("CVE-2024-1", "", vulndb.StatusFixed, "1")
		a.Package, a.Description, a.References = p, "description of "+p, []string{"https://example.com/" + p}
		recs = append(recs, a)
	}
	build(t, good, records(t, "osv", recs...))
	data := mustRead(t, good)
	rng := rand.New(rand.NewPCG(7, 7))
	ctx := context.Background()
	n := 150
	if testing.Short() {
		n = 30
	}
	for i := range n {
		b := append([]byte(nil), data...)
		for range 1 + rng.IntN(8) {
			b[100+rng.IntN(len(b)-100)] = byte(rng.Uint32())
		}
		if i%10 == 0 { // sometimes the header too
			b[rng.IntN(100)] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, "m.db")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := vulndb.Open(p)
		if err != nil {
			continue
		}
		_, _ = db.AdvisoriesFor(ctx, "debian", "12", []string{"bash", "curl", "openssl"})
		_, _ = db.Releases(ctx, "debian")
		_, _ = db.PackageSupport(ctx, "debian", "12")
		db.Close()
	}
}
