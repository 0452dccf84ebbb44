package scan_test

import (
	"archive/tar"
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/sandbox"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

// dataDate is the date of the feed data.
var dataDate = realdb.DataDate

// realScans holds the reports of the real test images scanned at the data's
// date: several tests read the same reports, and a cold scan costs a second.
var realScans sync.Map // spec name -> *scan.Report

// realScan scans a real test image at the data's date, once per test
// binary, and returns the image and a copy of the report for the caller.
func realScan(t *testing.T, db *vulndb.DB, spec testimage.Spec) (*testimage.Image, v1.Image, *scan.Report) {
	t.Helper()
	ti := testimage.Require(t, spec)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := realScans.Load(spec.Name); ok {
		rep := *r.(*scan.Report)
		return ti, img, &rep
	}
	rep, err := scan.Scan(t.Context(), img, db, scan.WithClock(func() time.Time { return dataDate }))
	if err != nil {
		t.Fatal(err)
	}
	realScans.Store(spec.Name, rep)
	cp := *rep
	return ti, img, &cp
}

// TestMain removes the shared real-data database.
func TestMain(m *testing.M) {
	sandbox.Init() // TestRealFixableAfterPatch runs the patch sandbox
	code := m.Run()
	realdb.Remove()
	os.Exit(code)
}

// openRealDB opens the database built (once per test binary) from the
// real feed files; it skips when vulndata is absent.
func openRealDB(t testing.TB) *vulndb.DB {
	t.Helper()
	db, err := vulndb.Open(realdb.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// flatten applies the image's layers with ggcr's mutate.Extract (not
// internal/rootfs) into a MapFS of the files the inventory and osinfo
// read: an independent route to the installed packages.
func flatten(t testing.TB, ti *testimage.Image) fstest.MapFS {
	t.Helper()
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	fsys := fstest.MapFS{}
	tr := tar.NewReader(rc)
	links := map[string]string{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if !strings.HasPrefix(name, "var/lib/dpkg/") && !strings.HasPrefix(name, "etc/") && !strings.HasPrefix(name, "usr/lib/os-release") {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			fsys[name] = &fstest.MapFile{Data: data, Mode: 0o644}
		case tar.TypeSymlink:
			links[name] = hdr.Linkname
		case tar.TypeDir:
			fsys[name] = &fstest.MapFile{Mode: 0o755 | os.ModeDir}
		}
	}
	if target, ok := links["etc/os-release"]; ok { // ../usr/lib/os-release
		if f := fsys[path.Clean(path.Join("etc", target))]; f != nil {
			fsys["etc/os-release"] = f
		}
	}
	return fsys
}

// dpkgLess orders versions with the host's dpkg --compare-versions: an
// implementation independent of internal/version.
type dpkgLess struct{ memo map[[2]string]bool }

func (d *dpkgLess) less(t testing.TB, a, b string) bool {
	k := [2]string{a, b}
	if v, ok := d.memo[k]; ok {
		return v
	}
	err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		d.memo[k] = true
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		d.memo[k] = false
	default:
		t.Fatalf("dpkg --compare-versions %s lt %s: %v", a, b, err)
	}
	return d.memo[k]
}

var unfixedStatuses = []vulndb.Status{vulndb.StatusAffected, vulndb.StatusWillNotFix, vulndb.StatusNoDSA,
	vulndb.StatusPostponed, vulndb.StatusEndOfLife, vulndb.StatusUndetermined}

type expKey struct {
	id, bin, fixed string
	status         vulndb.Status
}

// TestRealImages is the acceptance test: on the real feed data,
// every finding is justified by the feed and every applicable record is
// reported, the expectation computed independently of the scanner.
func TestRealImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real-data database (-short)")
	}
	testenv.RequireTool(t, "dpkg", "dpkg") // the independent version oracle
	db := openRealDB(t)
	cmp := &dpkgLess{memo: map[[2]string]bool{}}
	for _, spec := range []testimage.Spec{testimage.BullseyeNginxCurl, testimage.BookwormNginx, testimage.Trixie, testimage.DistrolessBookworm} {
		t.Run(spec.Name, func(t *testing.T) {
			ti, img, rep := realScan(t, db, spec)
			if rep.Status != scan.StatusOK {
				t.Fatalf("status %s (%s) at the data's date", rep.Status, rep.StatusReason)
			}

			// The expectation: packages via mutate.Extract + inventory,
			// records from the DB, ordering from dpkg.
			fsys := flatten(t, ti)
			o, err := osinfo.Detect(fsys)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := inventory.Inventory(t.Context(), fsys)
			if err != nil {
				t.Fatal(err)
			}
			want := map[expKey]bool{}
			records, applicable := 0, 0
			for _, p := range inv.Packages {
				src, srcVer := p.SourceName, p.SourceVersion
				if src == "" {
					src = p.Name
				}
				if srcVer == "" {
					srcVer = p.Version
				}
				advs, err := db.Advisories(t.Context(), o.ID, o.ReleaseKey(), src)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range advs {
					records++
					switch {
					case a.Status == vulndb.StatusFixed && a.FixedVersion != "" && cmp.less(t, srcVer, a.FixedVersion):
						want[expKey{a.ID, p.Name, a.FixedVersion, a.Status}] = true
					case slices.Contains(unfixedStatuses, a.Status):
						want[expKey{a.ID, p.Name, "", a.Status}] = true
					default:
						continue
					}
					applicable++
				}
			}
			got := map[expKey]bool{}
			fixable := 0
			for _, f := range rep.Findings {
				k := expKey{f.VulnerabilityID, f.PkgName, f.FixedVersion, f.Status}
				if got[k] {
					t.Errorf("duplicate finding %+v", k)
				}
				got[k] = true
				justified := want[k]
				if f.Fixable() {
					fixable++
					justified = justified && cmp.less(t, f.SrcVersion, f.FixedVersion)
				}
				if !justified {
					t.Errorf("finding not justified by the feed: %+v", f)
				}
			}
			missing := 0
			for k := range want {
				if !got[k] {
					missing++
					if missing <= 10 {
						t.Errorf("record not reported: %+v", k)
					}
				}
			}
			t.Logf("%s (%s %s): %d packages, %d source packages, %d records for them, %d findings (%d fixable, %d unfixed), %d expected, %d justified, %d missing, %d support notes",
				spec.Name, rep.OS.ID, rep.OS.Version, rep.Packages, rep.SourcePackages, records, len(rep.Findings), fixable, len(rep.Findings)-fixable,
				len(want), len(rep.Findings)-countUnjustified(rep, want), missing, len(rep.PackageSupport))
			if inv.Packages != nil && len(inv.Packages) != rep.Packages {
				t.Errorf("scanner saw %d packages, the independent inventory %d", rep.Packages, len(inv.Packages))
			}
			if spec.Name == testimage.BullseyeNginxCurl.Name && fixable < 20 {
				t.Errorf("bullseye: only %d fixable findings; the data should give many", fixable)
			}

			// --ignore-unfixed keeps exactly the fixable ones.
			ru, err := scan.Scan(t.Context(), img, db, scan.WithClock(func() time.Time { return dataDate }), scan.WithIgnoreUnfixed(true))
			if err != nil {
				t.Fatal(err)
			}
			if len(ru.Findings) != fixable {
				t.Errorf("--ignore-unfixed: %d findings, want %d", len(ru.Findings), fixable)
			}
		})
	}
}

