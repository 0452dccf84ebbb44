package gatekeeper

// Tests added for mutants that survived `make mutate` over dbstatus.go,
// imports.go, policycache.go, policyedit.go, policystored.go, scanjob.go,
// sources.go and patchsign.go, or that gremlins could not cover (eighth
// pass; see test/mutation/SURVIVORS.md).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// TestValidateStoredPolicy: a stored policy must name each
// requireSignedBy key by an absolute path; each relative one is a problem
// naming its index and line, wherever the key stands in the document.
func TestValidateStoredPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []gate.Problem // nil: valid
	}{
		{"no keys", "version: v1\nmaxSeverity: HIGH\n", nil},
		{"absolute keys", "version: v1\nmaxSeverity: HIGH\nrequireSignedBy:\n  - /etc/drydock/a.pub\n  - /etc/drydock/b.pub\n", nil},
		{"relative keys", "version: v1\nmaxSeverity: HIGH\nrequireSignedBy:\n  - keys/a.pub\n  - /etc/drydock/b.pub\n  - c.pub\n",
			[]gate.Problem{{Field: "requireSignedBy[0]", Line: 4}, {Field: "requireSignedBy[2]", Line: 6}}},
		{"relative key first", "requireSignedBy: [a.pub]\nversion: v1\nmaxSeverity: HIGH\n", []gate.Problem{{Field: "requireSignedBy[0]", Line: 1}}},
	} {
		err := ValidateStoredPolicy(tc.text)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var pe *gate.PolicyError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a *gate.PolicyError", tc.name, err)
			continue
		}
		var got []gate.Problem
		for _, p := range pe.Problems {
			if !strings.Contains(p.Message, "relative path") {
				t.Errorf("%s: problem %+v does not say the path is relative", tc.name, p)
			}
			got = append(got, gate.Problem{Field: p.Field, Line: p.Line})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: problems %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// A text that is not a policy is refused as ValidatePolicy refuses it.
	var pe *gate.PolicyError
	if err := ValidateStoredPolicy("version: v9\nmaxSeverity: HIGH\nrequireSignedBy: [a.pub]\n"); !errors.As(err, &pe) ||
		!strings.Contains(err.Error(), "version") {
		t.Errorf("an invalid policy: %v", err)
	}
}

