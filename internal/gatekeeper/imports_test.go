package gatekeeper

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

func TestAutoPromote(t *testing.T) {
	const auto = "version: v1\nmaxSeverity: HIGH\nautoPromote: true\n"
	tests := []struct {
		name     string
		policy   string
		finding  *scan.Finding
		moveTag  bool   // the tag points at another digest by the time of the scan
		wantRef  string // what live/app must hold after; "" = nothing
		wantTag1 bool   // live/app:1 exists
	}{
		{name: "pass, tag still there", policy: auto, wantRef: "1", wantTag1: true},
		{name: "pass, tag moved", policy: auto, moveTag: true, wantRef: "digest"},
		{name: "fail", policy: auto, finding: &scan.Finding{VulnerabilityID: "CVE-2024-9", PkgName: "libz", InstalledVersion: "1",
			FixedVersion: "2", Severity: vulndb.SeverityCritical, Status: vulndb.StatusFixed}},
		{name: "manual promotion", policy: "version: v1\nmaxSeverity: HIGH\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{policy: tt.policy})
			ctx := t.Context()
			d := f.push("quarantine/app", "1", "app").Digest.String()
			if tt.moveTag {
				f.push("quarantine/app", "1", "newer")
			}
			if tt.finding != nil {
				f.putScan("quarantine/app", d, *tt.finding)
			} else {
				f.putScan("quarantine/app", d)
			}
			a := ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "arrival"}
			v, err := f.k.Reevaluate(ctx, a.Repository, d)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.k.autoPromote(ctx, a, v); err != nil {
				t.Fatalf("autoPromote: %v", err)
			}
			_, _, byDigest := f.reg.Manifest(ctx, "live/app", d)
			desc, _, byTag := f.reg.Manifest(ctx, "live/app", "1")
			if (byDigest == nil) != (tt.wantRef != "") {
				t.Errorf("live/app@%s: %v, want present %v", d, byDigest, tt.wantRef != "")
			}
			if (byTag == nil) != tt.wantTag1 || (byTag == nil && desc.Digest.String() != d) {
				t.Errorf("live/app:1 = %s, %v; want present %v", desc.Digest, byTag, tt.wantTag1)
			}
			es := f.auditEntries(audit.ActionPromotion, d)
			if tt.wantRef == "" {
				if len(es) != 0 || f.image(d).Promoted {
					t.Errorf("promotion audit entries %+v for a digest that must stay in quarantine/", es)
				}
				return
			}
			if len(es) != 1 || es[0].Actor != ActorGate+" (autoPromote)" || es[0].Outcome != audit.OutcomeOK || !f.image(d).Promoted {
				t.Errorf("promotion audit entries %+v, want one ok by the gate", es)
			}
		})
	}
}

