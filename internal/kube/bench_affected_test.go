package kube

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// BenchmarkAffected answers "who runs CVE-X" over 10,000 pods running
// 1,000 digests, each scanned with 150 findings of the size a Debian scan
// stores (title, description, references). The CVE is in one digest in
// ten. Goal: under 1 s.
//   - first: nothing indexed yet (a new installation's first question,
//     before the warm-up after the inventory's resync ends): every scan is
//     read and indexed;
//   - cold: a fresh Queries, as in a restarted server or another replica
//     (the index is in the database);
//   - warm: the same Queries asked again.
func BenchmarkAffected(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchAffected(b, dbtest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchAffected(b, dbtest.Postgres(b)) })
}

func benchAffected(b *testing.B, tg dbtest.Target) {
	const pods, digests, findings = 10000, 1000, 150
	f := newQueryFixtureOn(b, tg)
	ctx := b.Context()
	desc := strings.Repeat("A flaw was found in the handling of crafted input that can lead to a crash. ", 4)
	for d := range digests {
		r := &scan.Report{Status: "ok"}
		for i := range findings {
			id := fmt.Sprintf("CVE-2024-%d", 10000+i*7+d%5)
			if i == 0 && d%10 == 0 {
				id = "CVE-2025-0001"
			}
			r.Findings = append(r.Findings, scan.Finding{VulnerabilityID: id, PkgName: fmt.Sprintf("pkg%d", i), InstalledVersion: "1.2.3-1",
				SrcName: fmt.Sprintf("src%d", i), SrcVersion: "1.2.3-1", FixedVersion: "1.2.3-2", Ecosystem: "debian:12",
				Severity: vulndb.Severity("HIGH"), Status: vulndb.Status("fixed"), Title: "crash in " + id, Description: desc,
				References: []string{"https://security-tracker.debian.org/tracker/" + id, "https://nvd.nist.gov/vuln/detail/" + id}})
		}
		f.putScan(b, dg(d), store.PlatformReport{Digest: dg(d), Report: r})
	}
	recs := make([]PodRecord, pods)
	for i := range recs {
		recs[i] = PodRecord{Cluster: "c1", Namespace: fmt.Sprintf("ns%d", i%100), Name: fmt.Sprintf("pod-%d", i),
			Workload: Workload{Kind: "Deployment", Name: fmt.Sprintf("app-%d", i%2000)}, ObservedAt: time.Now(),
			Containers: []RunningContainer{
				{Kind: KindContainer, Name: "app", Image: "d.io/live/app@" + dg(i%digests), Host: "d.io", Repository: "live/app", Digest: dg(i % digests)},
				{Kind: KindContainer, Name: "sidecar", Image: "d.io/live/proxy@" + dg((i*7)%digests), Host: "d.io", Repository: "live/proxy", Digest: dg((i * 7) % digests)},
			}}
	}
	start := time.Now()
	if err := f.inv.ReplaceCluster(ctx, "c1", recs); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: a resync of %d pods wrote in %s", tg.Driver(), pods, time.Since(start).Round(time.Millisecond))
	check := func(rep *AffectedReport) {
		if rep.RunningDigests != digests || rep.Pods == 0 || rep.Pods == pods {
			b.Fatalf("report: %d digests, %d pods", rep.RunningDigests, rep.Pods)
		}
	}
	ask := func(b *testing.B, q *Queries) {
		rep, err := q.Affected(ctx, "CVE-2025-0001", Filter{})
		if err != nil {
			b.Fatal(err)
		}
		check(rep)
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if _, err := f.inv.db.ExecContext(ctx, `DELETE FROM kube_scans`); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			ask(b, NewQueries(f.inv, f.gate, f.gate))
		}
	})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			ask(b, NewQueries(f.inv, f.gate, f.gate))
		}
	})
	b.Run("warm", func(b *testing.B) {
		q := NewQueries(f.inv, f.gate, f.gate)
		ask(b, q)
		for b.Loop() {
			ask(b, q)
		}
	})
}
