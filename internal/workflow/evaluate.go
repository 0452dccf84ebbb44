package workflow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/version"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// ErrNoDB means there is no vulnerability database to scan with.
var ErrNoDB = errors.New("no vulnerability database")

// artifact is an image or an index read from the registry.
type artifact struct {
	Repo, Ref string
	Digest    string
	Image     v1.Image
	Index     v1.ImageIndex
}

func (a *artifact) String() string { return a.Repo + ":" + a.Ref }

// env is what one job scans and patches with: the vulnerability DB opened
// once, the release data, the run's archive client.
type env struct {
	e        *Engine
	db       *vulndb.DB
	scanner  *scan.Scanner
	releases []vulndb.Release
	http     *http.Client
	log      func(string)
	// scans and plans remember results by digest for the job: tags of
	// one image (an original and its stale patches) are read once.
	scans map[string]*findings
	plans map[string]*PatchOutcome
}

// openEnv opens the vulnerability database for a job; close it after.
func (e *Engine) openEnv(ctx context.Context, client *http.Client, log func(string)) (*env, error) {
	if _, err := os.Stat(e.o.DBPath); err != nil {
		return nil, fmt.Errorf("%w at %s: run `drydock db update` on the server", ErrNoDB, e.o.DBPath)
	}
	db, err := vulndb.Open(e.o.DBPath)
	if err != nil {
		return nil, fmt.Errorf("opening the vulnerability database: %w", err)
	}
	opts := append(slices.Clone(e.o.ScanOptions), scan.WithClock(e.clock.Now), scan.WithDBPath(e.o.DBPath), scan.WithIgnoreUnfixed(true), scan.WithPkgTypes("os"))
	if e.o.InventoryCache != nil {
		opts = append(opts, scan.WithInventoryCache(e.o.InventoryCache))
	}
	sc, err := scan.New(db, opts...)
	if err != nil {
		db.Close()
		return nil, err
	}
	var rels []vulndb.Release
	for _, d := range []string{"debian", "ubuntu"} {
		rs, err := db.Releases(ctx, d)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("reading release data: %w", err)
		}
		rels = append(rels, rs...)
	}
	if log == nil {
		log = func(string) {}
	}
	return &env{e: e, db: db, scanner: sc, releases: rels, http: client, log: log,
		scans: map[string]*findings{}, plans: map[string]*PatchOutcome{}}, nil
}

func (v *env) Close() { v.db.Close() }