func TestRecordImport(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: CRITICAL\nallowedSources: ['^docker\\.io/library/']\n"})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.push("live/app", "1", "live")
	f.putScan("quarantine/app", d)
	steps := []struct {
		name, ref, source string
		wantErr           error  // errors.Is target
		wantErrText       string // or a substring of the error
		wantState         gate.State
		wantSource        string
	}{
		{name: "empty source", ref: "quarantine/app:1", source: "  ", wantErrText: "import source"},
		{name: "two lines", ref: "quarantine/app:1", source: "docker.io/library/app:1\nx", wantErrText: "import source"},
		{name: "too long", ref: "quarantine/app:1", source: strings.Repeat("a", maxSourceLen+1), wantErrText: "import source"},
		{name: "unknown image", ref: "quarantine/app:2", source: "docker.io/library/app:2", wantErr: ErrUnknownImage},
		{name: "into live", ref: "live/app:1", source: "docker.io/library/app:1", wantErr: ErrInvalidRequest},
		{name: "allowed source", ref: "quarantine/app:1", source: " docker.io/library/app:1 ", wantState: gate.StatePass, wantSource: "docker.io/library/app:1"},
		{name: "disallowed source", ref: "quarantine/app@" + d, source: "evil.example/app:1", wantState: gate.StateFail, wantSource: "evil.example/app:1"},
	}
	imports := 0
	for _, s := range steps {
		st, err := f.k.RecordImport(ctx, "carol", s.ref, s.source)
		switch {
		case s.wantErr != nil || s.wantErrText != "":
			if err == nil || st != nil || (s.wantErr != nil && !errors.Is(err, s.wantErr)) || !strings.Contains(err.Error(), s.wantErrText) {
				t.Errorf("%s: RecordImport = %v, %v; want error %v %q", s.name, st, err, s.wantErr, s.wantErrText)
			}
		case err != nil:
			t.Errorf("%s: RecordImport: %v", s.name, err)
		default:
			imports++
			if st.Verdict.State != s.wantState || st.Scan.Source != s.wantSource || st.Digest != d {
				t.Errorf("%s: status %+v, want %s from %s", s.name, st, s.wantState, s.wantSource)
			}
			if s.wantState == gate.StateFail && !hasRule(st.Verdict, gate.RuleAllowedSources) {
				t.Errorf("%s: fail without the allowedSources rule: %+v", s.name, st.Verdict)
			}
		}
		if n := len(f.auditEntries(audit.ActionImport, "")); n != imports {
			t.Errorf("%s: %d import audit entries, want %d", s.name, n, imports)
		}
	}
	// A rescan keeps the recorded source.
	f.putScan("quarantine/app", d)
	if sc, err := f.store.Scan(ctx, d); err != nil || sc.Source != "evil.example/app:1" {
		t.Errorf("source after a rescan: %+v, %v", sc, err)
	}
}

func TestRescan(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	d := f.push("quarantine/app", "1", "app").Digest.String()
	live := f.push("live/app", "1", "live").Digest.String()
	f.push("other/app", "1", "other")
	steps := []struct {
		ref      string
		wantErr  string
		wantArgs ScanArgs
	}{
		{ref: "quarantine/app:1", wantArgs: ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "rescan"}},
		{ref: "quarantine/app@" + d, wantArgs: ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "rescan"}}, // the queued job
		{ref: "live/app@" + live, wantArgs: ScanArgs{Repository: "live/app", Digest: live, Reason: "rescan"}},
		{ref: "other/app:1", wantErr: "only quarantine/ and live/"},
		{ref: "quarantine/app:2", wantErr: ErrUnknownImage.Error()},
	}
	for _, s := range steps {
		id, err := f.k.Rescan(ctx, s.ref)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Errorf("Rescan(%s) = %d, %v; want an error mentioning %q", s.ref, id, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Rescan(%s): %v", s.ref, err)
		}
		js, args := f.scanJobs()
		i := slices.IndexFunc(js, func(j jobs.Job) bool { return j.ID == id })
		if i < 0 || args[i] != s.wantArgs {
			t.Errorf("Rescan(%s) queued job %d; jobs %+v, want args %+v", s.ref, id, args, s.wantArgs)
		}
	}
	if js, _ := f.scanJobs(); len(js) != 2 {
		t.Errorf("%d scan jobs, want 2", len(js))
	}
}

