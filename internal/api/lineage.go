package api

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/store"
)

// LineageResponse is the body of GET /api/v1/images/{digest}/lineage:
// the digest's ancestors through the patch engine's lineage annotations,
// oldest first, ending with the digest itself (1.27.1 → -1 → -2).
type LineageResponse struct {
	Digest string        `json:"digest"`
	Steps  []LineageStep `json:"steps"`
	// Patches are the images in the digest's repository whose lineage
	// annotation names the digest as their original (the workflow's
	// 1.27.1-1, 1.27.1-2, ...), each with the findings it removed and
	// added against the digest, ordered by tag; empty for an image never
	// patched here. PatchesTruncated says the repository has more tags
	// than one answer reads.
	Patches          []LineageStep `json:"patches"`
	PatchesTruncated bool          `json:"patchesTruncated,omitempty"`
	// Note says why the chain stops short (an ancestor this server does
	// not store, or one the caller may not pull).
	Note string `json:"note,omitempty"`
}

// LineageStep is one image of the chain. For every step but the first,
// Removed and Added are the difference of its stored findings against its
// parent's: what that patch fixed, and what it brought.
type LineageStep struct {
	Digest     string `json:"digest"`
	Repository string `json:"repository,omitempty"`
	// BaseName is the name the patch engine recorded for the parent.
	BaseName string `json:"baseName,omitempty"`
	// Tags are the step's tags in its repository (patches only).
	Tags []string `json:"tags,omitempty"`
	// Patched lists the packages the patch updated, as recorded.
	Patched  string         `json:"patched,omitempty"`
	Findings int            `json:"findings"`
	Removed  []LineageDelta `json:"removed"`
	Added    []LineageDelta `json:"added"`
}

// LineageDelta is a finding one side of a patch has and the other not.
type LineageDelta struct {
	Platform        string `json:"platform,omitempty"`
	VulnerabilityID string `json:"vulnerabilityID"`
	PkgName         string `json:"pkgName"`
	Severity        string `json:"severity"`
	// Version is the installed version on the side that has it.
	Version string `json:"version"`
}

