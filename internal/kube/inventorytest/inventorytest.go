// Package inventorytest is the conformance suite of kube.InventoryStore:
// every backend (SQLite, PostgreSQL) runs Run against a fresh store.
package inventorytest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/kube"
)

// Run runs the suite. newStore is called once per test with an empty
// database and returns a function that opens a handle on it; two handles
// behave as two processes (replicas) would. The suite closes the handles.
func Run(t *testing.T, newStore func(t *testing.T) func() kube.InventoryStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s kube.InventoryStore)
	}{
		{"PutAndRead", testPutAndRead},
		{"PutReplaces", testPutReplaces},
		{"Delete", testDelete},
		{"Invalid", testInvalid},
		{"ReplaceCluster", testReplaceCluster},
		{"Filters", testFilters},
		{"Digests", testDigests},
		{"Concurrent", testConcurrent},
		{"ScanIndex", testScanIndex},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, handle(t, newStore(t)))
		})
	}
	t.Run("TwoReplicas", func(t *testing.T) {
		open := newStore(t)
		testTwoReplicas(t, handle(t, open), handle(t, open))
	})
}

func handle(t *testing.T, open func() kube.InventoryStore) kube.InventoryStore {
	s := open()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// Digest returns a valid digest for n.
func Digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)

// Pod returns a record of pod ns/name in cluster with one container per
// digest.
func Pod(cluster, ns, name string, digests ...string) kube.PodRecord {
	p := kube.PodRecord{Cluster: cluster, Namespace: ns, Name: name, UID: "uid-" + ns + "-" + name, Node: "node-1", Phase: "Running",
		Workload: kube.Workload{Kind: "Deployment", Name: name + "-app"}, ObservedAt: t0}
	for i, d := range digests {
		p.Containers = append(p.Containers, kube.RunningContainer{Kind: kube.KindContainer, Name: fmt.Sprintf("c%d", i),
			Image: "d.io/live/app@" + d, Host: "d.io", Repository: "live/app", Digest: d, DigestFrom: kube.FromSpec})
	}
	return p
}

func pods(t *testing.T, s kube.InventoryStore, f kube.PodFilter) []kube.PodRecord {
	t.Helper()
	got, err := s.Pods(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func names(ps []kube.PodRecord) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Cluster+"/"+p.Namespace+"/"+p.Name)
	}
	return out
}

func testPutAndRead(t *testing.T, s kube.InventoryStore) {
	p := Pod("c1", "team-a", "web-1", Digest(1), Digest(2))
	p.Containers = append(p.Containers,
		kube.RunningContainer{Kind: kube.KindInitContainer, Name: "init", Image: "busybox", Host: "docker.io", Repository: "library/busybox"},
		kube.RunningContainer{Kind: kube.KindEphemeralContainer, Name: "debug", Image: "not a ref"})
	if err := s.PutPod(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	got := pods(t, s, kube.PodFilter{})
	if len(got) != 1 || !reflect.DeepEqual(got[0], p) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, p)
	}
}

func testPutReplaces(t *testing.T, s kube.InventoryStore) {
	ctx := t.Context()
	if err := s.PutPod(ctx, Pod("c1", "a", "p", Digest(1), Digest(2), Digest(3))); err != nil {
		t.Fatal(err)
	}
	next := Pod("c1", "a", "p", Digest(4))
	next.Phase, next.Node, next.Workload = "Pending", "", kube.Workload{Kind: "Pod", Name: "p"}
	if err := s.PutPod(ctx, next); err != nil {
		t.Fatal(err)
	}
	got := pods(t, s, kube.PodFilter{})
	if len(got) != 1 || !reflect.DeepEqual(got[0], next) {
		t.Fatalf("after a second put: %+v", got)
	}
	if ds, _ := s.Digests(ctx); len(ds) != 1 || ds[0].Digest != Digest(4) {
		t.Fatalf("digests after the put replaced the containers: %+v", ds)
	}
}