// TestDBStatus: the gate's database status without a database, with a
// file that is not one, with a fresh and then a stale one, and after a
// newer build replaces it; a verdict carries the same freshness, and
// none without a readable database.
func TestDBStatus(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	f.push("quarantine/app", "1", "app")
	status := func() *DBStatus {
		t.Helper()
		s, err := f.k.DBStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Path != f.dbPath {
			t.Errorf("status of %s, want %s", s.Path, f.dbPath)
		}
		return s
	}
	if s := status(); s.Present || !strings.Contains(s.Error, "no vulnerability database yet") || s.SchemaVersion != 0 {
		t.Errorf("without a database: %+v", s)
	}
	if db := f.verdict("quarantine/app:1").Database; db != nil {
		t.Errorf("a verdict without a database names its freshness %+v", db)
	}
	if err := os.MkdirAll(filepath.Dir(f.dbPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.dbPath, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := status(); s.Present || !strings.Contains(s.Error, "cannot be read") {
		t.Errorf("an unreadable database: %+v", s)
	}
	if db := f.verdict("quarantine/app:1").Database; db != nil {
		t.Errorf("a verdict with an unreadable database names its freshness %+v", db)
	}

	built := t0.Add(-24 * time.Hour)
	f.installDB(built)
	s := status()
	if !s.Present || s.Error != "" || s.SchemaVersion != vulndb.SchemaVersion || !s.BuiltAt.Equal(built) ||
		s.Stale || s.Warning != "" || s.DataAgeSeconds != int64(24*time.Hour/time.Second) ||
		len(s.Sources) != 1 || s.Sources[0].Name != "test-releases" {
		t.Errorf("a fresh database: %+v", s)
	}
	if db := f.verdict("quarantine/app:1").Database; db == nil || !db.BuiltAt.Equal(built) || db.Stale {
		t.Errorf("a verdict with a fresh database names %+v", db)
	}
	f.clock.Advance(defaultMaxDataAge)
	if s := status(); !s.Stale || !strings.Contains(s.Warning, "stale vulnerability data") {
		t.Errorf("a stale database: %+v", s)
	}
	if db := f.verdict("quarantine/app:1").Database; db == nil || !db.Stale {
		t.Errorf("a verdict with a stale database names %+v", db)
	}
	// A new build replaces the file: read again.
	newer := f.clock.Now().Add(-time.Hour)
	f.installDB(newer)
	if s := status(); !s.BuiltAt.Equal(newer) || s.Stale || s.Warning != "" {
		t.Errorf("after a new build: %+v", s)
	}
}

// policyChanges returns the policy-change audit entries by actor.
func (f *fixture) policyChanges(actor string) []audit.Entry {
	f.t.Helper()
	var out []audit.Entry
	for _, e := range f.auditEntries(audit.ActionPolicyChange, "") {
		if e.Actor == actor {
			out = append(out, e)
		}
	}
	return out
}

// TestSetPolicy: the policy kept in the store is shown and replaced
// through the keeper. A text that is not a policy, or names a key by a
// relative path, is refused; an ifHash that is not the policy in effect
// is ErrPolicyChanged; the same text changes nothing; each change is
// audited once with both hashes (another replica's next decision does not
// audit it again), and nothing is logged as failed.
func TestSetPolicy(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	var logs testenv.LockedBuffer
	replica := func() {
		t.Helper()
		ps, err := NewPolicySource("", WithPolicyStore(f.store))
		if err != nil {
			t.Fatal(err)
		}
		rebuild(t, f, func(o *Options) {
			o.Policy = ps
			o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		})
	}
	replica()
	view := func(want string) {
		t.Helper()
		v, err := f.k.Policy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Source != "database" || !v.Editable || v.Path != "" || v.Error != "" || v.Text != want || v.SHA256 != hashText(want) {
			t.Errorf("policy view %+v, want the stored %q", v, want)
		}
	}
	view(DefaultPolicy)

	var pe *gate.PolicyError
	if _, err := f.k.SetPolicy(ctx, "alice", "version: v9\n", ""); !errors.As(err, &pe) {
		t.Errorf("an invalid policy: %v, want a *gate.PolicyError", err)
	}
	if _, err := f.k.SetPolicy(ctx, "alice", "version: v1\nmaxSeverity: HIGH\nrequireSignedBy: [keys/a.pub]\n", ""); !errors.As(err, &pe) {
		t.Errorf("a relative key: %v, want a *gate.PolicyError", err)
	}
	if _, err := f.k.SetPolicy(ctx, "alice", lenientPolicy, hashText(stricterGrace)); !errors.Is(err, ErrPolicyChanged) {
		t.Errorf("an edit of another policy: %v, want ErrPolicyChanged", err)
	}
	same, err := f.k.SetPolicy(ctx, "alice", DefaultPolicy, "")
	if err != nil || same.Changed || same.SHA256 != hashText(DefaultPolicy) || same.Previous != hashText(DefaultPolicy) {
		t.Errorf("the same text: %+v, %v", same, err)
	}
	if n := len(f.policyChanges("alice")); n != 0 {
		t.Errorf("%d changes audited before any change", n)
	}

	c, err := f.k.SetPolicy(ctx, "alice", lenientPolicy, hashText(DefaultPolicy))
	if err != nil || c == nil || !c.Changed || c.SHA256 != hashText(lenientPolicy) || c.Previous != hashText(DefaultPolicy) {
		t.Fatalf("a change from the default: %+v, %v", c, err)
	}
	view(lenientPolicy)
	c, err = f.k.SetPolicy(ctx, "bob", stricterGrace, "")
	if err != nil || c == nil || !c.Changed || c.SHA256 != hashText(stricterGrace) || c.Previous != hashText(lenientPolicy) {
		t.Fatalf("a second change: %+v, %v", c, err)
	}
	if _, err := f.k.SetPolicy(ctx, "carol", lenientPolicy, hashText(lenientPolicy)); !errors.Is(err, ErrPolicyChanged) {
		t.Errorf("an edit of the replaced policy: %v, want ErrPolicyChanged", err)
	}
	for actor, want := range map[string][2]string{"alice": {lenientPolicy, DefaultPolicy}, "bob": {stricterGrace, lenientPolicy}} {
		es := f.policyChanges(actor)
		if len(es) != 1 || es[0].Outcome != audit.OutcomeOK || es[0].Reference != "database" {
			t.Errorf("%s's change audited as %+v", actor, es)
			continue
		}
		var d map[string]string
		if err := json.Unmarshal(es[0].Detail, &d); err != nil {
			t.Fatal(err)
		}
		if d["sha256"] != hashText(want[0]) || d["previous"] != hashText(want[1]) {
			t.Errorf("%s's change audited with %v", actor, d)
		}
	}

	// Another replica decides with the new policy, and does not audit
	// the change a second time.
	replica()
	view(stricterGrace)
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String(), highFinding)
	if v, err := f.k.Reevaluate(ctx, "quarantine/app", img.Digest.String()); err != nil || v.State != gate.StateFail {
		t.Errorf("the stored stricter policy decides %s (%v), want fail", v.State, err)
	}
	if es := f.policyChanges(ActorGate); len(es) != 0 {
		t.Errorf("the gate audited a policy change already audited: %+v", es)
	}
	if out := logs.String(); out != "" {
		t.Errorf("warnings or errors logged where nothing failed:\n%s", out)
	}
}

// TestPolicyView: where the policy in effect comes from (a file, the
// built-in policy, the store), and what is shown when it does not load
// or its store cannot be read; only a stored policy can be replaced.
func TestPolicyView(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	v, err := f.k.Policy(ctx)
	if err != nil || v.Source != "file" || v.Path != f.policy.path || v.Editable || v.Text != lenientPolicy || v.Error != "" {
		t.Errorf("a file's policy: %+v, %v", v, err)
	}
	if _, err := f.k.SetPolicy(ctx, "alice", stricterGrace, ""); !errors.Is(err, ErrPolicyInFile) {
		t.Errorf("an edit of a file's policy: %v, want ErrPolicyInFile", err)
	}
	broken := f.policy.write("version: v1\nmaxSeverity: EXTREME\n")
	v, err = f.k.Policy(ctx)
	if err != nil || v.Source != "file" || v.Text != broken || v.Error == "" {
		t.Errorf("a broken file's policy: %+v, %v", v, err)
	}

	b := newFixture(t, fixtureOptions{})
	v, err = b.k.Policy(ctx)
	if err != nil || v.Source != "built-in" || v.Path != "" || v.Editable || v.Text != DefaultPolicy || v.Error != "" {
		t.Errorf("the built-in policy: %+v, %v", v, err)
	}
	if _, err := b.k.SetPolicy(ctx, "alice", stricterGrace, ""); err == nil || errors.Is(err, ErrPolicyInFile) ||
		!strings.Contains(err.Error(), "no policy store") {
		t.Errorf("an edit without a store: %v", err)
	}

	// A store that cannot be read any more: the policy last read is
	// shown, with the error.
	dbs, err := database.NewOpener(database.Config{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dbs)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := NewPolicySource("", WithPolicyStore(st))
	if err != nil {
		t.Fatal(err)
	}
	rebuild(t, b, func(o *Options) { o.Policy = ps })
	st.Close()
	v, err = b.k.Policy(ctx)
	if err != nil || v.Source != "database" || v.Text != DefaultPolicy || v.Error == "" {
		t.Errorf("a store that cannot be read: %+v, %v", v, err)
	}
}

// TestPatchSigningOnSmallImages: SignPatch on small Debian images and a
// database that knows no vulnerability, so that every branch runs in a
// second (TestSignPatch and TestSignPatchIndex check the OpenVEX against
// the real data, in 90 s each). An image's original is named by its
// lineage annotation, not by the tag the request named (which moved on);
// what was signed follows the image promoted before; a second call adds
// nothing. An index gets its changed platform image and itself signed,
// its original found by name, its unchanged platform and an artifact
// without a platform left alone. Refused: a live/ repository, a digest
// or an original that is not there, an original named by nothing, an
// index patched from an image, an index that differs nowhere. Without a
// key, SignPatch does nothing.
func TestPatchSigningOnSmallImages(t *testing.T) {
	ctx := t.Context()
	key, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOptions{key: key})
	f.installDB(t0.Add(-24 * time.Hour))
	plans := []patch.Plan{{Platform: "linux/amd64", Changes: []patch.Change{{Package: "base-files", From: "12.4+deb12u5",
		To: "12.4+deb12u6", URL: "http://archive.invalid/base-files.deb"}}}}
	provOf := func(repo string, d digest.Digest) string {
		t.Helper()
		rep := f.verifyIn(repo, d, key)
		if !rep.SignedBy(key.ID()) {
			t.Errorf("%s@%s is not signed by drydock's key: %+v", repo, d, rep.Signatures)
		}
		a := rep.Attestation(attest.PredicateSLSAProvenanceV1, key.ID())
		if a == nil {
			t.Errorf("%s@%s has no provenance by drydock's key", repo, d)
			return ""
		}
		return string(a.Statement.Predicate)
	}

	orig := f.pushOS("quarantine/app", "1", debianRelease, "orig")
	plain := f.pushOS("quarantine/app", "", debianRelease, "patched")
	patched := f.withSubject("quarantine/app", plain, func(m *ocispec.Manifest) {
		m.Annotations = map[string]string{ocispec.AnnotationBaseImageDigest: orig.Digest.String()}
	})
	moved := f.pushOS("quarantine/app", "1", debianRelease, "moved")
	f.putScan("quarantine/app", patched.Digest.String())
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app@" + patched.Digest.String(), Target: "live/app:1"}); err != nil {
		t.Fatal(err)
	}
	pw := attest.PatchWritten{Repository: "quarantine/app", Tag: "1-patched", Digest: patched.Digest, OriginalRepository: "quarantine/app",
		OriginalName: "quarantine/app:1", Plans: plans, Started: f.clock.Now()}
	res, err := f.k.SignPatch(ctx, pw)
	if err != nil || res == nil || res.Already || !slices.Equal(res.Subjects, []digest.Digest{patched.Digest}) || len(res.Fixed) != 0 {
		t.Fatalf("signed %+v, %v; want the image, nothing fixed", res, err)
	}
	for _, repo := range []string{"quarantine/app", "live/app"} {
		if prov := provOf(repo, patched.Digest); !strings.Contains(prov, orig.Digest.Encoded()) ||
			strings.Contains(prov, moved.Digest.Encoded()) || !strings.Contains(prov, "base-files.deb") {
			t.Errorf("%s: the provenance does not name the original %s and the package: %s", repo, orig.Digest, prov)
		}
	}
	if again, err := f.k.SignPatch(ctx, pw); err != nil || again == nil || !again.Already {
		t.Errorf("signed twice: %+v, %v", again, err)
	}

	amd := f.pushOS("quarantine/ix", "", debianRelease, "amd64")
	arm := f.pushOS("quarantine/ix", "", debianRelease, "arm64")
	origIdx := f.pushIndex("quarantine/ix", "1", on(amd, "linux/amd64"), on(arm, "linux/arm64"), f.pushAttestation("quarantine/ix", "orig"))
	amdP := f.pushOS("quarantine/ix", "", debianRelease, "amd64 patched")
	patchedIdx := f.pushIndex("quarantine/ix", "1-patched", on(amdP, "linux/amd64"), on(arm, "linux/arm64"),
		f.pushAttestation("quarantine/ix", "patched"))
	res, err = f.k.SignPatch(ctx, attest.PatchWritten{Repository: "quarantine/ix", Tag: "1-patched", Digest: patchedIdx.Digest,
		OriginalRepository: "quarantine/ix", OriginalName: "quarantine/ix:1", Plans: plans})
	if err != nil || res == nil || !slices.Equal(res.Subjects, []digest.Digest{amdP.Digest, patchedIdx.Digest}) {
		t.Fatalf("signed %+v, %v; want the amd64 image and the index", res, err)
	}
	if prov := provOf("quarantine/ix", amdP.Digest); !strings.Contains(prov, amd.Digest.Encoded()) {
		t.Errorf("the amd64 image's provenance does not name its original %s", amd.Digest)
	}
	if prov := provOf("quarantine/ix", patchedIdx.Digest); !strings.Contains(prov, origIdx.Digest.Encoded()) {
		t.Errorf("the index's provenance does not name its original %s", origIdx.Digest)
	}
	if rep := f.verifyIn("quarantine/ix", arm.Digest, key); len(rep.Signatures) != 0 {
		t.Errorf("the unchanged platform was signed: %+v", rep.Signatures)
	}

	for _, tc := range []struct {
		name string
		p    attest.PatchWritten
		want string
	}{
		{"a live/ repository", attest.PatchWritten{Repository: "live/app", Digest: patched.Digest, OriginalRepository: "quarantine/app",
			Original: orig.Digest}, "not a quarantine/ repository"},
		{"a digest not there", attest.PatchWritten{Repository: "quarantine/app", Digest: digest.FromString("nothing"),
			OriginalRepository: "quarantine/app", Original: orig.Digest}, "signing the patch quarantine/app@"},
		{"an original named by nothing", attest.PatchWritten{Repository: "quarantine/app", Digest: plain.Digest,
			OriginalRepository: "quarantine/app"}, "named neither by digest nor by a lineage annotation"},
		{"an original name not there", attest.PatchWritten{Repository: "quarantine/app", Digest: plain.Digest,
			OriginalRepository: "quarantine/app", OriginalName: "quarantine/app:gone"}, "the original quarantine/app:gone"},
		{"an original digest not there", attest.PatchWritten{Repository: "quarantine/app", Digest: plain.Digest,
			OriginalRepository: "quarantine/app", Original: digest.FromString("gone")}, "the original: "},
		{"an index patched from an image", attest.PatchWritten{Repository: "quarantine/ix", Digest: origIdx.Digest,
			OriginalRepository: "quarantine/app", Original: orig.Digest, Plans: plans}, "its original quarantine/app@"},
		{"an index that differs nowhere", attest.PatchWritten{Repository: "quarantine/ix", Digest: origIdx.Digest,
			OriginalRepository: "quarantine/ix", Original: origIdx.Digest, Plans: plans}, "no platform of the index differs"},
	} {
		if res, err := f.k.SignPatch(ctx, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: signed %+v, %v; want an error saying %q", tc.name, res, err, tc.want)
		}
	}

	rebuild(t, f, func(*Options) {})
	if res, err := f.k.SignPatch(ctx, pw); res != nil || err != nil {
		t.Errorf("without a key: %+v, %v; want nothing done", res, err)
	}
}