// read reads repo:ref from the registry, in process.
func (e *Engine) read(ctx context.Context, repo, ref string) (*artifact, error) {
	desc, err := e.o.Registry.Resolve(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	r, err := name.NewDigest(registry.InternalHost+"/"+repo+"@"+desc.Digest.String(), name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("reference %s@%s: %w", repo, desc.Digest, err)
	}
	d, err := remote.Get(r, remote.WithTransport(e.o.Registry.Transport()), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading %s:%s: %w", repo, ref, err)
	}
	a := &artifact{Repo: repo, Ref: ref, Digest: desc.Digest.String()}
	if d.MediaType.IsIndex() {
		a.Index, err = d.ImageIndex()
	} else {
		a.Image, err = d.Image()
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s:%s: %w", repo, ref, err)
	}
	return a, nil
}

// findings is the fixable side of a scan of every platform.
type findings struct {
	counts Counts
	ids    []string
	// wanted maps each fixable package to the highest fixed version.
	wanted map[string]string
	// os, support: of the first platform; eol and unsupported are set
	// when any platform is.
	os, support, supportEnd string
	eol, unsupported        bool
	reason                  string
}

// scanArtifact scans every platform image of a (Trivy's --ignore-unfixed,
// OS packages, no severity filter).
func (v *env) scanArtifact(ctx context.Context, a *artifact) (*findings, error) {
	if f, ok := v.scans[a.Digest]; ok && a.Digest != "" {
		return f, nil
	}
	imgs, err := platforms(a)
	if err != nil {
		return nil, err
	}
	f := &findings{counts: Counts{}, wanted: map[string]string{}}
	seen := map[string]bool{}
	for _, img := range imgs {
		rep, err := v.scanImage(ctx, img, false)
		if err != nil {
			return nil, fmt.Errorf("scanning %s: %w", a, err)
		}
		if f.os == "" {
			f.os = strings.TrimSpace(rep.OS.ID + " " + rep.OS.Version)
			f.support = rep.Support.State
			if !rep.Support.Until.IsZero() {
				f.supportEnd = rep.Support.Until.Format(time.DateOnly)
			}
		}
		switch rep.Status {
		case scan.StatusEndOfLife:
			f.eol = true
			end := rep.Support.PublicSupportEnded
			if end.IsZero() {
				end = rep.Support.Until
			}
			f.supportEnd = end.Format(time.DateOnly)
			f.reason = fmt.Sprintf("end of life: public security support for %s ended on %s; the archive publishes no more fixes (move to a supported release)", cmp.Or(f.os, "this release"), f.supportEnd)
		case scan.StatusUnsupported:
			f.unsupported = true
			f.reason = withPrefix("unsupported OS", cmp.Or(rep.StatusReason, "drydock does not know this operating system"))
		}
		for _, fd := range rep.Findings {
			if !fd.Fixable() {
				continue
			}
			key := fd.VulnerabilityID + " " + fd.PkgName
			if !seen[key] {
				seen[key] = true
				f.counts[string(fd.Severity)]++
			}
			if cur, ok := f.wanted[fd.PkgName]; !ok || newer(fd.FixedVersion, cur) {
				f.wanted[fd.PkgName] = fd.FixedVersion
			}
			f.ids = append(f.ids, fd.VulnerabilityID)
		}
	}
	slices.Sort(f.ids)
	f.ids = slices.Compact(f.ids)
	if a.Digest != "" {
		v.scans[a.Digest] = f
	}
	return f, nil
}

// newer reports whether Debian version a orders after b (an invalid
// version never does).
func newer(a, b string) bool {
	c, err := (version.Deb{}).Compare(a, b)
	return err == nil && c > 0
}

// platforms lists the images of a (itself, or an index's platform images).
func platforms(a *artifact) ([]v1.Image, error) {
	if a.Image != nil {
		return []v1.Image{a.Image}, nil
	}
	imgs, err := patch.PlatformImages(a.Index, nil)
	if err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("%s: the index has no platform image", a)
	}
	return imgs, nil
}

// plan asks the patcher what the release's suites offer for a's installed
// packages (every update, nothing downloaded).
func (v *env) plan(ctx context.Context, a *artifact) (*PatchOutcome, error) {
	if p, ok := v.plans[a.Digest]; ok && a.Digest != "" {
		return p, nil
	}
	out, err := v.e.o.Patcher.Patch(ctx, PatchRequest{Image: a.Image, Index: a.Index, DryRun: true,
		Releases: v.releases, HTTPClient: v.http, Log: v.log})
	if err != nil {
		return nil, err
	}
	out.Cleanup()
	if a.Digest != "" {
		v.plans[a.Digest] = out
	}
	return out, nil
}

// securityUpdates are the planned changes that come from a security suite.
func securityUpdates(p *PatchOutcome) (changes []PackageChange, suites []string) {
	seen := map[string]bool{}
	for _, pl := range p.Platforms {
		for _, c := range pl.Changes {
			if archive.IsSecuritySuite(c.Suite) && !seen[c.Package+"="+c.To] {
				seen[c.Package+"="+c.To] = true
				changes = append(changes, c)
			}
		}
		suites = append(suites, pl.SecuritySuites...)
	}
	slices.SortFunc(changes, func(a, b PackageChange) int { return strings.Compare(a.Package, b.Package) })
	slices.Sort(suites)
	return changes, slices.Compact(suites)
}

