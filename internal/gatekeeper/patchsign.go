package gatekeeper

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/scan"
)

// PatchSigned is what SignPatch attached.
type PatchSigned struct {
	// Subjects are the manifests signed: the patched image, or the
	// patched index and each of its patched platform images.
	Subjects []digest.Digest `json:"subjects"`
	// Fixed are the vulnerabilities the patch removed (all platforms).
	Fixed []string `json:"fixed"`
	// Already is set when drydock's provenance was there already
	// (a resumed or repeated write): nothing was added.
	Already bool `json:"already,omitempty"`
}

// SignPatch signs a patch the server ran (the workflows, POST
// /api/v1/patch) with the gate's key: the patched image in p.Repository
// gets a cosign signature and, as referrers and in cosign's .att tag, its
// SLSA v1 provenance, an OpenVEX document marking fixed each
// vulnerability the patch removed and a CycloneDX SBOM. The gate scans
// the original and the patched image itself, with one database, so the
// VEX compares like with like. A patched index gets them per patched
// platform image, and on the index itself the signature, the provenance
// (every platform's packages) and the OpenVEX of what no platform still
// has. When the patched digest is already in live/, what was attached
// follows it there. It is idempotent: drydock's provenance on the digest
// means it was signed. Without a key it does nothing (nil, nil).
func (k *Keeper) SignPatch(ctx context.Context, p attest.PatchWritten) (*PatchSigned, error) {
	if k.key == nil {
		return nil, nil
	}
	if !imgref.IsQuarantine(p.Repository) {
		return nil, fmt.Errorf("signing a patch: %s is not a quarantine/ repository", p.Repository)
	}
	root, err := k.reg.Resolve(ctx, p.Repository, p.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("signing the patch %s@%s: %w", p.Repository, p.Digest, err)
	}
	pub := k.key.PublicKey(KeyName)
	if rep, err := attest.Verify(ctx, k.reg, p.Repository, p.Digest, attest.VerifyOptions{Keys: []attest.PublicKey{pub}}); err != nil {
		return nil, err
	} else if rep.Attestation(attest.PredicateSLSAProvenanceV1, pub.ID) != nil {
		return &PatchSigned{Subjects: []digest.Digest{p.Digest}, Already: true}, nil
	}
	if p.Original == "" {
		if p.Original, err = k.originalOf(ctx, p); err != nil {
			return nil, err
		}
	}
	orig, err := k.reg.Resolve(ctx, p.OriginalRepository, p.Original.String())
	if err != nil {
		return nil, fmt.Errorf("signing the patch of %s@%s: the original: %w", p.OriginalRepository, p.Original, err)
	}
	pairs, err := k.patchPairs(ctx, p, root, orig)
	if err != nil {
		return nil, err
	}
	scanner, done, err := k.scanner()
	if err != nil {
		return nil, err
	}
	defer done()
	ctx = WithGateWrite(ctx)
	out := &PatchSigned{}
	name := p.Repository + ":" + cmp.Or(p.Tag, p.Digest.String())
	var befores, afters []*scan.Report
	for _, pr := range pairs {
		before, err := k.inventory(ctx, scanner, p.OriginalRepository, pr.orig)
		if err != nil {
			return nil, fmt.Errorf("scanning the original %s@%s: %w", p.OriginalRepository, pr.orig, err)
		}
		after, snap, err := k.inventoryOf(ctx, scanner, p.Repository, pr.patched.Digest)
		if err != nil {
			return nil, fmt.Errorf("scanning the patched image %s@%s: %w", p.Repository, pr.patched.Digest, err)
		}
		befores, afters = append(befores, before), append(afters, after)
		after.Artifact.Name = p.Repository + "@" + pr.patched.Digest.String()
		rec := patchRecord(p, name, pr.patched.Digest, pr.orig, pr.platform, pr.packages)
		_, fixed, err := attest.AttestPatch(ctx, k.reg, p.Repository, pr.patched, k.key, rec, before, after, snap, k.now())
		if err != nil {
			return nil, fmt.Errorf("signing the patch of %s: %w", name, err)
		}
		out.Fixed = append(out.Fixed, fixed...)
		out.Subjects = append(out.Subjects, pr.patched.Digest)
	}
	if root.Digest != pairs[0].patched.Digest {
		// The index: the signature, the provenance of every platform and
		// the OpenVEX of what no platform has any more.
		var pkgs []attest.PatchedPackage
		for _, pr := range pairs {
			pkgs = append(pkgs, pr.packages...)
		}
		rec := patchRecord(p, name, root.Digest, orig.Digest, "", pkgs)
		prov, err := attest.ProvenanceStatement(rec)
		if err != nil {
			return nil, err
		}
		vex, fixed, err := attest.VEXStatement(rec, mergeReports(befores), mergeReports(afters))
		if err != nil {
			return nil, err
		}
		if _, err := attest.Write(ctx, k.reg, p.Repository, root, k.key, attest.WriteRequest{Ref: p.Repository, Signature: true,
			Statements: []*attest.Statement{prov, vex}, Now: k.now()}); err != nil {
			return nil, fmt.Errorf("signing the patch of %s: %w", name, err)
		}
		out.Fixed = append(out.Fixed, fixed...)
		out.Subjects = append(out.Subjects, root.Digest)
	}
	slices.Sort(out.Fixed)
	out.Fixed = slices.Compact(out.Fixed)
	// Gate writes are not seen as arrivals: when the patched image was
	// promoted meanwhile, what was attached follows it now.
	for _, d := range out.Subjects {
		k.followerArrived(context.WithoutCancel(ctx), p.Repository, d)
	}
	k.log.Info("patch signed", "repository", p.Repository, "digest", p.Digest, "subjects", len(out.Subjects), "fixed", len(out.Fixed))
	return out, nil
}