func countUnjustified(rep *scan.Report, want map[expKey]bool) int {
	n := 0
	for _, f := range rep.Findings {
		if !want[expKey{f.VulnerabilityID, f.PkgName, f.FixedVersion, f.Status}] {
			n++
		}
	}
	return n
}

// TestRealBullseyeEndOfLife: at the real date of this work (2026-11-24),
// bullseye's LTS has ended: the report says so first and is never clean.
func TestRealBullseyeEndOfLife(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real-data database (-short)")
	}
	db := openRealDB(t)
	ti := testimage.Require(t, testimage.BullseyeNginxCurl)
	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	rep, err := scan.Scan(t.Context(), img, db, scan.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != scan.StatusEndOfLife || rep.Clean() || !rep.OS.EOSL || !strings.Contains(rep.StatusReason, "2026-08-31") {
		t.Fatalf("status %s (%s)", rep.Status, rep.StatusReason)
	}
	if !rep.DB.Stale {
		t.Error("a database built 2025-02-12 is not stale on 2026-11-24")
	}
	var sb strings.Builder
	if err := scan.WriteTable(&sb, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sb.String(), "END OF LIFE: ") {
		t.Errorf("table starts with %q", strings.SplitN(sb.String(), "\n", 2)[0])
	}
	t.Log(strings.SplitN(sb.String(), "\n", 2)[0])
	tr := scan.TrivyFromReport(rep)
	if tr.Metadata.OS == nil || !tr.Metadata.OS.EOSL {
		t.Errorf("trivy-json: EOSL not set")
	}
}