// skipReasonOf turns a plan error into a reason to skip, or returns false
// when the error is a failure.
func skipReasonOf(err error) (string, bool) {
	var nothing *nothingError
	switch {
	case errors.As(err, &nothing):
		return nothing.Error(), true
	case errors.Is(err, patch.ErrEndOfLife):
		return withPrefix("end of life", err.Error()), true
	case errors.Is(err, patch.ErrUnsupported):
		return withPrefix("unsupported OS", err.Error()), true
	case errors.Is(err, archive.ErrNoSources):
		return "no package source: " + err.Error() + " (set workflow.mirror in the server's config for images without apt sources, such as distroless ones)", true
	}
	return "", false
}

// evaluate scans a match's latest patch (or its original) and decides
// whether to patch: the scan task's work, and the dry run's.
func (v *env) evaluate(ctx context.Context, m Match, securitySuite bool) (*ScanResult, *artifact, error) {
	repo, tag := m.Target()
	res := &ScanResult{Match: m, Target: repo + ":" + tag, Fixable: Counts{}, Tag: m.Next, Seconds: map[string]float64{}}
	start := time.Now()
	a, err := v.e.read(ctx, repo, tag)
	timed(res.Seconds, "read", start)
	if errors.Is(err, registry.ErrNotFound) {
		res.SkipReason = fmt.Sprintf("tag not found: %s:%s is gone", repo, tag)
		return res, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	res.Digest = a.Digest
	v.log(fmt.Sprintf("scanning %s (%s)", res.Target, a.Digest))
	start = time.Now()
	f, err := v.scanArtifact(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	timed(res.Seconds, "scan", start)
	res.OS, res.Support, res.SupportEnd = f.os, f.support, f.supportEnd
	res.Fixable, res.FixableIDs = f.counts, f.ids
	v.log(fmt.Sprintf("%s: %s, %d fixable vulnerabilities %s", res.Target, cmp.Or(f.os, "unknown OS"), f.counts.Total(), countsText(f.counts)))
	switch {
	case f.eol:
		res.SkipReason = f.reason
		return res, a, nil
	case f.unsupported:
		res.SkipReason = f.reason
		return res, a, nil
	}
	if f.counts.Total() > 0 {
		res.Signals = append(res.Signals, SignalDB)
	}
	if securitySuite {
		start = time.Now()
		p, err := v.plan(ctx, a)
		timed(res.Seconds, "plan", start)
		if err != nil {
			if reason, ok := skipReasonOf(err); ok {
				res.SkipReason = reason
				return res, a, nil
			}
			return nil, nil, fmt.Errorf("planning the security suite's updates for %s: %w", res.Target, err)
		}
		res.SecurityUpdates, res.Suites = securityUpdates(p)
		if len(res.SecurityUpdates) > 0 {
			res.Signals = append(res.Signals, SignalSecuritySuite)
			v.log(fmt.Sprintf("%s: %d updates pending from the security suite: %s", res.Target, len(res.SecurityUpdates), changesText(res.SecurityUpdates, 8)))
		}
	}
	if len(res.Signals) == 0 {
		res.SkipReason = "no fixable vulnerability found"
		if securitySuite {
			res.SkipReason += " and nothing pending from the security suite"
		}
		return res, a, nil
	}
	res.Patch = true
	return res, a, nil
}

// withPrefix puts "what: " before s unless s says what already.
func withPrefix(what, s string) string {
	if strings.Contains(s, what) {
		return s
	}
	return what + ": " + s
}

// countsText formats counts as Trivy's summary does.
func countsText(c Counts) string {
	var parts []string
	for _, s := range []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"} {
		parts = append(parts, fmt.Sprintf("%s: %d", s, c[s]))
	}
	for _, s := range slices.Sorted(maps.Keys(c)) {
		if !slices.Contains([]string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}, s) {
			parts = append(parts, fmt.Sprintf("%s: %d", s, c[s]))
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// changesText lists up to n changes as "pkg old -> new".
func changesText(cs []PackageChange, n int) string {
	var parts []string
	for i, c := range cs {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-n))
			break
		}
		parts = append(parts, c.Package+" "+c.From+" -> "+c.To)
	}
	return strings.Join(parts, ", ")
}