func testDelete(t *testing.T, s kube.InventoryStore) {
	ctx := t.Context()
	for _, p := range []kube.PodRecord{Pod("c1", "a", "p", Digest(1)), Pod("c1", "a", "q", Digest(1)), Pod("c2", "a", "p", Digest(1))} {
		if err := s.PutPod(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeletePod(ctx, "c1", "a", "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePod(ctx, "c1", "a", "never"); err != nil {
		t.Fatalf("deleting an unknown pod: %v", err)
	}
	if got := names(pods(t, s, kube.PodFilter{})); !reflect.DeepEqual(got, []string{"c1/a/q", "c2/a/p"}) {
		t.Fatalf("after delete: %v", got)
	}
	if ds, _ := s.Digests(ctx); len(ds) != 1 || ds[0].Pods != 2 {
		t.Fatalf("the deleted pod's containers remain: %+v", ds)
	}
}

func testInvalid(t *testing.T, s kube.InventoryStore) {
	ctx := t.Context()
	for _, p := range []kube.PodRecord{Pod("", "a", "p"), Pod("c", "", "p"), Pod("c", "a", "")} {
		if err := s.PutPod(ctx, p); !errors.Is(err, kube.ErrInvalidRecord) {
			t.Errorf("PutPod(%q/%q/%q) = %v, want ErrInvalidRecord", p.Cluster, p.Namespace, p.Name, err)
		}
	}
	if err := s.ReplaceCluster(ctx, "c1", []kube.PodRecord{Pod("c2", "a", "p")}); !errors.Is(err, kube.ErrInvalidRecord) {
		t.Errorf("a resync with another cluster's pod: %v", err)
	}
	if got := pods(t, s, kube.PodFilter{}); len(got) != 0 {
		t.Errorf("invalid records stored: %v", names(got))
	}
}

func testReplaceCluster(t *testing.T, s kube.InventoryStore) {
	ctx := t.Context()
	for _, p := range []kube.PodRecord{Pod("c1", "a", "old", Digest(1)), Pod("c2", "a", "other", Digest(1))} {
		if err := s.PutPod(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReplaceCluster(ctx, "c1", []kube.PodRecord{Pod("c1", "b", "new", Digest(2)), Pod("c1", "a", "new", Digest(3))}); err != nil {
		t.Fatal(err)
	}
	if got := names(pods(t, s, kube.PodFilter{})); !reflect.DeepEqual(got, []string{"c1/a/new", "c1/b/new", "c2/a/other"}) {
		t.Fatalf("after the resync: %v", got)
	}
	// A resync that fails (a pod twice) changes nothing.
	dup := Pod("c1", "z", "dup", Digest(9))
	if err := s.ReplaceCluster(ctx, "c1", []kube.PodRecord{dup, dup}); err == nil {
		t.Fatal("a resync with one pod twice was accepted")
	}
	if got := names(pods(t, s, kube.PodFilter{})); !reflect.DeepEqual(got, []string{"c1/a/new", "c1/b/new", "c2/a/other"}) {
		t.Fatalf("a failed resync changed the records: %v", got)
	}
	// An empty resync empties the cluster.
	if err := s.ReplaceCluster(ctx, "c1", nil); err != nil {
		t.Fatal(err)
	}
	if got := names(pods(t, s, kube.PodFilter{})); !reflect.DeepEqual(got, []string{"c2/a/other"}) {
		t.Fatalf("after an empty resync: %v", got)
	}
}

func testFilters(t *testing.T, s kube.InventoryStore) {
	ctx := t.Context()
	for _, p := range []kube.PodRecord{
		Pod("c1", "b", "p2", Digest(2)),
		Pod("c1", "a", "p1", Digest(1), Digest(2)),
		Pod("c2", "a", "p3", Digest(3)),
		Pod("c1", "a", "p0"),
	} {
		if err := s.PutPod(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    kube.PodFilter
		want []string
	}{
		{kube.PodFilter{}, []string{"c1/a/p0", "c1/a/p1", "c1/b/p2", "c2/a/p3"}},
		{kube.PodFilter{Cluster: "c1"}, []string{"c1/a/p0", "c1/a/p1", "c1/b/p2"}},
		{kube.PodFilter{Namespace: "a"}, []string{"c1/a/p0", "c1/a/p1", "c2/a/p3"}},
		{kube.PodFilter{Cluster: "c1", Namespace: "a"}, []string{"c1/a/p0", "c1/a/p1"}},
		{kube.PodFilter{Digests: []string{Digest(2)}}, []string{"c1/a/p1", "c1/b/p2"}},
		{kube.PodFilter{Digests: []string{Digest(1), Digest(3)}}, []string{"c1/a/p1", "c2/a/p3"}},
		{kube.PodFilter{Digests: []string{}}, []string{}},
		{kube.PodFilter{Digests: []string{Digest(7)}}, []string{}},
	} {
		got := pods(t, s, tc.f)
		if !reflect.DeepEqual(names(got), tc.want) {
			t.Errorf("Pods(%+v) = %v, want %v", tc.f, names(got), tc.want)
		}
		for _, p := range got {
			if p.Name == "p1" && len(p.Containers) != 2 {
				t.Errorf("Pods(%+v): p1 with %d containers, want all 2", tc.f, len(p.Containers))
			}
		}
	}
}

func testDigests(t *testing.T, s kube.InventoryStore) {
	ctx := t.Context()
	for _, p := range []kube.PodRecord{
		Pod("c1", "a", "p1", Digest(1), Digest(1), Digest(2)), // one pod, two containers of digest 1
		Pod("c1", "a", "p2", Digest(1)),
		Pod("c2", "a", "p1", Digest(1)),
		Pod("c1", "a", "p3", ""), // digest unknown
	} {
		if err := s.PutPod(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Digests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []kube.DigestUse{{Digest: Digest(1), Pods: 3}, {Digest: Digest(2), Pods: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Digests = %+v, want %+v", got, want)
	}
}

func testConcurrent(t *testing.T, s kube.InventoryStore) {
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			errs <- s.PutPod(t.Context(), Pod("c1", "a", fmt.Sprintf("p%02d", i), Digest(i%5)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := pods(t, s, kube.PodFilter{}); len(got) != 40 {
		t.Fatalf("%d pods after 40 concurrent puts", len(got))
	}
}

// testTwoReplicas: two processes watching the same cluster resync it and
// update its pods at once. Every write succeeds (none fails on the other's
// rows), and what is stored at the end is exactly one resync's pods plus
// the updates that came after it: never a mix of two resyncs.
func testTwoReplicas(t *testing.T, a, b kube.InventoryStore) {
	ctx := t.Context()
	resync := func(gen int) []kube.PodRecord {
		var ps []kube.PodRecord
		for i := range 30 {
			ps = append(ps, Pod("c1", "a", fmt.Sprintf("p%02d", i), Digest(gen)))
		}
		return ps
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for round := range 10 {
		for _, s := range []kube.InventoryStore{a, b} {
			wg.Go(func() { errs <- s.ReplaceCluster(ctx, "c1", resync(round+1)) })
			wg.Go(func() { errs <- s.PutPod(ctx, Pod("c1", "b", fmt.Sprintf("x%d", round), Digest(100))) })
			wg.Go(func() { errs <- s.DeletePod(ctx, "c1", "a", fmt.Sprintf("p%02d", round)) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a write beside another replica's: %v", err)
		}
	}
	// A last resync from each side: the later one wins whole.
	if err := a.ReplaceCluster(ctx, "c1", resync(50)); err != nil {
		t.Fatal(err)
	}
	if err := b.ReplaceCluster(ctx, "c1", resync(51)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []kube.InventoryStore{a, b} {
		got := pods(t, s, kube.PodFilter{Cluster: "c1"})
		if len(got) != 30 {
			t.Fatalf("%d pods after the last resync, want 30: %v", len(got), names(got))
		}
		for _, p := range got {
			if len(p.Containers) != 1 || p.Containers[0].Digest != Digest(51) {
				t.Fatalf("pod %s/%s after the last resync: %+v, want one container of %s", p.Namespace, p.Name, p.Containers, Digest(51))
			}
		}
	}
}

func finding(id, platform, pkg string) kube.IndexedFinding {
	return kube.IndexedFinding{VulnerabilityID: id, AffectedFinding: kube.AffectedFinding{Platform: platform, Package: pkg,
		InstalledVersion: "1.0-1", FixedVersion: "1.0-2", Severity: "HIGH", Status: "fixed"}}
}

// testScanIndex: indexed scans are kept with their time (to the
// nanosecond), replaced whole, answered by vulnerability in a stable
// order (byte order on both engines), and pruned when no pod runs them.
func testScanIndex(t *testing.T, s kube.InventoryStore) {
	ctx := t.Context()
	if err := s.PutPod(ctx, Pod("c1", "a", "p1", Digest(1), Digest(2))); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Nanosecond)
	put := []kube.IndexedScan{
		{Digest: Digest(2), ScannedAt: at, Findings: []kube.IndexedFinding{finding("CVE-1", "linux/arm64", "zlib"), finding("CVE-1", "linux/amd64", "zlib"), finding("CVE-2", "", "b")}},
		{Digest: Digest(1), ScannedAt: at, Findings: []kube.IndexedFinding{finding("CVE-1", "", "libc6"), finding("CVE-1", "", "Libc6")}},
		{Digest: Digest(3), ScannedAt: at}, // no findings, and no pod runs it
	}
	if err := s.PutScanIndex(ctx, put); err != nil {
		t.Fatal(err)
	}
	idx, err := s.ScanIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx) != 3 || !idx[Digest(1)].Equal(at) || !idx[Digest(3)].Equal(at) {
		t.Fatalf("ScanIndex = %v", idx)
	}
	got, err := s.Findings(ctx, "CVE-1")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, f := range got {
		if f.VulnerabilityID != "CVE-1" || f.FixedVersion != "1.0-2" || f.Severity != "HIGH" || f.Status != "fixed" {
			t.Errorf("finding %+v", f)
		}
		order = append(order, f.Digest[len(f.Digest)-1:]+" "+f.Platform+" "+f.Package)
	}
	if want := []string{"1  Libc6", "1  libc6", "2 linux/amd64 zlib", "2 linux/arm64 zlib"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("Findings(CVE-1) = %q, want %q", order, want)
	}
	if got, _ := s.Findings(ctx, "cve-1"); len(got) != 0 {
		t.Errorf("IDs compare exactly: %+v", got)
	}

	// A rescan replaces the digest's findings whole.
	later := at.Add(time.Hour)
	if err := s.PutScanIndex(ctx, []kube.IndexedScan{{Digest: Digest(2), ScannedAt: later, Findings: []kube.IndexedFinding{finding("CVE-3", "", "c")}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Findings(ctx, "CVE-1"); len(got) != 2 || got[0].Digest != Digest(1) {
		t.Errorf("after digest 2's rescan, CVE-1: %+v", got)
	}
	if got, _ := s.Findings(ctx, "CVE-2"); len(got) != 0 {
		t.Errorf("after digest 2's rescan, CVE-2: %+v", got)
	}
	if idx, _ := s.ScanIndex(ctx); !idx[Digest(2)].Equal(later) {
		t.Errorf("digest 2 indexed at %v, want %v", idx[Digest(2)], later)
	}

	for _, bad := range [][]kube.IndexedScan{
		{{Digest: "", ScannedAt: at}},
		{{Digest: Digest(4)}},
		{{Digest: Digest(4), ScannedAt: at}, {Digest: Digest(4), ScannedAt: at}},
	} {
		if err := s.PutScanIndex(ctx, bad); !errors.Is(err, kube.ErrInvalidRecord) {
			t.Errorf("PutScanIndex(%+v) = %v, want ErrInvalidRecord", bad, err)
		}
	}

	// Pruning keeps what pods run.
	if err := s.PutPod(ctx, Pod("c1", "a", "p1", Digest(2))); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneScanIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if idx, _ := s.ScanIndex(ctx); len(idx) != 1 || idx[Digest(2)].IsZero() {
		t.Errorf("after pruning: %v, want digest 2 only", idx)
	}
	if got, _ := s.Findings(ctx, "CVE-1"); len(got) != 0 {
		t.Errorf("findings of pruned digests remain: %+v", got)
	}
}