// TestImportSourceAtTheLimit: a source of exactly maxSourceLen bytes is
// recorded (TestRecordImport refuses one byte more).
func TestImportSourceAtTheLimit(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.putScan("quarantine/app", d)
	source := "registry.invalid/" + strings.Repeat("a", maxSourceLen-len("registry.invalid/"))
	st, err := f.k.RecordImport(t.Context(), "carol", "quarantine/app:1", source)
	if err != nil || st.Scan.Source != source {
		t.Fatalf("a source of %d bytes: %+v, %v", len(source), st, err)
	}
}

// TestExceptionFileSizeLimit: an OpenVEX file of exactly
// maxExceptionFile bytes is read; one byte more is left out, and the
// error says why.
func TestExceptionFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, size := range map[string]int{"limit.json": maxExceptionFile, "over.json": maxExceptionFile + 1} {
		doc := vexDocument(strings.TrimSuffix(name, ".json"), vexStatement("CVE-2024-1", "quarantine/app", expires))
		doc += strings.Repeat(" ", size-len(doc))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewExceptionSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	ex, errs := s.Get()
	if got := exceptionIDs(ex); !slices.Equal(got, []string{"https://example.test/vex/limit#0"}) {
		t.Errorf("exceptions %q, want the one of limit.json", got)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "over.json") || !strings.Contains(errs[0].Error(), "over the 4194304-byte limit") {
		t.Errorf("errors %v, want over.json's size", errs)
	}
}

