package storetest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Scale is a generated installation for benchmarks: Images digests
// spread over Repositories repositories, each with PerImage findings.
type Scale struct {
	Images, Repositories, PerImage int
}

// Generated data: CVEPool vulnerabilities in PackagePool packages; every
// image has WidespreadCVE (a log4j), the rest are drawn from the pool so
// that a typical CVE is in Images*PerImage/CVEPool images. A CVE's
// severity and whether it has a fix depend on its number (40% fixable).
const (
	CVEPool       = 4000
	PackagePool   = 400
	WidespreadCVE = "CVE-2021-44228"
)

// PoolCVE is the n-th CVE of the pool.
func PoolCVE(n int) string { return fmt.Sprintf("CVE-2024-%05d", n%CVEPool) }

var sevs = []vulndb.Severity{vulndb.SeverityCritical, vulndb.SeverityHigh, vulndb.SeverityMedium, vulndb.SeverityLow, vulndb.SeverityUnknown}

// MemorySQLite is a SQLite target on tmpfs (/dev/shm) when there is one:
// generating a benchmark's data then does not wait on the disk's fsync of
// each of its 20,000 transactions; the queries measured read the same
// page cache a warm disk gives.
func MemorySQLite(tb testing.TB) dbtest.Target {
	tb.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "drydock-bench-")
	if err != nil {
		tb.Logf("no tmpfs (%v): SQLite on the disk", err)
		return dbtest.SQLite(tb)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dbtest.Target{Config: database.Config{Driver: database.SQLite}, Data: dir}
}

// Populate stores sc's images through the store: the scans (with their
// findings, indexed) in batches of PutScans, and a verdict per digest as
// the gate records it. It logs how long it took.
func Populate(tb testing.TB, s store.Store, sc Scale) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	const batch = 250 // scans per transaction
	var scans []store.Scan
	flush := func() {
		if err := s.PutScans(ctx, scans...); err != nil {
			tb.Fatal(err)
		}
		scans = scans[:0]
	}
	for i := range sc.Images {
		d := Digest(1_000_000 + i)
		repo := fmt.Sprintf("quarantine/app-%04d", i%sc.Repositories)
		fs := make([]scan.Finding, 0, sc.PerImage)
		fs = append(fs, Finding(WidespreadCVE, "liblog4j2-java", "apache-log4j2", vulndb.SeverityCritical, "2.17.1"))
		for j := 1; j < sc.PerImage; j++ {
			n := (i*31 + j*97) % CVEPool
			fixed := ""
			if n%5 < 2 {
				fixed = fmt.Sprintf("%d.1", n)
			}
			pkg := fmt.Sprintf("pkg%03d", n%PackagePool)
			fs = append(fs, Finding(PoolCVE(n), pkg, pkg+"-src", sevs[n%len(sevs)], fixed))
		}
		if scans = append(scans, ScanOf(d, repo, map[string][]scan.Finding{"": fs})); len(scans) == batch {
			flush()
		}
		v := gate.Verdict{State: gate.StateFail, At: t0, Reasons: []gate.Reason{{Rule: gate.RuleMaxSeverity, Message: "1 finding above HIGH"}}}
		switch i % 10 {
		case 0, 1, 2:
			v = gate.Verdict{State: gate.StatePass, At: t0}
		case 3:
			v = gate.Verdict{State: gate.StateExempt, At: t0, Applied: []string{"exception/1"}}
		}
		im := store.Image{Repository: repo, Verdict: v, UpdatedAt: t0.Add(time.Duration(i) * time.Second)}
		if _, err := s.UpdateImage(ctx, d, func(*store.Image) (*store.Image, error) { return &im, nil }); err != nil {
			tb.Fatal(err)
		}
	}
	flush()
	tb.Logf("populated %d images, %d findings, in %s", sc.Images, sc.Images*sc.PerImage, time.Since(start).Round(time.Millisecond))
}
