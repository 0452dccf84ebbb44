package kube

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

func dg(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// report is a scan report with one finding per "ID@package" given.
func report(findings ...[2]string) *scan.Report {
	r := &scan.Report{Status: "ok"}
	for _, f := range findings {
		r.Findings = append(r.Findings, scan.Finding{VulnerabilityID: f[0], PkgName: f[1], InstalledVersion: "1.0", FixedVersion: "1.1",
			Severity: vulndb.Severity("HIGH"), Status: vulndb.Status("fixed")})
	}
	return r
}

type queryFixture struct {
	inv  *SQLInventory
	gate *store.SQL
	q    *Queries
	at   time.Time
}

func newQueryFixture(t testing.TB) *queryFixture { return newQueryFixtureOn(t, dbtest.SQLite(t)) }

// newQueryFixtureOn builds the fixture on a database target (SQLite or
// PostgreSQL).
func newQueryFixtureOn(t testing.TB, tg dbtest.Target) *queryFixture {
	dbs := tg.Opener(t)
	inv, err := OpenInventory(t.Context(), dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	g, err := store.Open(t.Context(), dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return &queryFixture{inv: inv, gate: g, q: NewQueries(inv, g, g), at: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
}

// verdict stores state as digest's verdict.
func (f *queryFixture) verdict(ctx context.Context, digest string, state gate.State) error {
	_, err := f.gate.UpdateImage(ctx, digest, func(prev *store.Image) (*store.Image, error) {
		return &store.Image{Digest: digest, Repository: "quarantine/app", Verdict: gate.Verdict{State: state, At: f.at}, UpdatedAt: f.at}, nil
	})
	return err
}

func (f *queryFixture) putScan(t testing.TB, digest string, reports ...store.PlatformReport) {
	t.Helper()
	f.at = f.at.Add(time.Second)
	if err := f.gate.PutScan(t.Context(), store.Scan{Digest: digest, Repository: "quarantine/app", ScannedAt: f.at, Reports: reports}); err != nil {
		t.Fatal(err)
	}
}

func (f *queryFixture) putPod(t testing.TB, ns, name string, w Workload, digests ...string) {
	t.Helper()
	p := PodRecord{Cluster: "c1", Namespace: ns, Name: name, Workload: w}
	for i, d := range digests {
		p.Containers = append(p.Containers, RunningContainer{Kind: KindContainer, Name: fmt.Sprintf("c%d", i),
			Image: "d.io/live/app@" + d, Host: "d.io", Repository: "live/app", Digest: d})
		if d == "" {
			p.Containers[i].Image = "d.io/live/app:floating"
		}
	}
	if err := f.inv.PutPod(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func TestAffected(t *testing.T) {
	f := newQueryFixture(t)
	ctx := t.Context()
	f.putScan(t, dg(1), store.PlatformReport{Digest: dg(1), Report: report([2]string{"CVE-2024-1", "libc6"}, [2]string{"CVE-2024-2", "zlib1g"})})
	f.putScan(t, dg(2), store.PlatformReport{Platform: "linux/amd64", Digest: dg(21), Report: report([2]string{"CVE-2024-2", "zlib1g"})},
		store.PlatformReport{Platform: "linux/arm64", Digest: dg(22), Report: report([2]string{"cve-2024-1", "libc6"})})
	f.putScan(t, dg(3), store.PlatformReport{Digest: dg(3), Report: report([2]string{"CVE-2024-2", "zlib1g"})})
	if err := f.gate.PutScan(ctx, store.Scan{Digest: dg(5), Error: "scan failed"}); err != nil {
		t.Fatal(err)
	}
	web := Workload{"Deployment", "web"}
	f.putPod(t, "a", "web-1", web, dg(1))
	f.putPod(t, "a", "web-2", web, dg(1), dg(3))
	f.putPod(t, "a", "api-1", Workload{"Deployment", "api"}, dg(3))
	f.putPod(t, "b", "multi-1", Workload{"DaemonSet", "multi"}, dg(2))
	f.putPod(t, "b", "ext-1", Workload{"Pod", "ext-1"}, dg(4)) // never scanned
	f.putPod(t, "b", "bad-1", Workload{"Pod", "bad-1"}, dg(5)) // scan failed
	f.putPod(t, "b", "tag-1", Workload{"Pod", "tag-1"}, "")    // digest unknown

	rep, err := f.q.Affected(ctx, "cve-2024-1", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Vulnerability != "CVE-2024-1" || rep.Pods != 3 || rep.RunningDigests != 5 || rep.ScannedDigests != 3 {
		t.Fatalf("report %+v", rep)
	}
	var got []string
	for _, w := range rep.Workloads {
		got = append(got, fmt.Sprintf("%s/%s/%s %v", w.Namespace, w.Kind, w.Name, w.Pods))
	}
	if want := []string{"a/Deployment/web [web-1 web-2]", "b/DaemonSet/multi [multi-1]"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("workloads %v, want %v", got, want)
	}
	if fs := rep.Workloads[1].Images[0].Findings; len(fs) != 1 || fs[0].Platform != "linux/arm64" || fs[0].Package != "libc6" {
		t.Errorf("index finding %+v", fs)
	}
	if im := rep.Workloads[0].Images; len(im) != 1 || im[0].Digest != dg(1) {
		t.Errorf("web's affected images %+v (dg(3) is not affected)", im)
	}
	var un []string
	for _, u := range rep.Unscanned {
		un = append(un, u.Digest+" "+fmt.Sprint(u.Images))
	}
	if want := []string{dg(4) + " [d.io/live/app@" + dg(4) + "]", dg(5) + " [d.io/live/app@" + dg(5) + "]", " [d.io/live/app:floating]"}; !reflect.DeepEqual(un, want) {
		t.Errorf("unscanned %v, want %v", un, want)
	}

	// The same question again reads no scan that did not change; a
	// rescan without the finding takes the image out.
	f.putScan(t, dg(1), store.PlatformReport{Digest: dg(1), Report: report([2]string{"CVE-2024-2", "zlib1g"})})
	rep, err = f.q.Affected(ctx, "CVE-2024-1", Filter{Namespace: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Workloads) != 0 || rep.Pods != 0 {
		t.Fatalf("after a rescan without the CVE, namespace a: %+v", rep.Workloads)
	}
	if rep, _ = f.q.Affected(ctx, "CVE-2024-2", Filter{}); rep.Pods != 4 || len(rep.Workloads) != 3 {
		t.Fatalf("CVE-2024-2: %d pods in %+v", rep.Pods, rep.Workloads)
	}
	// A rescan that fails leaves the digest unscanned: what its indexed
	// (older) scan found is not answered (api-1 runs only dg(3)).
	if err := f.gate.PutScan(ctx, store.Scan{Digest: dg(3), Error: "scan failed"}); err != nil {
		t.Fatal(err)
	}
	if rep, _ = f.q.Affected(ctx, "CVE-2024-2", Filter{}); rep.Pods != 3 || len(rep.Workloads) != 2 || !slices.ContainsFunc(rep.Unscanned,
		func(u RunningImage) bool { return u.Digest == dg(3) }) {
		t.Fatalf("CVE-2024-2 after dg(3)'s rescan failed: %d pods in %+v, unscanned %+v", rep.Pods, rep.Workloads, rep.Unscanned)
	}
	for _, bad := range []string{"", "x", "CVE-2024-1; DROP", "CVE-" + string(make([]byte, 80))} {
		if _, err := f.q.Affected(ctx, bad, Filter{}); !errors.Is(err, ErrInvalidVulnerability) {
			t.Errorf("Affected(%q): %v", bad, err)
		}
	}
}

func TestImages(t *testing.T) {
	f := newQueryFixture(t)
	ctx := t.Context()
	if err := f.verdict(ctx, dg(1), gate.StatePass); err != nil {
		t.Fatal(err)
	}
	if err := f.gate.MarkPromoted(ctx, dg(1), f.at); err != nil {
		t.Fatal(err)
	}
	if err := f.verdict(ctx, dg(2), gate.StateFail); err != nil {
		t.Fatal(err)
	}
	f.putPod(t, "a", "web-1", Workload{"Deployment", "web"}, dg(1), dg(2))
	f.putPod(t, "b", "web-1", Workload{"Deployment", "web"}, dg(1))
	f.putPod(t, "b", "x", Workload{"Pod", "x"}, dg(3), "")
	rep, err := f.q.Images(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, im := range rep.Images {
		got = append(got, fmt.Sprintf("%s %s %v pods=%d workloads=%d", im.Digest, im.Verdict, im.Promoted, im.Pods, len(im.Workloads)))
	}
	want := []string{
		dg(1) + " pass true pods=2 workloads=2",
		dg(2) + " fail false pods=1 workloads=1",
		dg(3) + " unknown false pods=1 workloads=1",
		" unknown false pods=1 workloads=1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("images\n%v\nwant\n%v", got, want)
	}
	if rep, _ = f.q.Images(ctx, Filter{Namespace: "b"}); len(rep.Images) != 3 {
		t.Errorf("namespace b: %+v", rep.Images)
	}
}

// countingScans counts the scans read.
type countingScans struct {
	ScanSource
	mu    sync.Mutex
	reads int
}

func (c *countingScans) Scan(ctx context.Context, digest string) (*store.Scan, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.ScanSource.Scan(ctx, digest)
}

// TestAffectedReadsEachScanOnce: Warm reads each running digest's scan
// once, however many pods run it; questions after it read no scan, nor
// does a fresh Queries (a restarted server or another replica: the index
// is in the database); a rescan is read again, once.
func TestAffectedReadsEachScanOnce(t *testing.T) {
	f := newQueryFixture(t)
	ctx := t.Context()
	for d := 1; d <= 3; d++ {
		f.putScan(t, dg(d), store.PlatformReport{Digest: dg(d), Report: report([2]string{fmt.Sprintf("CVE-2024-%d", d), "p"})})
	}
	for i := range 30 {
		f.putPod(t, "a", fmt.Sprintf("p%d", i), Workload{"Deployment", "web"}, dg(i%3+1))
	}
	cs := &countingScans{ScanSource: f.gate}
	q := NewQueries(f.inv, cs, f.gate)
	if err := q.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	if cs.reads != 3 {
		t.Fatalf("warming read %d scans for 3 digests run by 30 pods", cs.reads)
	}
	for range 2 {
		rep, err := q.Affected(ctx, "CVE-2024-2", Filter{})
		if err != nil || rep.Pods != 10 {
			t.Fatalf("affected: %+v %v", rep, err)
		}
	}
	if cs.reads != 3 {
		t.Errorf("%d scans read after warming: want none", cs.reads-3)
	}
	if rep, _ := q.Affected(ctx, "CVE-2099-1", Filter{}); rep.Pods != 0 || cs.reads != 3 {
		t.Errorf("a CVE no scan has read %d scans", cs.reads-3)
	}
	fresh := &countingScans{ScanSource: f.gate}
	if rep, err := NewQueries(f.inv, fresh, f.gate).Affected(ctx, "CVE-2024-3", Filter{}); err != nil || rep.Pods != 10 || fresh.reads != 0 {
		t.Errorf("a fresh Queries: %+v %v, %d scans read (want none: the index is stored)", rep, err, fresh.reads)
	}
	f.putScan(t, dg(1), store.PlatformReport{Digest: dg(1), Report: report([2]string{"CVE-2099-1", "p"})})
	if rep, _ := q.Affected(ctx, "CVE-2099-1", Filter{}); rep.Pods != 10 || cs.reads != 4 {
		t.Errorf("after a rescan: %d pods, %d reads", rep.Pods, cs.reads)
	}
	if rep, _ := q.Affected(ctx, "CVE-2024-1", Filter{}); rep.Pods != 0 {
		t.Errorf("after a rescan without CVE-2024-1: %d pods", rep.Pods)
	}
	// A digest that stops running leaves the index at the next warm-up.
	for i := 0; i < 30; i += 3 {
		if err := f.inv.DeletePod(ctx, "c1", "a", fmt.Sprintf("p%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	if idx, err := f.inv.ScanIndex(ctx); err != nil || len(idx) != 2 || !idx[dg(1)].IsZero() {
		t.Errorf("index after dg(1) stopped running: %v %v", idx, err)
	}
}