// TestTransientScanFailureRecordedAtTheLastAttempt: a scan that fails
// for a transient cause (a layer lost from the storage) is retried, and
// recorded as failed, not permanent, at the queue's last attempt (not
// before, and not never).
func TestTransientScanFailureRecordedAtTheLastAttempt(t *testing.T) {
	drv := inmemory.New()
	f := newFixture(t, fixtureOptions{driver: drv, queue: []jobs.Option{jobs.WithPollInterval(10 * time.Millisecond),
		jobs.WithMaxAttempts(2), jobs.WithRetryBackoff(func(int) time.Duration { return 10 * time.Millisecond })}})
	f.installDB(dbBuilt)
	ctx := t.Context()
	flaky := f.push("quarantine/flaky", "1", "flaky")
	d := flaky.Digest.String()
	lost := digest.FromBytes([]byte("layer of flaky"))
	if err := drv.Delete(ctx, "/docker/registry/v2/blobs/sha256/"+lost.Encoded()[:2]+"/"+lost.Encoded()); err != nil {
		t.Fatal(err)
	}
	id, err := f.k.Enqueue(ctx, "quarantine/flaky", "1", d, "arrival")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.queue.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.queue.Stop(context.WithoutCancel(ctx)) })
	var job jobs.Job
	for deadline := time.Now().Add(time.Minute); ; { // a guard against a hang, not a time decision
		js, _ := f.scanJobs()
		i := slices.IndexFunc(js, func(j jobs.Job) bool { return j.ID == id })
		if i >= 0 && slices.Contains([]jobs.State{jobs.StateCompleted, jobs.StateCancelled, jobs.StateDiscarded}, js[i].State) {
			job = js[i]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scan job did not end: %+v", js)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sc, err := f.store.Scan(ctx, d)
	if err != nil || sc.Error == "" || sc.Permanent {
		t.Fatalf("after the job ended (%s): stored scan %+v, %v; want a failure, not permanent", job.State, sc, err)
	}
	es := f.auditEntries(audit.ActionScan, d)
	if len(es) != 1 || es[0].Outcome != audit.OutcomeError {
		t.Fatalf("scan audit entries %+v, want one error", es)
	}
	var detail struct{ Attempt int }
	if err := json.Unmarshal(es[0].Detail, &detail); err != nil || detail.Attempt != 2 {
		t.Errorf("the failure recorded at attempt %d (%v), want the last, 2", detail.Attempt, err)
	}
}

// TestCutOffWithoutALimit: an attempt that knows no maximum is never the
// last one: one attempt cut off does not stop the next.
func TestCutOffWithoutALimit(t *testing.T) {
	if err := cutOff(jobs.Info{Attempt: 2, Rescued: 1}); err != nil {
		t.Errorf("cutOff without a maximum: %v", err)
	}
}

// TestScanLogsNothingWhenNothingFails: scanning an image and an index
// (their reports attached) logs no warning or error.
func TestScanLogsNothingWhenNothingFails(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var logs testenv.LockedBuffer
	rebuild(t, f, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	f.installDB(dbBuilt)
	img := f.pushOS("quarantine/app", "1", debianRelease, "app")
	idx := f.pushIndex("quarantine/ix", "1", on(f.pushOS("quarantine/ix", "", debianRelease, "amd64"), "linux/amd64"),
		f.pushAttestation("quarantine/ix", "att"))
	for repo, d := range map[string]ocispec.Descriptor{"quarantine/app": img, "quarantine/ix": idx} {
		if err := f.scanNow(repo, d); err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if refs, err := f.reg.Referrers(t.Context(), repo, d.Digest, ReportArtifactType); err != nil || len(refs) == 0 {
			t.Errorf("%s: no report attached: %v", repo, err)
		}
	}
	if out := logs.String(); out != "" {
		t.Errorf("warnings or errors logged where nothing failed:\n%s", out)
	}
}

// TestScanJobDecidesAndPromotes: the scan job itself (not the calls the
// other tests make one by one) audits the scan, decides and announces
// the verdict, and auto-promotes a passing digest under its tag.
func TestScanJobDecidesAndPromotes(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: HIGH\nautoPromote: true\n"})
	f.installDB(dbBuilt)
	ctx := t.Context()
	img := f.pushOS("quarantine/app", "1", debianRelease, "app")
	d := img.Digest.String()
	if err := f.k.runScan(ctx, ScanArgs{Repository: "quarantine/app", Tag: "1", Digest: d, Reason: "arrival"}); err != nil {
		t.Fatal(err)
	}
	es := f.auditEntries(audit.ActionScan, d)
	var detail struct {
		Reason    string
		Platforms int
	}
	if len(es) != 1 || es[0].Outcome != audit.OutcomeOK || json.Unmarshal(es[0].Detail, &detail) != nil ||
		detail.Reason != "arrival" || detail.Platforms != 1 {
		t.Errorf("scan audit entries %+v, want one ok of one platform, reason arrival", es)
	}
	if got := f.events.verdictEvents(d); !slices.Equal(got, []gate.State{gate.StatePass}) {
		t.Errorf("verdict events %v, want one pass", got)
	}
	if desc, _, err := f.reg.Manifest(ctx, "live/app", "1"); err != nil || desc.Digest != img.Digest {
		t.Errorf("live/app:1 = %s, %v; want the scanned digest, auto-promoted", desc.Digest, err)
	}
}

// TestUnjudgedErrorNamesWhere: the refusal of a manifest the gate cannot
// judge names its platform when it has one, and the nested index that
// lists it when that is not the scanned root.
func TestUnjudgedErrorNamesWhere(t *testing.T) {
	r, m, n := digest.FromString("root"), digest.FromString("manifest"), digest.FromString("nested")
	for _, tc := range []struct {
		e    UnjudgedError
		want string
	}{
		{UnjudgedError{Root: r, Manifest: m, Why: "is odd"}, "index " + r.String() + ": manifest " + m.String() + " is odd"},
		{UnjudgedError{Root: r, Manifest: m, Parent: r, Platform: "linux/arm64", Why: "is odd"},
			"index " + r.String() + ": manifest " + m.String() + " (platform linux/arm64) is odd"},
		{UnjudgedError{Root: r, Manifest: m, Parent: n, Why: "is odd"},
			"index " + r.String() + ": manifest " + m.String() + " in nested index " + n.String() + " is odd"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v:\n%s\nwant\n%s", tc.e, got, tc.want)
		}
	}
}

// TestScanErrorNamesTheIndexOnlyForAChild: a scan that fails on an image
// an index lists names the image, its platform and the index; the same
// failure of an image scanned by itself is not said to be of an index.
func TestScanErrorNamesTheIndexOnlyForAChild(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.installDB(dbBuilt)
	ctx := t.Context()
	bad := f.push("quarantine/app", "1", "not gzip") // its layer is no gzip stream: a permanent failure
	idx := f.pushIndex("quarantine/app", "2", on(bad, "linux/amd64"))
	for _, tc := range []struct {
		d      ocispec.Descriptor
		prefix string
	}{
		{bad, ""},
		{idx, fmt.Sprintf("image %s (platform %q) of index %s: ", bad.Digest, "linux/amd64", idx.Digest)},
	} {
		if err := f.scanNow("quarantine/app", tc.d); err == nil {
			t.Fatalf("the scan of %s did not fail", tc.d.Digest)
		}
		sc, err := f.store.Scan(ctx, tc.d.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sc.Error, tc.prefix) || strings.Contains(sc.Error[len(tc.prefix):], "of index") {
			t.Errorf("the scan of %s failed with %q, want it to begin %q and name no index after", tc.d.Digest, sc.Error, tc.prefix)
		}
	}
}

// TestExceptionSourceReadsOnlyChangedFiles: the exceptions are read again
// only when a file's stamp (size, modification time) changes: a rewrite
// that keeps both is not read (the proof that unchanged files are not
// read at each decision), one that changes the size is.
func TestExceptionSourceReadsOnlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ex.json")
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(id string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(vexDocument(id, vexStatement("CVE-2024-1", "quarantine/app", expires))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(s *ExceptionSource) []string {
		ex, errs := s.Get()
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		return exceptionIDs(ex)
	}
	write("aaaa")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewExceptionSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(s); !slices.Equal(got, []string{"https://example.test/vex/aaaa#0"}) {
		t.Fatalf("exceptions %q", got)
	}
	write("bbbb") // the same size
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := ids(s); !slices.Equal(got, []string{"https://example.test/vex/aaaa#0"}) {
		t.Errorf("exceptions %q after a rewrite with the same stamp, want the file not read again", got)
	}
	write("cc")
	if got := ids(s); !slices.Equal(got, []string{"https://example.test/vex/cc#0"}) {
		t.Errorf("exceptions %q after a change, want the file read again", got)
	}
}

// failingDeletes refuses every Delete while fail is set.
type failingDeletes struct {
	storagedriver.StorageDriver
	fail atomic.Bool
}

func (d *failingDeletes) Delete(ctx context.Context, path string) error {
	if d.fail.Load() {
		return errors.New("the storage refuses deletes")
	}
	return d.StorageDriver.Delete(ctx, path)
}

// TestPruneReportsReturnsFailedDeletes: an old scan report that cannot
// be deleted is an error of attachReport (the scan job logs it), not
// dropped; the next attachment prunes it.
func TestPruneReportsReturnsFailedDeletes(t *testing.T) {
	drv := &failingDeletes{StorageDriver: inmemory.New()}
	f := newFixture(t, fixtureOptions{driver: drv})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	attach := func(i int) error {
		rep := &scan.Report{Status: scan.StatusOK, ScannedAt: t0.Add(time.Duration(i) * time.Hour), Artifact: scan.Artifact{Digest: img.Digest.String()}}
		return f.k.attachReport(ctx, "quarantine/app", img, rep)
	}
	reports := func() int {
		refs, err := f.reg.Referrers(ctx, "quarantine/app", img.Digest, ReportArtifactType)
		if err != nil {
			t.Fatal(err)
		}
		return len(refs)
	}
	for i := range keepReports {
		if err := attach(i); err != nil {
			t.Fatal(err)
		}
	}
	drv.fail.Store(true)
	if err := attach(keepReports); err == nil || !strings.Contains(err.Error(), "refuses deletes") {
		t.Errorf("attaching a report whose oldest cannot be deleted: %v, want the delete's error", err)
	}
	if n := reports(); n != keepReports+1 {
		t.Errorf("%d reports attached, want %d (none deleted)", n, keepReports+1)
	}
	drv.fail.Store(false)
	if err := attach(keepReports + 1); err != nil {
		t.Fatal(err)
	}
	if n := reports(); n != keepReports {
		t.Errorf("%d reports attached, want %d", n, keepReports)
	}
}
