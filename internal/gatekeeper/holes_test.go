package gatekeeper

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/events"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/jobs"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
)

// The tests of this file scan small real images with the real scanner
// and a vulnerability database that knows Debian 12 and no
// vulnerability: a Debian image passes the built-in policy, an image of
// an OS the scanner does not support fails it ("unsupported").

const (
	debianRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"
	plan9Release  = "ID=plan9\nVERSION_ID=\"4\"\n"
	dpkgStatus    = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\n"
)

// pushOS stores in repo an image whose one layer holds os-release and,
// for Debian, a dpkg status; seed makes it distinct. tag may be "".
func (f *fixture) pushOS(repo, tag, osRelease, seed string) ocispec.Descriptor {
	f.t.Helper()
	ctx := f.t.Context()
	files := map[string]string{"etc/os-release": osRelease, "etc/seed": seed}
	if strings.Contains(osRelease, "ID=debian") {
		files["var/lib/dpkg/status"] = dpkgStatus
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			f.t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.t.Fatal(err)
	}
	diffID := digest.FromBytes(raw.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		f.t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		f.t.Fatal(err)
	}
	layer, err := f.reg.PutBlob(ctx, repo, gz.Bytes())
	if err != nil {
		f.t.Fatal(err)
	}
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	cfg, err := f.reg.PutBlob(ctx, repo, []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, diffID)))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.MediaType = ocispec.MediaTypeImageConfig
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	return f.putManifest(repo, m, tags...)
}

// pushAttestation stores a build attestation as buildx lists it in an
// index under unknown/unknown: a non-runnable artifact.
func (f *fixture) pushAttestation(repo, seed string) ocispec.Descriptor {
	f.t.Helper()
	ctx := f.t.Context()
	body, err := f.reg.PutBlob(ctx, repo, []byte(`{"_type":"https://in-toto.io/Statement/v0.1","seed":"`+seed+`"}`))
	if err != nil {
		f.t.Fatal(err)
	}
	body.MediaType = "application/vnd.in-toto+json"
	cfg, err := f.reg.PutBlob(ctx, repo, []byte("{}"))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.MediaType = "application/vnd.in-toto+json"
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{body}}
	m.SchemaVersion = 2
	return f.putManifest(repo, m)
}