// patchPair is one patched image and the original image it came from.
type patchPair struct {
	platform string
	orig     digest.Digest
	patched  ocispec.Descriptor
	packages []attest.PatchedPackage
}

// patchPairs pairs each patched image of root with its original in orig
// (by platform, for indexes); platforms the patch left unchanged are not
// signed.
func (k *Keeper) patchPairs(ctx context.Context, p attest.PatchWritten, root, orig ocispec.Descriptor) ([]patchPair, error) {
	rm, err := k.manifestOf(ctx, p.Repository, root)
	if err != nil {
		return nil, err
	}
	om, err := k.manifestOf(ctx, p.OriginalRepository, orig)
	if err != nil {
		return nil, err
	}
	switch {
	case rm.Kind() == imgref.KindImage && om.Kind() == imgref.KindImage:
		plan, _ := p.PlanFor("")
		return []patchPair{{platform: plan.Platform, orig: orig.Digest, patched: root, packages: attest.PackagesFromPlan(plan)}}, nil
	case rm.Kind() == imgref.KindIndex && om.Kind() == imgref.KindIndex:
	default:
		return nil, fmt.Errorf("signing the patch: %s@%s is an %s, its original %s@%s an %s", p.Repository, root.Digest, rm.Kind(), p.OriginalRepository, orig.Digest, om.Kind())
	}
	origs := map[string]digest.Digest{}
	for _, d := range om.Manifests {
		if pl := (imgref.Node{Descriptor: d}).Platform(); pl != "" {
			origs[pl] = d.Digest
		}
	}
	var out []patchPair
	for _, d := range rm.Manifests {
		pl := (imgref.Node{Descriptor: d}).Platform()
		od, ok := origs[pl]
		if !ok || od == d.Digest || pl == "" {
			continue
		}
		plan, ok := p.PlanFor(pl)
		if !ok {
			continue
		}
		out = append(out, patchPair{platform: pl, orig: od, patched: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
			packages: attest.PackagesFromPlan(plan)})
	}
	if len(out) == 0 {
		return nil, errors.New("signing the patch: no platform of the index differs from its original")
	}
	return out, nil
}

func (k *Keeper) manifestOf(ctx context.Context, repo string, d ocispec.Descriptor) (*imgref.Manifest, error) {
	stored, body, err := k.reg.Manifest(ctx, repo, d.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", repo, d.Digest, err)
	}
	m, err := imgref.ParseManifest(stored.MediaType, body)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", repo, d.Digest, err)
	}
	return m, nil
}

// inventory scans the image d of repo.
func (k *Keeper) inventory(ctx context.Context, s *scan.Scanner, repo string, d digest.Digest) (*scan.Report, error) {
	rep, _, err := k.inventoryOf(ctx, s, repo, d)
	return rep, err
}

// inventoryOf scans the image d of repo and returns its inventory too.
func (k *Keeper) inventoryOf(ctx context.Context, s *scan.Scanner, repo string, d digest.Digest) (*scan.Report, *scan.Snapshot, error) {
	img, err := k.readImage(ctx, repo, d)
	if err != nil {
		return nil, nil, err
	}
	return s.ImageInventory(ctx, img)
}

func patchRecord(p attest.PatchWritten, name string, d, orig digest.Digest, platform string, pkgs []attest.PatchedPackage) attest.PatchRecord {
	return attest.PatchRecord{Name: name, Digest: d, Original: orig, OriginalName: cmp.Or(p.OriginalName, p.OriginalRepository),
		Platform: platform, Request: p.Request, Packages: pkgs, Started: p.Started, Finished: cmp.Or(p.Finished, p.Started)}
}

// mergeReports is one report of several platforms' findings.
func mergeReports(reps []*scan.Report) *scan.Report {
	out := *reps[0]
	out.Findings = nil
	for _, r := range reps {
		out.Findings = append(out.Findings, r.Findings...)
	}
	return &out
}

// originalOf finds the original of a patch that does not name its digest:
// a patched image's lineage annotation (org.opencontainers.image.base.digest,
// which the patch engine writes), else (an index) what p.OriginalName
// names in p.OriginalRepository now.
func (k *Keeper) originalOf(ctx context.Context, p attest.PatchWritten) (digest.Digest, error) {
	_, body, err := k.reg.Manifest(ctx, p.Repository, p.Digest.String())
	if err != nil {
		return "", err
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(body, &m) == nil {
		if d, err := digest.Parse(m.Annotations[ocispec.AnnotationBaseImageDigest]); err == nil {
			return d, nil
		}
	}
	ref, err := imgref.Parse(p.OriginalName)
	if err != nil || p.OriginalName == "" {
		return "", fmt.Errorf("signing the patch %s@%s: its original is named neither by digest nor by a lineage annotation", p.Repository, p.Digest)
	}
	desc, err := k.reg.Resolve(ctx, p.OriginalRepository, ref.Ref())
	if err != nil {
		return "", fmt.Errorf("signing the patch %s@%s: the original %s: %w", p.Repository, p.Digest, p.OriginalName, err)
	}
	return desc.Digest, nil
}
