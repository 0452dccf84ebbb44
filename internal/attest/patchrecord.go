package attest

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/scan"
)

// The binding to the patch engine: the one place that reads its types.
// patch.Plan (platform, package changes with archive URLs) is the same in
// the engine's per-image results and in patch.Run's per-platform results;
// the .debs' SHA-256 and the Release files are not in the engine's
// results yet, so PatchedPackage.SHA256 and PatchRecord.ReleaseFiles stay
// empty until it reports them (then they are filled here).

// PackagesFromPlan lists a patch plan's package changes.
func PackagesFromPlan(p patch.Plan) []PatchedPackage {
	out := make([]PatchedPackage, 0, len(p.Changes))
	for _, c := range p.Changes {
		out = append(out, PatchedPackage{Name: c.Package, From: c.From, To: c.To, Suite: c.Suite, URL: c.URL, Size: c.Size})
	}
	return out
}

// AttestPatch signs and attaches to the patched image subject in repo
// (a quarantine/ repository: the image is promoted with them) what drydock
// signs about a patch: a cosign signature of the image and its
// provenance, OpenVEX and SBOM statements (PatchStatements), with before
// and after the scans of the original and the patched image and snap the
// patched image's inventory. It returns what was written and the
// vulnerabilities the patch fixed.
func AttestPatch(ctx context.Context, reg Registry, repo string, subject ocispec.Descriptor, k *Key, rec PatchRecord,
	before, after *scan.Report, snap *scan.Snapshot, now time.Time) (*Written, []string, error) {
	if rec.Digest == "" {
		rec.Digest = subject.Digest
	}
	if rec.Finished.IsZero() {
		rec.Finished = now
	}
	sts, fixed, err := PatchStatements(rec, before, after, snap)
	if err != nil {
		return nil, nil, err
	}
	w, err := Write(ctx, reg, repo, subject, k, WriteRequest{Ref: repo, Signature: true, Statements: sts, Now: now})
	return w, fixed, err
}

// PatchWritten is a patch the server ran and wrote into one of its
// quarantine/ repositories: what the gate needs to sign it (the gate
// scans the original and the patched image itself, with one database).
type PatchWritten struct {
	// Repository, Tag and Digest are the patched image or index written.
	Repository string
	Tag        string
	Digest     digest.Digest
	// OriginalRepository and Original are the input as the server holds
	// it; OriginalName how the request named it (NAMESPACE/NAME:TAG).
	// Without Original, the patched image's lineage annotation
	// (org.opencontainers.image.base.digest) names it, or for an index
	// what OriginalName names when the patch is signed.
	OriginalRepository string
	Original           digest.Digest
	OriginalName       string
	// Request is the patch request as given (mode, packages, ...).
	Request map[string]any
	// Plans are the engine's plans, one per platform patched.
	Plans []patch.Plan
	// Started and Finished time the patch.
	Started, Finished time.Time
}

// PlanFor returns the plan of platform ("" or a single plan: the only
// one), and whether there is one.
func (p PatchWritten) PlanFor(platform string) (patch.Plan, bool) {
	if len(p.Plans) == 1 && (platform == "" || p.Plans[0].Platform == "" || p.Plans[0].Platform == platform) {
		return p.Plans[0], true
	}
	for _, pl := range p.Plans {
		if pl.Platform == platform {
			return pl, true
		}
	}
	return patch.Plan{}, false
}
