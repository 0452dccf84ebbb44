package vulndb_test

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources"
	"github.com/drydock-project/drydock/internal/vulndb/sources/osv"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

// BenchmarkRescan10k rescans 10,000 simulated inventories (100 Debian 11
// source packages each, drawn from the packages the real OSV Debian data
// names) against a database just built by Update from that data (with the
// real OSV importer), with
// GOMAXPROCS workers, one AdvisoriesFor query per inventory. One
// iteration is the whole rescan; peak RSS is reported as peak-RSS-MB.
//
//	go test -run '^$' -bench Rescan10k -benchtime 1x ./internal/vulndb/
func BenchmarkRescan10k(b *testing.B) {
	path, inventories := rescanSetup(b)
	ctx := context.Background()
	b.ResetTimer()
	var findings int64
	for b.Loop() {
		db, err := vulndb.Open(path) // freshly after the update: cold caches
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		findings = 0
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(runtime.GOMAXPROCS(0))
		for _, inv := range inventories {
			g.Go(func() error {
				res, err := db.AdvisoriesFor(gctx, vulndb.Debian, "11", inv)
				if err != nil {
					return err
				}
				n := 0
				for _, advs := range res {
					n += len(advs)
				}
				mu.Lock()
				findings += int64(n)
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
	b.ReportMetric(float64(findings)/10000, "advisories/inventory")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
}

// peakRSS is VmHWM from /proc/self/status (bytes), 0 where unavailable.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

// BenchmarkAdvisoriesForCold is one 100-package inventory on a freshly
// opened database (no cache): the cost of an inventory whose packages no
// earlier inventory had.
//
//	go test -run '^$' -bench AdvisoriesForCold ./internal/vulndb/
func BenchmarkAdvisoriesForCold(b *testing.B) {
	path, inventories := rescanSetup(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		db, err := vulndb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.AdvisoriesFor(ctx, vulndb.Debian, "11", inventories[i%len(inventories)]); err != nil {
			b.Fatal(err)
		}
		db.Close()
		i++
	}
}

// rescanSetup builds the database from the real OSV Debian data and draws
// 10,000 inventories of 100 Debian 11 source packages from it.
func rescanSetup(b *testing.B) (string, [][]string) {
	dir := vulndatatest.Dir(b)
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "drydock-vuln.db")
	src, err := osv.New()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := vulndb.Update(ctx, path, []vulndb.Source{src}, vulndb.WithSourceURLs(osv.Name, filepath.Join(dir, "osv/Debian/all.zip"))); err != nil {
		b.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	names, err := db.Packages(ctx, vulndb.Debian, "11")
	db.Close()
	if err != nil || len(names) < 100 {
		b.Fatalf("%d packages, %v", len(names), err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	inventories := make([][]string, 10000)
	for i := range inventories {
		inv := make([]string, 100)
		for j := range inv {
			inv[j] = names[rng.IntN(len(names))]
		}
		inventories[i] = inv
	}
	return path, inventories
}

// BenchmarkUpdateLocalFeeds is "drydock db update" with every default
// source reading the real feed files from disk (no HTTP).
//
//	go test -run '^$' -bench UpdateLocalFeeds -benchtime 1x ./internal/vulndb/
func BenchmarkUpdateLocalFeeds(b *testing.B) {
	dir := vulndatatest.Dir(b)
	path := filepath.Join(b.TempDir(), "drydock-vuln.db")
	opts := feedOverrides(dir)
	var records int
	for b.Loop() {
		rep, err := vulndb.Update(context.Background(), path, sources.Defaults(), opts...)
		if err != nil {
			b.Fatal(err)
		}
		records = 0
		for _, s := range rep.Sources {
			records += s.Advisories + s.Releases + s.PackageSupport
		}
	}
	b.ReportMetric(float64(records), "records")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
}