// pushIndex stores an index of children in repo.
func (f *fixture) pushIndex(repo, tag string, children ...ocispec.Descriptor) ocispec.Descriptor {
	f.t.Helper()
	ix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	ix.SchemaVersion = 2
	b, err := json.Marshal(ix)
	if err != nil {
		f.t.Fatal(err)
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	d, err := f.reg.PutManifest(f.t.Context(), repo, ocispec.MediaTypeImageIndex, b, tags...)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func on(d ocispec.Descriptor, plat string) ocispec.Descriptor {
	os, arch, _ := strings.Cut(plat, "/")
	d.Platform = &ocispec.Platform{OS: os, Architecture: arch}
	return d
}

// scanNow runs the scan job of repo@d to its end and returns its error.
func (f *fixture) scanNow(repo string, d ocispec.Descriptor) error {
	f.t.Helper()
	return f.k.runScan(f.t.Context(), ScanArgs{Repository: repo, Digest: d.Digest.String(), Reason: "arrival"})
}

func (f *fixture) inLive(repo string, d ocispec.Descriptor) bool {
	_, _, err := f.reg.Manifest(f.t.Context(), repo, d.Digest.String())
	return err == nil
}

func reasonsText(v gate.Verdict) string { return strings.Join(reasonSummary(v.Reasons), "\n") }

// TestIndexVerdictCoversEverything is hole 2 of #12: an index's verdict
// covers every manifest reachable from it — nested indexes and platform
// unknown/unknown included — and names the manifest that fails it;
// promotion copies exactly what was judged.
func TestIndexVerdictCoversEverything(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.installDB(dbBuilt)
	ctx := t.Context()
	const repo = "quarantine/multi"
	good := f.pushOS(repo, "", debianRelease, "good")
	bad := f.pushOS(repo, "", plan9Release, "bad")
	att := f.pushAttestation(repo, "att")

	t.Run("a failing image in a nested index", func(t *testing.T) {
		nested := f.pushIndex(repo, "", on(bad, "linux/amd64"))
		root := f.pushIndex(repo, "nested", on(good, "linux/amd64"), on(nested, "linux/amd64"), on(att, "unknown/unknown"))
		if err := f.scanNow(repo, root); err != nil {
			t.Fatal(err)
		}
		st := f.verdict(repo + ":nested")
		if st.Verdict.State != gate.StateFail || len(st.Scan.Platforms) != 2 {
			t.Fatalf("verdict %+v, scanned %+v", st.Verdict, st.Scan.Platforms)
		}
		// Both children claim linux/amd64: the reason names the digest.
		if r := reasonsText(st.Verdict); !strings.Contains(r, "linux/amd64 "+bad.Digest.String()+": ") || !hasRule(st.Verdict, gate.RuleUnsupported) {
			t.Errorf("reasons do not name the failing nested image %s:\n%s", bad.Digest, r)
		}
		if _, err := f.k.Promote(ctx, PromoteRequest{Source: repo + ":nested"}); !errors.As(err, new(*RefusedError)) {
			t.Fatalf("Promote: %v", err)
		}
		for _, d := range []ocispec.Descriptor{root, nested, good, bad, att} {
			if f.inLive("live/multi", d) {
				t.Errorf("%s in live/ after a refused promotion", d.Digest)
			}
		}
	})

	t.Run("a failing image under unknown/unknown", func(t *testing.T) {
		hidden := f.pushOS(repo, "", plan9Release, "hidden")
		root := f.pushIndex(repo, "hidden", on(good, "linux/amd64"), on(hidden, "unknown/unknown"), on(att, "unknown/unknown"))
		if err := f.scanNow(repo, root); err != nil {
			t.Fatal(err)
		}
		st := f.verdict(repo + ":hidden")
		if st.Verdict.State != gate.StateFail || !strings.Contains(reasonsText(st.Verdict), "unknown/unknown "+hidden.Digest.String()+": ") {
			t.Errorf("verdict %+v", st.Verdict)
		}
	})

	t.Run("a passing index is promoted whole, nothing more", func(t *testing.T) {
		other := f.pushOS(repo, "", debianRelease, "other")
		nested := f.pushIndex(repo, "", on(other, "linux/arm64"))
		root := f.pushIndex(repo, "ok", on(good, "linux/amd64"), on(nested, "linux/arm64"), on(att, "unknown/unknown"))
		if err := f.scanNow(repo, root); err != nil {
			t.Fatal(err)
		}
		if st := f.verdict(repo + ":ok"); st.Verdict.State != gate.StatePass || len(st.Scan.Platforms) != 2 {
			t.Fatalf("verdict %+v, scanned %+v", st.Verdict, st.Scan.Platforms)
		}
		p, err := f.k.Promote(ctx, PromoteRequest{Source: repo + ":ok", Actor: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []ocispec.Descriptor{root, nested, good, other, att} {
			if !f.inLive("live/multi", d) {
				t.Errorf("%s missing from live/", d.Digest)
			}
		}
		if f.inLive("live/multi", bad) {
			t.Error("an image not in the promoted index reached live/")
		}
		if p.Copy.Manifests != 5+2 { // the index's content and one scan report per image
			t.Errorf("copied %d manifests, want 7: %+v", p.Copy.Manifests, p.Copy)
		}
	})

	t.Run("a stored scan that did not judge a child", func(t *testing.T) {
		// As a scan from before the gate walked nested indexes left it:
		// only the top-level platform image was scanned.
		extra := f.pushOS(repo, "", debianRelease, "extra")
		root := f.pushIndex(repo, "legacy", on(good, "linux/amd64"), on(extra, "unknown/unknown"))
		f.putScan(repo, good.Digest.String())
		sc, _ := f.store.Scan(ctx, good.Digest.String())
		sc.Digest = root.Digest.String()
		if err := f.store.PutScan(ctx, *sc); err != nil {
			t.Fatal(err)
		}
		if st := f.verdict(repo + ":legacy"); st.Verdict.State != gate.StatePass {
			t.Fatalf("legacy verdict %+v", st.Verdict)
		}
		_, err := f.k.Promote(ctx, PromoteRequest{Source: repo + ":legacy", Actor: "alice"})
		var refused *RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), extra.Digest.String()) || !strings.Contains(err.Error(), "did not judge") {
			t.Fatalf("Promote: %v", err)
		}
		if f.inLive("live/multi", root) || f.inLive("live/multi", extra) {
			t.Error("a promotion refused for an unjudged child wrote to live/")
		}
		if f.image(root.Digest.String()).Promoted {
			t.Error("marked promoted")
		}
		_, args := f.scanJobs()
		if !slices.ContainsFunc(args, func(a ScanArgs) bool { return a.Digest == root.Digest.String() && a.Reason == "rescan" }) {
			t.Errorf("no rescan queued: %+v", args)
		}
	})

	t.Run("a missing child fails the index for good", func(t *testing.T) {
		gone := f.pushOS(repo, "", debianRelease, "gone")
		root := f.pushIndex(repo, "gone", on(good, "linux/amd64"), on(gone, "linux/arm64"))
		if err := f.reg.DeleteManifest(ctx, repo, gone.Digest); err != nil {
			t.Fatal(err)
		}
		err := f.scanNow(repo, root)
		if !errors.Is(err, jobs.Permanent(errors.New("x"))) {
			t.Fatalf("scan: %v, want a permanent failure", err)
		}
		sc, _ := f.store.Scan(ctx, root.Digest.String())
		if sc == nil || !sc.Permanent || !strings.Contains(sc.Error, gone.Digest.String()) || !strings.Contains(sc.Error, "missing") {
			t.Errorf("stored scan %+v", sc)
		}
		if k, ok := refusal.KindOf(err); !ok || k != refusal.Corrupt {
			t.Errorf("refusal kind of a missing child: %q, %v", k, ok)
		}
		if st := f.verdict(repo + ":gone"); st.Verdict.State != gate.StateFail || !strings.Contains(reasonsText(st.Verdict), gone.Digest.String()) {
			t.Errorf("verdict %+v", st.Verdict)
		}
	})
}

// TestReferrerRule is hole 3 of #12: at every promotion of a digest, a
// referrer follows it into live/ only if it is a non-runnable artifact
// or passed the gate itself; an image carried as a referrer that did not
// is left behind, audited and announced.
func TestReferrerRule(t *testing.T) {
	f := newFixture(t, fixtureOptions{listen: true})
	f.installDB(dbBuilt)
	ctx := t.Context()
	const repo = "quarantine/app"
	img := f.pushOS(repo, "1", debianRelease, "app")
	sbom := f.pushReferrer(repo, img, "application/spdx+json")
	subj := func(m *ocispec.Manifest) {
		m.Subject = &ocispec.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size}
		m.ArtifactType = "application/vnd.example.innocent"
	}
	bad := f.withSubject(repo, f.pushOS(repo, "", plan9Release, "smuggled"), subj)
	good := f.withSubject(repo, f.pushOS(repo, "", debianRelease, "also-good"), subj)
	for _, d := range []ocispec.Descriptor{img, bad, good} {
		if err := f.scanNow(repo, d); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := f.k.Reevaluate(ctx, repo, bad.Digest.String()); v.State != gate.StateFail {
		t.Fatalf("the smuggled image's own verdict: %+v", v)
	}
	for i, target := range []string{"live/app:1", "live/other:1"} {
		p, err := f.k.Promote(ctx, PromoteRequest{Source: repo + ":1", Target: target, Actor: "mallory"})
		if err != nil {
			t.Fatal(err)
		}
		dst, _, _ := strings.Cut(target, ":")
		for _, c := range []struct {
			d    ocispec.Descriptor
			want bool
		}{{img, true}, {sbom, true}, {good, true}, {bad, false}} {
			if f.inLive(dst, c.d) != c.want {
				t.Errorf("%s: %s in %s: %v, want %v", target, c.d.Digest, dst, !c.want, c.want)
			}
		}
		if len(p.Copy.LeftBehind) != 1 || p.Copy.LeftBehind[0].Referrer.Digest != bad.Digest {
			t.Errorf("%s: left behind %+v", target, p.Copy.LeftBehind)
		}
		var refusals []audit.Entry
		for _, e := range f.auditEntries(audit.ActionPromotion, bad.Digest.String()) {
			if e.Outcome == audit.OutcomeRefused && e.Actor == "mallory" && strings.Contains(string(e.Detail), `"referrerOf":"`+img.Digest.String()) &&
				strings.Contains(string(e.Detail), "unsupported") {
				refusals = append(refusals, e)
			}
		}
		if len(refusals) != i+1 {
			t.Errorf("%s: %d audited refusals of the smuggled referrer, want %d", target, len(refusals), i+1)
		}
	}
	if !f.image(good.Digest.String()).Promoted || f.image(bad.Digest.String()).Promoted {
		t.Error("promoted marks of the image referrers are wrong")
	}
	n := 0
	for _, e := range f.events.ofType(events.TypeBypassRefused) {
		if m, _ := e.Data.(map[string]any); m["kind"] == "referrer" && m["digest"] == bad.Digest.String() {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d referrer refusal events, want 2", n)
	}

	// The gate's own writes (the reports it attached) were notified as
	// the gate's and queued no scan; every image push queued one.
	_, args := f.scanJobs()
	f.mu.Lock()
	defer f.mu.Unlock()
	reports := 0
	for _, p := range f.pushes {
		switch {
		case strings.HasPrefix(p.repo, "live/"):
			if !p.gate {
				t.Errorf("a write to %s not marked as the gate's", p.repo)
			}
		case p.gate:
			reports++
			if slices.ContainsFunc(args, func(a ScanArgs) bool { return a.Digest == p.digest }) {
				t.Errorf("the gate's own write %s queued a scan", p.digest)
			}
		}
	}
	if reports != 3 {
		t.Errorf("%d gate writes to quarantine/ notified, want the 3 scan reports", reports)
	}
	for _, d := range []ocispec.Descriptor{img, bad, good} {
		if !slices.ContainsFunc(args, func(a ScanArgs) bool { return a.Digest == d.Digest.String() }) {
			t.Errorf("the push of %s queued no scan", d.Digest)
		}
	}
}

// withSubject stores again the image d of repo with its manifest changed
// by edit (a subject, an artifactType) and returns the new descriptor.
func (f *fixture) withSubject(repo string, d ocispec.Descriptor, edit func(*ocispec.Manifest)) ocispec.Descriptor {
	f.t.Helper()
	_, body, err := f.reg.Manifest(f.t.Context(), repo, d.Digest.String())
	if err != nil {
		f.t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		f.t.Fatal(err)
	}
	edit(&m)
	return f.putManifest(repo, m)
}

// TestScanFailures is hole 5, the gate's side: a deterministic failure
// is recorded at once, for good (not retried, not queued again at the
// next start nor at arrival); a transient one is retried; attempts that
// died with the server count, durably, towards a permanent failure.
func TestScanFailures(t *testing.T) {
	drv := inmemory.New()
	f := newFixture(t, fixtureOptions{driver: drv})
	f.installDB(dbBuilt)
	ctx := t.Context()

	// Transient: the layer's bytes are gone from the storage (a storage
	// fault); the attempt fails and the job retries it (nothing recorded
	// yet).
	flaky := f.push("quarantine/flaky", "1", "flaky")
	lost := digest.FromBytes([]byte("layer of flaky"))
	if err := drv.Delete(ctx, "/docker/registry/v2/blobs/sha256/"+lost.Encoded()[:2]+"/"+lost.Encoded()); err != nil {
		t.Fatal(err)
	}
	if err := f.scanNow("quarantine/flaky", flaky); err == nil || errors.Is(err, jobs.Permanent(errors.New("x"))) {
		t.Fatalf("scan of a lost layer: %v, want an error the job retries", err)
	}
	// A layer that is the bytes its digest names but no gzip stream fails
	// the same way every time: corrupt, permanent.
	bad := f.push("quarantine/notgzip", "1", "not gzip")
	if err := f.scanNow("quarantine/notgzip", bad); !errors.Is(err, jobs.Permanent(errors.New("x"))) {
		t.Fatalf("scan of a layer that is not gzip: %v, want a permanent failure", err)
	}
	if _, err := f.store.Scan(ctx, flaky.Digest.String()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a retried attempt recorded a scan: %v", err)
	}

	// Permanent: a deterministic error (an index without any image).
	att := f.pushAttestation("quarantine/empty", "a")
	empty := f.pushIndex("quarantine/empty", "1", on(att, "unknown/unknown"))
	if err := f.scanNow("quarantine/empty", empty); !errors.Is(err, jobs.Permanent(errors.New("x"))) {
		t.Fatalf("scan of an index without images: %v", err)
	}
	sc, _ := f.store.Scan(ctx, empty.Digest.String())
	if sc == nil || !sc.Permanent || !strings.Contains(sc.Error, "holds no image") {
		t.Fatalf("stored scan %+v", sc)
	}
	st := f.verdict("quarantine/empty:1")
	if st.Verdict.State != gate.StateFail || !strings.Contains(reasonsText(st.Verdict), "holds no image") {
		t.Errorf("verdict %+v", st.Verdict)
	}
	// A transient failure stored after the last attempt, for comparison.
	if err := f.store.PutScan(ctx, store.Scan{Digest: flaky.Digest.String(), Repository: "quarantine/flaky", Error: "registry unavailable"}); err != nil {
		t.Fatal(err)
	}
	f.k.Reevaluate(ctx, "quarantine/flaky", flaky.Digest.String())
	// The first sweep of a process retries failed scans, but not this one;
	// neither does its arrival again.
	if err := f.k.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.k.ManifestPushed(ctx, "quarantine/empty", "2", empty); err != nil {
		t.Fatal(err)
	}
	_, args := f.scanJobs()
	if slices.ContainsFunc(args, func(a ScanArgs) bool { return a.Digest == empty.Digest.String() }) {
		t.Errorf("a permanent failure was queued again: %+v", args)
	}
	if !slices.ContainsFunc(args, func(a ScanArgs) bool { return a.Digest == flaky.Digest.String() && a.Reason == "retry" }) {
		t.Errorf("a transient failure was not retried at the first sweep: %+v", args)
	}
	// An explicit rescan still runs it.
	if _, err := f.k.Rescan(ctx, "quarantine/empty:1"); err != nil {
		t.Fatal(err)
	}
	if _, args := f.scanJobs(); !slices.ContainsFunc(args, func(a ScanArgs) bool { return a.Digest == empty.Digest.String() && a.Reason == "rescan" }) {
		t.Errorf("rescan queued nothing: %+v", args)
	}
}

func TestCutOff(t *testing.T) {
	tests := []struct {
		info jobs.Info
		want bool
	}{
		{jobs.Info{Attempt: 1, MaxAttempts: 5}, false},
		{jobs.Info{Attempt: 2, MaxAttempts: 5, Rescued: 1}, false},
		{jobs.Info{Attempt: 3, MaxAttempts: 5, Rescued: 2}, true},
		{jobs.Info{Attempt: 5, MaxAttempts: 5, Rescued: 1}, true},
		{jobs.Info{Attempt: 5, MaxAttempts: 5}, false},
		{jobs.Info{}, false},
	}
	for _, tt := range tests {
		err := cutOff(tt.info)
		var c *CutOffError
		if got := errors.As(err, &c); got != tt.want {
			t.Errorf("cutOff(%+v) = %v, want cut off %v", tt.info, err, tt.want)
		}
		if err != nil && (!refusal.IsPermanent(err) || !strings.Contains(err.Error(), "drydock rescan")) {
			t.Errorf("cutOff(%+v) = %v: not permanent or without the way out", tt.info, err)
		}
	}
}

// TestPermanentClassification: errors.As against interface{ Permanent()
// bool } sees through wrapping, as the scanner's typed errors will be
// wrapped by the walk and the job.
func TestPermanentClassification(t *testing.T) {
	u := &UnjudgedError{Root: digest.FromString("r"), Manifest: digest.FromString("m"), Why: "is odd"}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{u, true},
		{fmt.Errorf("image x of index y: %w", u), true},
		{&CutOffError{Attempts: 2}, true},
		{fmt.Errorf("scanning: %w", refusal.New(refusal.OverLimit, "over the package limit: %d installed packages, limit %d", 160000, 20000)), true},
		{fmt.Errorf("scan: %w", permanentish{true}), true},
		{permanentish{false}, false},
		{errors.New("connection reset"), false},
		{fmt.Errorf("%w at db: run update", errNoDB), false},
		{registry.ErrNotFound, false},
	} {
		if got := refusal.IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// permanentish is an error that says whether it is permanent, as
// scan's validation and limit errors do.
type permanentish struct{ p bool }

func (e permanentish) Error() string   { return fmt.Sprintf("permanent=%v", e.p) }
func (e permanentish) Permanent() bool { return e.p }

// TestScanOptionsApply: Options.ScanOptions reach the scanner of every
// scan (the seam gate.limits uses): here a maximum database age the test
// database is past, which the stored report shows.
func TestScanOptionsApply(t *testing.T) {
	for _, tt := range []struct {
		opts      []scan.Option
		wantStale bool
	}{{nil, false}, {[]scan.Option{scan.WithMaxDBAge(time.Hour)}, true}} {
		f := newFixture(t, fixtureOptions{scanOpts: tt.opts})
		f.installDB(dbBuilt)
		img := f.pushOS("quarantine/app", "1", debianRelease, "app")
		if err := f.scanNow("quarantine/app", img); err != nil {
			t.Fatal(err)
		}
		sc, err := f.store.Scan(t.Context(), img.Digest.String())
		if err != nil || len(sc.Reports) != 1 {
			t.Fatalf("scan %+v, %v", sc, err)
		}
		if got := sc.Reports[0].Report.DB.Stale; got != tt.wantStale {
			t.Errorf("with %d scan options: report DB stale %v, want %v", len(tt.opts), got, tt.wantStale)
		}
	}
}