// BenchmarkColdScanBookwormNginx scans bookworm+nginx from its OCI layout:
// rootfs, OS detection, inventory and matching, nothing cached but the DB's
// open file.
func BenchmarkColdScanBookwormNginx(b *testing.B) {
	db := openRealDB(b)
	ti := testimage.Require(b, testimage.BookwormNginx)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		img, err := ti.Open()
		if err != nil {
			b.Fatal(err)
		}
		d, err := vulndb.Open(db.Path()) // a fresh DB: no merged-results cache
		if err != nil {
			b.Fatal(err)
		}
		rep, err := scan.Scan(context.Background(), img, d, scan.WithClock(func() time.Time { return dataDate }))
		d.Close()
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.ReportMetric(float64(len(rep.Findings)), "findings")
		}
	}
}

// osvRecord is the part of an OSV record the feed cross-check reads.
type osvRecord struct {
	ID       string `json:"id"`
	Affected []struct {
		Package struct{ Ecosystem, Name string } `json:"package"`
		Ranges  []struct {
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
}

// TestFeedCrossCheck reads the OSV feed file itself (not the DB): every
// CVE record with an affected range for an installed source package of the
// image's release is reported, as fixable when dpkg orders the installed
// version before the record's fixed version, and no fixable finding lacks
// such a feed record or a tracker DSA/DLA entry.
func TestFeedCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the whole OSV feed (-short)")
	}
	testenv.RequireTool(t, "dpkg", "dpkg")
	db := openRealDB(t)
	z, err := zip.OpenReader(filepath.Join(vulndatatest.Dir(t), "osv", "Debian", "all.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var recs []osvRecord
	for _, f := range z.File {
		if !strings.HasPrefix(f.Name, "CVE-") {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var rec osvRecord
		err = json.NewDecoder(r).Decode(&rec)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		recs = append(recs, rec)
	}
	cmp := &dpkgLess{memo: map[[2]string]bool{}}
	for _, spec := range []testimage.Spec{testimage.BullseyeNginxCurl, testimage.BookwormNginx, testimage.Trixie, testimage.DistrolessBookworm} {
		t.Run(spec.Name, func(t *testing.T) {
			ti, _, rep := realScan(t, db, spec)
			eco := "Debian:" + rep.OS.Release
			srcVer := map[string]string{}
			found := map[[2]string]scan.Finding{} // (id, source) -> a finding
			for _, f := range rep.Findings {
				srcVer[f.SrcName] = f.SrcVersion
				found[[2]string{f.VulnerabilityID, f.SrcName}] = f
			}
			fsys := flatten(t, ti)
			inv, err := inventory.Inventory(t.Context(), fsys)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range inv.Packages {
				src, v := p.SourceName, p.SourceVersion
				if src == "" {
					src = p.Name
				}
				if v == "" {
					v = p.Version
				}
				srcVer[src] = v
			}
			feedFixable, feedUnfixed, missing := 0, 0, 0
			feedFix := map[[2]string]bool{}
			for _, rec := range recs {
				for _, a := range rec.Affected {
					v, ok := srcVer[a.Package.Name]
					if a.Package.Ecosystem != eco || !ok {
						continue
					}
					fixed := ""
					for _, rg := range a.Ranges {
						for _, ev := range rg.Events {
							if fv, ok := ev["fixed"]; ok && fixed == "" {
								fixed = fv
							}
						}
					}
					k := [2]string{rec.ID, a.Package.Name}
					f, reported := found[k]
					switch {
					case fixed != "" && cmp.less(t, v, fixed):
						feedFixable++
						feedFix[k] = true
						if !reported || !f.Fixable() {
							missing++
							t.Errorf("feed record %s (%s fixed in %s, installed %s) reported as %+v", rec.ID, a.Package.Name, fixed, v, f)
						}
					case fixed == "":
						feedUnfixed++
						if !reported {
							missing++
							t.Errorf("feed record %s (%s, no fix) not reported", rec.ID, a.Package.Name)
						}
					}
				}
			}
			unbacked := 0
			for k, f := range found {
				if f.Fixable() && strings.HasPrefix(k[0], "CVE-") && !feedFix[k] && f.DataSource == "osv" {
					unbacked++
					t.Errorf("fixable finding without a fixing OSV record: %+v", f)
				}
			}
			t.Logf("%s: OSV feed CVE records for installed sources: %d fixable, %d unfixed; %d missing from the report, %d fixable OSV-sourced findings without a feed record",
				spec.Name, feedFixable, feedUnfixed, missing, unbacked)
		})
	}
}

// BenchmarkWarmRescanBookwormNginx rescans an image whose inventory is
// stored (the situation after a DB update): no layer is read, only the
// stored packages are matched against a freshly opened DB.
func BenchmarkWarmRescanBookwormNginx(b *testing.B) {
	db := openRealDB(b)
	ti := testimage.Require(b, testimage.BookwormNginx)
	img, err := ti.Open()
	if err != nil {
		b.Fatal(err)
	}
	cache, err := scan.NewFileCache(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	clock := scan.WithClock(func() time.Time { return dataDate })
	if _, err := scan.Scan(context.Background(), img, db, clock, scan.WithInventoryCache(cache)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := vulndb.Open(db.Path()) // a fresh DB: no merged-results cache
		if err != nil {
			b.Fatal(err)
		}
		rep, err := scan.Scan(context.Background(), img, d, clock, scan.WithInventoryCache(cache))
		d.Close()
		if err != nil {
			b.Fatal(err)
		}
		if !rep.InventoryCached {
			b.Fatal("rescan did not use the stored inventory")
		}
	}
}

// memCache is an in-memory InventoryCache for benchmarks.
type memCache struct {
	mu sync.Mutex
	m  map[string]*scan.Snapshot
}

func (c *memCache) Get(_ context.Context, k string) (*scan.Snapshot, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[k]
	return s, ok, nil
}

func (c *memCache) Put(_ context.Context, k string, s *scan.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = s
	return nil
}

// digestOverride is an image that claims another manifest digest and whose
// layers cannot be read: a stored inventory is the only way to scan it.
type digestOverride struct {
	v1.Image
	d v1.Hash
}

func (o digestOverride) Digest() (v1.Hash, error) { return o.d, nil }
func (o digestOverride) Layers() ([]v1.Layer, error) {
	return nil, errors.New("benchmark image: layers must not be read")
}

// BenchmarkRescan10kStoredInventories is the rescan goal: 10,000
// images whose inventories are stored (here all bookworm-nginx's, under
// 10,000 digests) matched again after a DB update, two workers, one DB
// handle. Reports seconds for all 10,000 and the process's peak RSS.
func BenchmarkRescan10kStoredInventories(b *testing.B) {
	db := openRealDB(b)
	ti := testimage.Require(b, testimage.BookwormNginx)
	img, err := ti.Open()
	if err != nil {
		b.Fatal(err)
	}
	cache := &memCache{m: map[string]*scan.Snapshot{}}
	clock := scan.WithClock(func() time.Time { return dataDate })
	base, err := scan.New(db, clock, scan.WithInventoryCache(cache))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := base.Image(context.Background(), img); err != nil {
		b.Fatal(err)
	}
	var snap *scan.Snapshot
	for _, s := range cache.m {
		snap = s
	}
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("DRYDOCK_BENCH_IMAGES")); err == nil && v > 0 {
		n = v // for profiling a smaller run; the figure reported is scaled to 10,000
	}
	images := make([]v1.Image, n)
	for i := range n {
		h := sha256.Sum256([]byte(strconv.Itoa(i)))
		d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h[:])}
		images[i] = digestOverride{Image: img, d: d}
		for k := range cache.m {
			if strings.HasPrefix(k, "sha256:") {
				_, rest, _ := strings.Cut(k, "/")
				cache.m[d.String()+"/"+rest] = snap
				break
			}
		}
	}
	b.ResetTimer()
	for range b.N {
		fresh, err := vulndb.Open(db.Path()) // as after a DB update
		if err != nil {
			b.Fatal(err)
		}
		s, err := scan.New(fresh, clock, scan.WithInventoryCache(cache))
		if err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		errc := make(chan error, 2)
		for range 2 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					rep, err := s.Image(context.Background(), images[i])
					if err != nil || !rep.InventoryCached {
						errc <- fmt.Errorf("image %d: cached=%v err=%v", i, rep != nil && rep.InventoryCached, err)
						return
					}
				}
			})
		}
		wg.Wait()
		fresh.Close()
		select {
		case err := <-errc:
			b.Fatal(err)
		default:
		}
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*10000/float64(n), "s/10k-images")
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				b.ReportMetric(kb/1024, "peak-RSS-MiB")
			}
		}
	}
}
