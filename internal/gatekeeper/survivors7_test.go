package gatekeeper

// Tests added for mutants that survived `make mutate` over promote.go,
// keeper.go, follow.go, exceptions.go, sweep.go and sign.go (seventh
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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// rebuild replaces f's keeper by a new one on the same registry, store,
// audit log, policy and exceptions directory, with the options set
// changes, and a new job queue (a queue takes each job kind once).
func rebuild(t *testing.T, f *fixture, set func(*Options)) {
	t.Helper()
	dbs, err := database.NewOpener(database.Config{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	q, err := jobs.Open(t.Context(), dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	ex, err := NewExceptionSource(f.vexDir)
	if err != nil {
		t.Fatal(err)
	}
	var ps *PolicySource
	if f.policy != nil {
		if ps, err = NewPolicySource(f.policy.path); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{Registry: f.reg, Store: f.store, Queue: q, Audit: f.audits, Events: f.events,
		Policy: ps, Exceptions: ex, DBPath: f.dbPath, Now: f.clock.Now}
	set(&o)
	if f.k, err = New(o); err != nil {
		t.Fatal(err)
	}
	f.queue = q
}

// TestNothingLoggedAsFailedWhenNothingFails: an arrival, a promotion with
// its followers and signatures, a signature that follows later and a
// sweep, none of which fails, log no warning and no error. The branches
// that only log a failure (recording the policy hash, an audit entry or
// event that is lost, followers not listed or copied, the signing of a
// promotion, a failed sweep) could each be negated without any test
// noticing: the negation logs the failure on every success.
func TestNothingLoggedAsFailedWhenNothingFails(t *testing.T) {
	key, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOptions{listen: true})
	var logs testenv.LockedBuffer
	rebuild(t, f, func(o *Options) {
		o.Key = key
		o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String())
	k1, _ := attest.GenerateKey(t0)
	f.signIn("quarantine/app", img, k1)
	p, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Signed == nil || p.SignError != "" || len(p.Followed) != 1 {
		t.Fatalf("promotion signed %+v (error %q), followed %+v; want signed, the .sig tag followed", p.Signed, p.SignError, p.Followed)
	}
	k2, _ := attest.GenerateKey(t0)
	f.signIn("quarantine/app", img, k2) // follows to live/ by itself
	if got := forms(f.verifyIn("live/app", img.Digest, k2)); got[attest.FormReferrer] != 1 || got[attest.FormTag] != 1 {
		t.Fatalf("a later signature in live/: %v, want one per form", got)
	}
	if err := f.k.runSweep(ctx, SweepArgs{}); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); out != "" {
		t.Errorf("warnings or errors logged where nothing failed:\n%s", out)
	}
}

// TestSweepFailureLogged: the sweep job logs a sweep that failed and
// returns nil (the next period decides again); a sweep cut off by its
// context is not logged as failed.
func TestSweepFailureLogged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool
		want   bool
	}{{"failed", false, true}, {"cancelled", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			var logs testenv.LockedBuffer
			rebuild(t, f, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
			if err := f.queue.Close(); err != nil { // the sweep cannot list the running jobs
				t.Fatal(err)
			}
			ctx := t.Context()
			if tc.cancel {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			if err := f.k.Sweep(ctx); err == nil {
				t.Fatal("a sweep over a closed queue succeeded")
			}
			if err := f.k.runSweep(ctx, SweepArgs{}); err != nil {
				t.Fatalf("runSweep = %v, want nil: a failed sweep is left to the next period", err)
			}
			if got := strings.Contains(logs.String(), `msg="gate sweep"`); got != tc.want {
				t.Errorf("failed sweep logged: %v, want %v; log:\n%s", got, tc.want, logs.String())
			}
		})
	}
}

// TestExceptionsThroughTheKeeper: exceptions created and revoked through
// the keeper (the API's path) are validated, stored, audited, and decide
// again exactly the verdicts they may change, in their scope; without an
// exception store every call says so.
func TestExceptionsThroughTheKeeper(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: MEDIUM\n"})
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Exceptions": func() error { _, err := f.k.Exceptions(ctx, exceptions.Filter{}); return err },
		"Exception":  func() error { _, err := f.k.Exception(ctx, 1); return err },
		"Export":     func() error { _, err := f.k.ExportExceptions(ctx, "alice", exceptions.Filter{}); return err },
		"Create":     func() error { _, err := f.k.CreateException(ctx, "alice", exceptions.Exception{}); return err },
		"Revoke":     func() error { _, err := f.k.RevokeException(ctx, "alice", 1); return err },
	} {
		if err := call(); !errors.Is(err, ErrNoExceptionStore) {
			t.Errorf("%s without an exception store: %v, want ErrNoExceptionStore", name, err)
		}
	}
	dbs, err := database.NewOpener(database.Config{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exs, err := exceptions.Open(ctx, dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exs.Close() })
	rebuild(t, f, func(o *Options) { o.ExceptionStore = exs })

	app := f.push("quarantine/app", "1", "app").Digest.String()
	other := f.push("quarantine/other", "1", "other").Digest.String()
	clean := f.push("quarantine/clean", "1", "clean").Digest.String()
	f.putScan("quarantine/app", app, highFinding)
	f.putScan("quarantine/other", other, highFinding)
	f.putScan("quarantine/clean", clean)
	for ref, want := range map[string]gate.State{"quarantine/app:1": gate.StateFail, "quarantine/other:1": gate.StateFail, "quarantine/clean:1": gate.StatePass} {
		if st := f.verdict(ref); st.Verdict.State != want {
			t.Fatalf("%s before any exception: %s, want %s", ref, st.Verdict.State, want)
		}
	}
	expires := t0.Add(30 * 24 * time.Hour)
	exc := func(scope exceptions.Scope, digest, repo, cve, pkg string) exceptions.Exception {
		return exceptions.Exception{Scope: scope, Digest: digest, Repository: repo, CVE: cve, Package: pkg,
			Justification: "vulnerable_code_not_in_execute_path", Reason: "not reachable", Expires: expires}
	}
	// decided lists the digests a change decided again, with their states.
	decided := func(c *ExceptionChange) map[string]gate.State {
		out := map[string]gate.State{}
		for _, im := range c.Verdicts {
			out[im.Digest] = im.Verdict.State
		}
		return out
	}
	exempt, fail := gate.StateExempt, gate.StateFail

	if _, err := f.k.CreateException(ctx, "alice", exc(exceptions.ScopeDigest, app, "", "", "")); !errors.Is(err, exceptions.ErrInvalid) {
		t.Fatalf("an exception naming no CVE and no package: %v, want ErrInvalid", err)
	}
	c, err := f.k.CreateException(ctx, "alice", exc(exceptions.ScopeDigest, app, "", "CVE-2024-1", ""))
	if err != nil {
		t.Fatal(err)
	}
	byDigest := c.Exception
	if byDigest.ID == 0 || byDigest.Author != "alice" || !byDigest.Created.Equal(t0) {
		t.Errorf("created %+v, want an ID, author alice, created at %s", byDigest, t0)
	}
	if got := decided(c); !maps(got, map[string]gate.State{app: exempt}) {
		t.Errorf("decided again after a digest exception: %v, want app exempt", got)
	}
	if im := f.image(app); im.Verdict.State != exempt || !slices.Contains(im.Verdict.Applied, exceptions.GateID(byDigest.ID)) {
		t.Errorf("app's stored verdict %+v, want exempt by %s", im.Verdict, exceptions.GateID(byDigest.ID))
	}
	es := f.auditEntries(audit.ActionException, app)
	if len(es) != 1 || es[0].Actor != "alice" || es[0].Reference != exceptions.GateID(byDigest.ID) || !strings.Contains(string(es[0].Detail), `"op":"create"`) {
		t.Errorf("exception audit entries %+v, want one create by alice", es)
	}

	c, err = f.k.CreateException(ctx, "alice", exc(exceptions.ScopeRepository, "", "quarantine/other", "CVE-2024-1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := decided(c); !maps(got, map[string]gate.State{other: exempt}) {
		t.Errorf("decided again after a repository exception: %v, want other exempt", got)
	}
	// A global exception decides again every failing or exempt verdict,
	// never a passing one.
	c, err = f.k.CreateException(ctx, "bob", exc(exceptions.ScopeGlobal, "", "", "", "libx"))
	if err != nil {
		t.Fatal(err)
	}
	global := c.Exception
	if got := decided(c); !maps(got, map[string]gate.State{app: exempt, other: exempt}) {
		t.Errorf("decided again after a global exception: %v, want app and other (exempt), not clean", got)
	}

	got, err := f.k.Exceptions(ctx, exceptions.Filter{})
	if err != nil || len(got) != 3 {
		t.Errorf("Exceptions: %d, %v; want 3", len(got), err)
	}
	if e, err := f.k.Exception(ctx, global.ID); err != nil || e.Package != "libx" || e.Author != "bob" {
		t.Errorf("Exception(%d) = %+v, %v", global.ID, e, err)
	}
	doc, err := f.k.ExportExceptions(ctx, "carol", exceptions.Filter{})
	if err != nil || !json.Valid(doc) || !strings.Contains(string(doc), "CVE-2024-1") || !strings.Contains(string(doc), "carol") {
		t.Errorf("ExportExceptions: %s, %v", doc, err)
	}

	// Revoking decides again the verdicts the exception was applied to.
	c, err = f.k.RevokeException(ctx, "alice", global.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Exception.Revoked.IsZero() || c.Exception.RevokedBy != "alice" {
		t.Errorf("revoked %+v", c.Exception)
	}
	if got := decided(c); !maps(got, map[string]gate.State{app: exempt, other: exempt}) {
		t.Errorf("decided again after revoking the global exception: %v, want app and other", got)
	}
	c, err = f.k.RevokeException(ctx, "alice", byDigest.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := decided(c); !maps(got, map[string]gate.State{app: fail}) {
		t.Errorf("decided again after revoking the digest exception: %v, want app fail", got)
	}
	if _, err := f.k.RevokeException(ctx, "alice", byDigest.ID); !errors.Is(err, exceptions.ErrRevoked) {
		t.Errorf("a second revocation: %v, want ErrRevoked", err)
	}
	if es := f.auditEntries(audit.ActionException, app); len(es) != 2 || !strings.Contains(string(es[1].Detail), `"op":"revoke"`) {
		t.Errorf("exception audit entries of app %+v, want create and revoke", es)
	}
	if st := f.verdict("quarantine/app:1"); st.Verdict.State != fail {
		t.Errorf("app after both revocations: %s, want fail", st.Verdict.State)
	}
}

// maps reports whether a and b hold the same entries.
func maps(a, b map[string]gate.State) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestFollowersOfARenamedPromotion: a digest promoted under another name
// (quarantine/app to live/web) is still fed by the repository it arrived
// in: a later signature pushed there follows to live/web, and a verdict
// asked through live/web is decided with quarantine/app's exceptions.
func TestFollowersOfARenamedPromotion(t *testing.T) {
	f := newFixture(t, fixtureOptions{listen: true, policy: "version: v1\nmaxSeverity: MEDIUM\n"})
	ctx := t.Context()
	doc := vexDocument("app", vexStatement("CVE-2024-1", "quarantine/app", t0.Add(30*24*time.Hour)))
	if err := os.WriteFile(filepath.Join(f.vexDir, "app.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	f.putScan("quarantine/app", d, highFinding)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Target: "live/web:1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	k1, _ := attest.GenerateKey(t0)
	f.signIn("quarantine/app", img, k1)
	if got := forms(f.verifyIn("live/web", img.Digest, k1)); got[attest.FormReferrer] != 1 || got[attest.FormTag] != 1 {
		t.Errorf("a signature pushed to quarantine/app after its promotion to live/web: %v in live/web, want one per form", got)
	}
	st := f.verdict("live/web:1")
	if st.Verdict.State != gate.StateExempt || len(st.Verdict.Applied) != 1 {
		t.Errorf("verdict through live/web: %+v, want exempt by quarantine/app's exception", st.Verdict)
	}
	if im := f.image(d); im.Repository != "quarantine/app" || im.Verdict.State != gate.StateExempt {
		t.Errorf("stored image %+v, want quarantine/app's, exempt", im)
	}
}

// TestVerdictAuditDetail: a verdict's audit entry names the exceptions
// applied, the exceptions expired and a pending flip, each only when
// there is one.
func TestVerdictAuditDetail(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: lenientPolicy})
	ctx := t.Context()
	app := f.push("quarantine/app", "1", "app").Digest.String()
	web := f.push("quarantine/web", "1", "web").Digest.String()
	f.putScan("quarantine/app", app, highFinding)
	f.putScan("quarantine/web", web, highFinding)
	// keys returns the optional keys of the detail of d's last verdict
	// entry.
	keys := func(d string) []string {
		t.Helper()
		es := f.auditEntries(audit.ActionVerdict, d)
		if len(es) == 0 {
			t.Fatalf("no verdict audit entry of %s", d)
		}
		var detail map[string]json.RawMessage
		if err := json.Unmarshal(es[len(es)-1].Detail, &detail); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range []string{"exceptions", "expiredExceptions", "pendingFlip"} {
			if _, ok := detail[k]; ok {
				out = append(out, k)
			}
		}
		return out
	}
	check := func(when, repo, d string, state gate.State, want ...string) {
		t.Helper()
		v, err := f.k.Reevaluate(ctx, repo, d)
		if err != nil {
			t.Fatal(err)
		}
		if v.State != state {
			t.Fatalf("%s: %s, want %s", when, v.State, state)
		}
		if got := keys(d); !slices.Equal(got, want) {
			t.Errorf("%s: verdict detail names %v, want %v", when, got, want)
		}
	}
	check("a plain pass", "quarantine/app", app, gate.StatePass)
	check("a plain pass", "quarantine/web", web, gate.StatePass)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/web:1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	doc := vexDocument("app", vexStatement("CVE-2024-1", "quarantine/app", t0.Add(2*time.Hour)))
	if err := os.WriteFile(filepath.Join(f.vexDir, "app.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	f.policy.write(stricterGrace)
	f.clock.Advance(time.Minute)
	check("exempt", "quarantine/app", app, gate.StateExempt, "exceptions")
	check("a promoted digest failing in its grace window", "quarantine/web", web, gate.StatePass, "pendingFlip")
	f.clock.Advance(3 * time.Hour)
	check("its exception expired", "quarantine/app", app, gate.StateFail, "expiredExceptions")
}

// TestPromotionAttestsTheScan: the promotion attestation names the scan
// the verdict was decided from: its time, the database build, and per
// image its status, number of findings and counts by severity.
func TestPromotionAttestsTheScan(t *testing.T) {
	key, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOptions{key: key, policy: "version: v1\nmaxSeverity: HIGH\n"})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	f.putScan("quarantine/app", d, highFinding)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	if es := f.auditEntries(audit.ActionPromotion, d); len(es) != 1 || !strings.Contains(string(es[0].Detail), `"signed":true`) {
		t.Errorf("promotion audit entries %+v, want one saying it was signed", es)
	}
	pub, err := attest.ParsePublicKey(KeyName, key.PublicPEM())
	if err != nil {
		t.Fatal(err)
	}
	pred, err := attest.RequirePromotion(ctx, f.reg, "live/app", img.Digest, pub)
	if err != nil {
		t.Fatal(err)
	}
	sc := pred.Scan
	if !sc.ScannedAt.Equal(t0) || !sc.DBBuiltAt.Equal(dbBuilt) || len(sc.Images) != 1 {
		t.Fatalf("attested scan %+v, want scanned at %s with the build of %s, one image", sc, t0, dbBuilt)
	}
	im := sc.Images[0]
	total := 0
	for _, n := range im.Counts {
		total += n
	}
	if im.Digest != d || im.Status != string(scan.StatusOK) || im.Findings != 1 ||
		total != 1 || im.Counts[string(vulndb.SeverityHigh)] != 1 {
		t.Errorf("attested image %+v, want %s, status ok, 1 finding counted as %s", im, d, vulndb.SeverityHigh)
	}
}

// TestVerifyThroughTheKeeper: Verify checks an image's signatures with
// drydock's key and the request's keys (an unnamed one is named by its
// place: "key 1"), and reports drydock's promotion attestation, never
// a verdict attestation signed by another key (a keeper without a key
// reports none); a key or root that does not parse is an invalid
// request.
func TestVerifyThroughTheKeeper(t *testing.T) {
	user, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	userPEM := string(user.PublicPEM())
	// setup pushes quarantine/app:1 with a scan, the user's signature and
	// the user's own "promotion" attestation.
	setup := func(f *fixture) ocispec.Descriptor {
		t.Helper()
		img := f.push("quarantine/app", "1", "app")
		f.putScan("quarantine/app", img.Digest.String())
		f.signIn("quarantine/app", img, user)
		forged, err := attest.VerdictStatement("quarantine/app", img.Digest, attest.VerdictPredicate{
			Source: "quarantine/app:1", Target: "live/app:1", Actor: "mallory"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := attest.Write(t.Context(), f.reg, "quarantine/app", img, user, attest.WriteRequest{
			Ref: "quarantine/app", Statements: []*attest.Statement{forged}, Now: f.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		return img
	}
	signers := func(res *VerifyResult) []string {
		var out []string
		for _, s := range res.Signatures {
			if s.Verified && s.Format == attest.FormatCosign && !slices.Contains(out, s.Signer) {
				out = append(out, s.Signer)
			}
		}
		slices.Sort(out)
		return out
	}

	key, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOptions{key: key})
	ctx := t.Context()
	img := setup(f)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	res, err := f.k.Verify(ctx, VerifyRequest{Ref: "live/app:1", Keys: []NamedPEM{{PEM: userPEM}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Repository != "live/app" || res.Reference != "1" || res.Digest != img.Digest.String() || res.DrydockKey != key.ID() {
		t.Errorf("verified %s %s %s with drydock key %q, want live/app 1 %s, %s", res.Repository, res.Reference, res.Digest, res.DrydockKey, img.Digest, key.ID())
	}
	if got := signers(res); !slices.Equal(got, []string{KeyName, "key 1"}) {
		t.Errorf("cosign signatures verified by %v, want drydock's and key 1's", got)
	}
	if res.Promotion == nil || res.Promotion.Actor != "bob" || res.Promotion.Source != "quarantine/app:1" {
		t.Errorf("promotion %+v, want drydock's attestation of bob's promotion", res.Promotion)
	}
	res, err = f.k.Verify(ctx, VerifyRequest{Ref: "live/app:1", Keys: []NamedPEM{{Name: "release", PEM: userPEM}}})
	if err != nil || !slices.Equal(signers(res), []string{KeyName, "release"}) {
		t.Errorf("with a named key: %v, %v", res, err)
	}
	for _, req := range []VerifyRequest{
		{Ref: "live/app:1", Keys: []NamedPEM{{Name: "bad", PEM: "not a key"}}},
		{Ref: "live/app:1", Roots: []string{"not a certificate"}},
		{Ref: "app"},
	} {
		if _, err := f.k.Verify(ctx, req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Verify(%+v) = %v, want ErrInvalidRequest", req, err)
		}
	}
	if _, err := f.k.Verify(ctx, VerifyRequest{Ref: "live/none:1"}); !errors.Is(err, ErrUnknownImage) {
		t.Errorf("Verify of an unknown image: %v, want ErrUnknownImage", err)
	}

	// Without a key of its own, the keeper reports no promotion, though
	// the user's attestation verifies with the user's key.
	f = newFixture(t, fixtureOptions{})
	setup(f)
	res, err = f.k.Verify(ctx, VerifyRequest{Ref: "quarantine/app:1", Keys: []NamedPEM{{PEM: userPEM}}})
	if err != nil {
		t.Fatal(err)
	}
	forgedVerified := slices.ContainsFunc(res.Signatures, func(s attest.Signature) bool {
		return s.Verified && s.Format == attest.FormatDSSE && s.PredicateType == attest.PredicateVerdict
	})
	if res.DrydockKey != "" || res.Promotion != nil || !forgedVerified {
		t.Errorf("without a key: drydock key %q, promotion %+v, user's attestation verified %v; want none, none, true", res.DrydockKey, res.Promotion, forgedVerified)
	}
}

// TestUnjudgedRefusalNamesTheRescan: a promotion refused because the
// stored scan did not judge an image the index holds says that a new
// scan is queued, and names its job.
func TestUnjudgedRefusalNamesTheRescan(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := t.Context()
	a := f.push("quarantine/multi", "a", "a")
	b := f.push("quarantine/multi", "b", "b")
	root := f.pushIndex("quarantine/multi", "legacy", on(a, "linux/amd64"), on(b, "linux/arm64"))
	// The stored scan of the index judged a only.
	f.putScan("quarantine/multi", a.Digest.String())
	sc, err := f.store.Scan(ctx, a.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	sc.Digest = root.Digest.String()
	if err := f.store.PutScan(ctx, *sc); err != nil {
		t.Fatal(err)
	}
	_, err = f.k.Promote(ctx, PromoteRequest{Source: "quarantine/multi:legacy", Actor: "alice"})
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), b.Digest.String()) {
		t.Fatalf("Promote: %v, want a refusal naming %s", err, b.Digest)
	}
	js, args := f.scanJobs()
	if len(js) != 1 || args[0].Digest != root.Digest.String() || args[0].Reason != "rescan" {
		t.Fatalf("scan jobs %+v, want the index's rescan", args)
	}
	if want := fmt.Sprintf("a new scan is queued (job %d)", js[0].ID); !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q does not say %q", err, want)
	}
}

// TestOneImageReasonsAreNotLabelled: the reasons of a single image's
// verdict are not prefixed with its digest (only an index's are, with
// each image's platform).
func TestOneImageReasonsAreNotLabelled(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: MEDIUM\n"})
	d := f.push("quarantine/app", "1", "app").Digest.String()
	f.putScan("quarantine/app", d, highFinding)
	st := f.verdict("quarantine/app:1")
	if st.Verdict.State != gate.StateFail || !hasRule(st.Verdict, gate.RuleMaxSeverity) {
		t.Fatalf("verdict %+v, want fail on maxSeverity", st.Verdict)
	}
	if r := reasonsText(st.Verdict); strings.Contains(r, d) {
		t.Errorf("reasons of one image name its digest: %s", r)
	}
}

// rescanningStore is the real store, except that once armed, the next
// decision it serializes is followed by a failed scan of that digest: a
// rescan ends in an error between a promotion's decision and its copy.
type rescanningStore struct {
	store.Store
	armed *atomic.Bool
}

func (s rescanningStore) Serialize(ctx context.Context, d string, fn func(context.Context) error) error {
	if err := s.Store.Serialize(ctx, d, fn); err != nil {
		return err
	}
	if !s.armed.CompareAndSwap(true, false) {
		return nil
	}
	return s.PutScan(ctx, store.Scan{Digest: d, Repository: "quarantine/app", Error: "rescan: reading a layer failed"})
}

// TestPromoteCopiesOnlyWhatTheStoredScanJudged: when the stored scan is
// replaced by a failed one after the decision, the copy finds nothing it
// judged and the promotion is refused; nothing reaches live/.
func TestPromoteCopiesOnlyWhatTheStoredScanJudged(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	armed := &atomic.Bool{}
	withStore(t, f, rescanningStore{Store: f.store, armed: armed})
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	d := img.Digest.String()
	f.putScan("quarantine/app", d)
	if st := f.verdict("quarantine/app:1"); st.Verdict.State != gate.StatePass {
		t.Fatalf("verdict %+v, want pass", st.Verdict)
	}
	armed.Store(true)
	_, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Actor: "bob"})
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "did not judge") {
		t.Fatalf("Promote after the scan failed: %v, want a refusal: the stored scan judged nothing", err)
	}
	if armed.Load() {
		t.Fatal("the failed rescan was not stored")
	}
	if f.inLive("live/app", img) || f.image(d).Promoted {
		t.Error("an image whose stored scan failed reached live/")
	}
}

// TestRequireSignedByRelativeToThePolicy: a relative key path in a policy
// file names a key beside the file; a key that does not load refuses
// every promotion, naming it.
func TestRequireSignedByRelativeToThePolicy(t *testing.T) {
	signer, err := attest.GenerateKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: HIGH\nrequireSignedBy: [release.pub]\n"})
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.policy.path), "release.pub"), signer.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	img := f.push("quarantine/app", "1", "app")
	f.putScan("quarantine/app", img.Digest.String())
	f.signIn("quarantine/app", img, signer)
	if _, err := f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1"}); err != nil {
		t.Fatalf("signed by the key beside the policy: %v", err)
	}
	f.policy.write("version: v1\nmaxSeverity: HIGH\nrequireSignedBy: [release.pub, missing.pub]\n")
	_, err = f.k.Promote(ctx, PromoteRequest{Source: "quarantine/app:1", Target: "live/other:1"})
	var refused *RefusedError
	if !errors.As(err, &refused) || !hasRule(refused.Verdict, gate.RuleRequireSignedBy) ||
		!strings.Contains(err.Error(), "keys do not load") || !strings.Contains(err.Error(), "missing.pub") {
		t.Errorf("with a key that does not load: %v, want a refusal naming it", err)
	}
}

// TestSweepReturnsWhatItCouldNotDo: a sweep that cannot look for stuck
// scans, queue a rescan or auto-promote a digest goes on with the rest
// and returns each failure.
func TestSweepReturnsWhatItCouldNotDo(t *testing.T) {
	t.Run("stuck scans and rescans", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{policy: lenientPolicy})
		d := f.push("quarantine/app", "1", "app").Digest.String()
		f.putScan("quarantine/app", d)
		f.verdict("quarantine/app:1")
		f.installDB(dbBuilt.Add(24 * time.Hour)) // the scan's build is older: a rescan is due
		if err := f.queue.Close(); err != nil {
			t.Fatal(err)
		}
		err := f.k.Sweep(t.Context())
		if err == nil || !strings.Contains(err.Error(), "finding stuck jobs") || !strings.Contains(err.Error(), "queue scan of quarantine/app@"+d) {
			t.Errorf("Sweep with a closed queue: %v, want both the stuck-scan and the rescan failures", err)
		}
	})
	t.Run("auto-promotion", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: CRITICAL\nautoPromote: true\n"})
		ctx := t.Context()
		img := f.push("quarantine/app", "1", "app")
		f.putScan("quarantine/app", img.Digest.String())
		if st := f.verdict("quarantine/app:1"); st.Verdict.State != gate.StatePass {
			t.Fatalf("verdict %+v, want pass", st.Verdict)
		}
		if err := f.reg.DeleteManifest(ctx, "quarantine/app", img.Digest); err != nil {
			t.Fatal(err)
		}
		if err := f.k.Sweep(ctx); err == nil {
			t.Error("Sweep auto-promoting a digest gone from quarantine/ returned no error")
		}
		if f.inLive("live/app", img) {
			t.Error("a digest gone from quarantine/ reached live/")
		}
	})
}

// holdingDriver holds every GetContent while held is set, until release
// is closed: scan jobs stay running as long as the test wants.
type holdingDriver struct {
	storagedriver.StorageDriver
	held    atomic.Bool
	release chan struct{}
}

func (d *holdingDriver) GetContent(ctx context.Context, path string) ([]byte, error) {
	if d.held.Load() {
		select {
		case <-d.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return d.StorageDriver.GetContent(ctx, path)
}

// TestSweepReportsEveryStuckScan: one sweep fails every stuck scan, not
// only the first it finds.
func TestSweepReportsEveryStuckScan(t *testing.T) {
	drv := &holdingDriver{StorageDriver: inmemory.New(), release: make(chan struct{})}
	// Four workers: the periodic sweep job, run at start, must not keep
	// either scan waiting.
	f := newFixture(t, fixtureOptions{driver: drv, queue: []jobs.Option{jobs.WithPollInterval(10 * time.Millisecond), jobs.WithWorkers(4)}})
	ctx := t.Context()
	ds := map[string]string{
		"quarantine/a": f.push("quarantine/a", "1", "a").Digest.String(),
		"quarantine/b": f.push("quarantine/b", "1", "b").Digest.String(),
	}
	drv.held.Store(true)
	for repo, d := range ds {
		if _, err := f.k.Enqueue(ctx, repo, "1", d, "arrival"); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	release := func() { once.Do(func() { close(drv.release) }) }
	t.Cleanup(release)
	if err := f.queue.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var latest time.Time
	for deadline := time.Now().Add(time.Minute); ; { // a guard against a hang, not a time decision
		js, _ := f.scanJobs()
		running := 0
		for _, j := range js {
			if j.State == jobs.StateRunning && !j.AttemptedAt.IsZero() {
				running++
				if j.AttemptedAt.After(latest) {
					latest = j.AttemptedAt
				}
			}
		}
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan jobs not both running: %+v", js)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.clock.Set(latest.Add(16 * time.Minute))
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := f.events.ofType(events.TypeScanStuck); len(ev) != 2 {
		t.Errorf("%d stuck-scan events after one sweep, want 2: %+v", len(ev), ev)
	}
	for repo, d := range ds {
		if sc, err := f.store.Scan(ctx, d); err != nil || !strings.Contains(sc.Error, "scan stuck") {
			t.Errorf("%s: stored scan %+v, %v; want a stuck error", repo, sc, err)
		}
	}
	release()
	if err := f.queue.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIndexReasonsNamedByPlatform: an index's reasons are labelled by
// each image's platform alone when the platform tells the images apart.
func TestIndexReasonsNamedByPlatform(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: "version: v1\nmaxSeverity: MEDIUM\n"})
	ctx := t.Context()
	a := f.push("quarantine/multi", "a", "a")
	b := f.push("quarantine/multi", "b", "b")
	root := f.pushIndex("quarantine/multi", "1", on(a, "linux/amd64"), on(b, "linux/arm64"))
	now := f.clock.Now()
	rep := &scan.Report{Status: scan.StatusOK, ScannedAt: now, Findings: []scan.Finding{highFinding}, DB: scan.DBInfo{BuiltAt: dbBuilt}}
	if err := f.store.PutScan(ctx, store.Scan{Digest: root.Digest.String(), Repository: "quarantine/multi", ScannedAt: now,
		Reports: []store.PlatformReport{{Platform: "linux/amd64", Digest: a.Digest.String(), Report: rep}, {Platform: "linux/arm64", Digest: b.Digest.String(), Report: rep}}}); err != nil {
		t.Fatal(err)
	}
	st := f.verdict("quarantine/multi:1")
	r := reasonsText(st.Verdict)
	if st.Verdict.State != gate.StateFail || !strings.Contains(r, "linux/amd64: ") || !strings.Contains(r, "linux/arm64: ") ||
		strings.Contains(r, a.Digest.String()) || strings.Contains(r, b.Digest.String()) {
		t.Errorf("verdict %s, reasons:\n%s\nwant fail, each reason labelled by its platform alone", st.Verdict.State, r)
	}
}