// imageLineage: GET /api/v1/images/{digest}/lineage.
func (h *handler) imageLineage(w http.ResponseWriter, r *http.Request) {
	sc, ok := h.imageScan(w, r)
	if !ok {
		return
	}
	out, err := h.lineage(r, sc)
	if err != nil {
		h.failImage(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// lineage walks up from sc through base-digest annotations, reading only
// manifests and stored scans.
func (h *handler) lineage(r *http.Request, sc *store.Scan) (*LineageResponse, error) {
	ctx := r.Context()
	out := &LineageResponse{Digest: sc.Digest}
	type node struct {
		step LineageStep
		sc   *store.Scan // nil: not stored here
	}
	var nodes []node
	seen := map[string]bool{sc.Digest: true}
	for cur := sc; ; {
		step, parent, err := h.ancestor(ctx, cur)
		if err != nil {
			return nil, err
		}
		step.Findings = countFindings(cur)
		nodes = append(nodes, node{step, cur})
		if parent == "" {
			break
		}
		if seen[parent.String()] || len(nodes) > maxLineage {
			out.Note = "the lineage annotations loop or run longer than " + strconv.Itoa(maxLineage) + " images: stopped"
			break
		}
		seen[parent.String()] = true
		psc, err := h.Scans.Scan(ctx, parent.String())
		if errors.Is(err, store.ErrNotFound) {
			nodes = append(nodes, node{LineageStep{Digest: parent.String(), BaseName: step.BaseName, Removed: []LineageDelta{}, Added: []LineageDelta{}}, nil})
			out.Note = "the original " + parent.String() + " has no scan on this server"
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Authorize != nil && h.Authorize(r, RolePull, psc.Repository) != nil {
			out.Note = "an ancestor is in a repository you may not pull"
			break
		}
		cur = psc
	}
	slices.Reverse(nodes)
	out.Steps = make([]LineageStep, len(nodes))
	for i, n := range nodes {
		if i > 0 && nodes[i-1].sc != nil {
			n.step.Removed, n.step.Added = diffFindings(nodes[i-1].sc, n.sc)
		}
		out.Steps[i] = n.step
	}
	var err error
	if out.Patches, out.PatchesTruncated, err = h.patches(ctx, sc); err != nil {
		return nil, err
	}
	return out, nil
}

// patches finds the images of sc's repository whose lineage annotation
// names sc as their original: the tags of the repository (at most
// maxTagsPerRepository), each distinct manifest read once. Without a
// TagLister there are none.
func (h *handler) patches(ctx context.Context, sc *store.Scan) ([]LineageStep, bool, error) {
	out := []LineageStep{}
	if h.Tags == nil {
		return out, false, nil
	}
	tagsOf, truncated, err := h.tagsByDigest(ctx, sc.Repository)
	if err != nil {
		return nil, false, err
	}
	delete(tagsOf, sc.Digest)
	digests := slices.Sorted(maps.Keys(tagsOf))
	for _, d := range digests {
		child := &store.Scan{Digest: d, Repository: sc.Repository}
		step, parent, err := h.ancestor(ctx, child)
		if err != nil {
			return nil, false, err
		}
		if parent.String() != sc.Digest {
			continue
		}
		step.Tags = tagsOf[d]
		slices.SortFunc(step.Tags, compareTags)
		if csc, err := h.Scans.Scan(ctx, d); err == nil {
			step.Findings = countFindings(csc)
			step.Removed, step.Added = diffFindings(sc, csc)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		out = append(out, step)
	}
	slices.SortFunc(out, func(a, b LineageStep) int { return compareTags(a.Tags[0], b.Tags[0]) })
	return out, truncated, nil
}

// compareTags orders tags by name, a trailing "-N" by its number, so
// 1.27.1-2 comes before 1.27.1-10.
func compareTags(a, b string) int {
	sa, na, oka := tagNumber(a)
	sb, nb, okb := tagNumber(b)
	if oka && okb && sa == sb {
		return cmp.Compare(na, nb)
	}
	return cmp.Compare(a, b)
}

// tagNumber splits "stem-N" into stem and N.
func tagNumber(t string) (string, int, bool) {
	i := strings.LastIndexByte(t, '-')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(t[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return t[:i], n, true
}

// ancestor reads sc's manifest: its step, and the parent its lineage
// annotation names ("" for none).
func (h *handler) ancestor(ctx context.Context, sc *store.Scan) (LineageStep, digest.Digest, error) {
	step := LineageStep{Digest: sc.Digest, Repository: sc.Repository, Removed: []LineageDelta{}, Added: []LineageDelta{}}
	_, body, err := h.Manifests.Manifest(ctx, sc.Repository, sc.Digest)
	if errors.Is(err, registry.ErrNotFound) {
		return step, "", nil // deleted since its scan: the chain ends here
	}
	if err != nil {
		return step, "", err
	}
	ann := annotations(body)
	step.BaseName, step.Patched = ann[ocispec.AnnotationBaseImageName], ann[patch.AnnotationPatched]
	parent, err := digest.Parse(ann[ocispec.AnnotationBaseImageDigest])
	if err != nil {
		return step, "", nil
	}
	return step, parent, nil
}

func countFindings(sc *store.Scan) int {
	n := 0
	for _, pr := range sc.Reports {
		if pr.Report != nil {
			n += len(pr.Report.Findings)
		}
	}
	return n
}

// findingKeys indexes a scan's findings by platform, id and package.
func findingKeys(sc *store.Scan) map[[3]string]LineageDelta {
	out := map[[3]string]LineageDelta{}
	for _, pr := range sc.Reports {
		if pr.Report == nil {
			continue
		}
		for _, f := range pr.Report.Findings {
			out[[3]string{pr.Platform, f.VulnerabilityID, f.PkgName}] = LineageDelta{Platform: pr.Platform,
				VulnerabilityID: f.VulnerabilityID, PkgName: f.PkgName, Severity: string(f.Severity), Version: f.InstalledVersion}
		}
	}
	return out
}

// diffFindings returns the findings of parent that child lacks (removed)
// and those of child that parent lacks (added), sorted.
func diffFindings(parent, child *store.Scan) (removed, added []LineageDelta) {
	p, c := findingKeys(parent), findingKeys(child)
	removed, added = []LineageDelta{}, []LineageDelta{}
	for k, v := range p {
		if _, ok := c[k]; !ok {
			removed = append(removed, v)
		}
	}
	for k, v := range c {
		if _, ok := p[k]; !ok {
			added = append(added, v)
		}
	}
	by := func(a, b LineageDelta) int {
		return cmp.Or(cmp.Compare(a.VulnerabilityID, b.VulnerabilityID), cmp.Compare(a.PkgName, b.PkgName), cmp.Compare(a.Platform, b.Platform))
	}
	slices.SortFunc(removed, by)
	slices.SortFunc(added, by)
	return removed, added
}