func TestAttachReport(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	rep := &scan.Report{Status: scan.StatusOK, ScannedAt: t0, Artifact: scan.Artifact{Digest: img.Digest.String()},
		Findings: []scan.Finding{highFinding}}
	if err := f.k.attachReport(ctx, "quarantine/app", img, rep); err != nil {
		t.Fatal(err)
	}
	refs, err := f.reg.Referrers(ctx, "quarantine/app", img.Digest, ReportArtifactType)
	if err != nil || len(refs) != 1 {
		t.Fatalf("report referrers %+v, %v; want one", refs, err)
	}
	a := refs[0].Annotations
	if a["dev.drydock.scan.status"] != "ok" || a["dev.drydock.scan.findings"] != "1" ||
		a["dev.drydock.scan.artifactDigest"] != img.Digest.String() || a[ocispec.AnnotationCreated] != "2026-11-24T12:00:00Z" {
		t.Errorf("report annotations %v", a)
	}
	_, body, err := f.reg.Manifest(ctx, "quarantine/app", refs[0].Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil || len(m.Layers) != 1 || m.Subject == nil || m.Subject.Digest != img.Digest {
		t.Fatalf("report manifest %s: %v", body, err)
	}
	rc, _, err := f.reg.OpenBlob(ctx, "quarantine/app", m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got scan.Report
	if err := json.NewDecoder(rc).Decode(&got); err != nil || got.Status != scan.StatusOK || len(got.Findings) != 1 ||
		got.Findings[0].VulnerabilityID != "CVE-2024-1" {
		t.Errorf("stored report %+v, %v", got, err)
	}
	// The report is an artifact: its scan job does nothing.
	if err := f.k.runScan(ctx, ScanArgs{Repository: "quarantine/app", Digest: refs[0].Digest.String()}); err != nil {
		t.Errorf("runScan of the report: %v", err)
	}
	if _, err := f.store.Scan(ctx, refs[0].Digest.String()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the report was scanned: %v", err)
	}
}

// TestAttachReportKeepsTheNewest: rescans do not pile up reports; the
// newest keepReports stay attached.
func TestAttachReportKeepsTheNewest(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	var newest []string
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Hour)
		rep := &scan.Report{Status: scan.StatusOK, ScannedAt: at, Artifact: scan.Artifact{Digest: img.Digest.String()}}
		if err := f.k.attachReport(ctx, "quarantine/app", img, rep); err != nil {
			t.Fatal(err)
		}
		if i >= 5-keepReports {
			newest = append(newest, at.UTC().Format("2006-01-02T15:04:05Z"))
		}
	}
	refs, err := f.reg.Referrers(ctx, "quarantine/app", img.Digest, ReportArtifactType)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.Annotations[ocispec.AnnotationCreated])
	}
	slices.Sort(got)
	if !slices.Equal(got, newest) {
		t.Errorf("reports kept %v, want the newest %v", got, newest)
	}
}

// TestPolicyUnchangedAcrossRestart: a new process (a new Keeper on the same
// store) with the same policy records no policy change; a changed policy
// does, with the previous hash.
func TestPolicyUnchangedAcrossRestart(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.verdict("quarantine/app:1")
	if n := len(f.auditEntries(audit.ActionPolicyChange, "")); n != 1 {
		t.Fatalf("%d policy_change entries after the first start, want 1", n)
	}
	restart := func() *Keeper {
		t.Helper()
		ps, err := NewPolicySource(f.policy.path)
		if err != nil {
			t.Fatal(err)
		}
		dbs, err := database.NewOpener(database.Config{}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		q, err := jobs.Open(t.Context(), dbs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		k, err := New(Options{Registry: f.reg, Store: f.store, Queue: q, Audit: f.audits, Policy: ps,
			DBPath: filepath.Join(t.TempDir(), "missing.db"), Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if _, err := restart().Reevaluate(t.Context(), "quarantine/app", d); err != nil {
		t.Fatal(err)
	}
	if n := len(f.auditEntries(audit.ActionPolicyChange, "")); n != 1 {
		t.Fatalf("%d policy_change entries after a restart with the same policy, want 1", n)
	}
	f.policy.write("version: v1\nmaxSeverity: MEDIUM\n")
	if _, err := restart().Reevaluate(t.Context(), "quarantine/app", d); err != nil {
		t.Fatal(err)
	}
	es := f.auditEntries(audit.ActionPolicyChange, "")
	if len(es) != 2 || !strings.Contains(string(es[1].Detail), `"previous":"`) || strings.Contains(string(es[1].Detail), `"previous":""`) {
		t.Fatalf("policy_change entries after a restart with a new policy: %+v", es)
	}
}
