package database

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestPageCachePerComponent: the gate's and the registry's SQLite files
// get the large page cache on every connection, the other components a
// small one.
func TestPageCachePerComponent(t *testing.T) {
	ctx := context.Background()
	o, err := NewOpener(Config{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		kib  int
	}{{"gate", 64 << 10}, {"registry", 64 << 10}, {"auth", 8 << 10}, {"jobs", 8 << 10}, {"workflow", 8 << 10}} {
		db, err := o.Open(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		// Two connections at once: each has the setting.
		c1, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*sql.Conn{c1, c2} {
			var n int
			if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != -tc.kib {
				t.Errorf("%s (%s): cache_size %d, want %d (KiB)", tc.name, filepath.Base(db.String()), n, -tc.kib)
			}
		}
		c1.Close()
		c2.Close()
		db.Close()
	}
}
