package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
)

// Manifests reads the registry's manifests and referrers in process;
// *registry.Registry implements it.
type Manifests interface {
	Manifest(ctx context.Context, repo, ref string) (ocispec.Descriptor, []byte, error)
	Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error)
}

// Inventories reads the inventory stored when a platform image was
// scanned (by its manifest digest); *gatekeeper.Keeper implements it.
// ok is false when none is stored.
type Inventories interface {
	Inventory(ctx context.Context, manifestDigest string) (snap *scan.Snapshot, ok bool, err error)
}

// Bounds of the image routes.
const (
	// maxChildren bounds the platforms of an index the image route lists.
	maxChildren = 256
	// maxLineage bounds how many ancestors the lineage route follows.
	maxLineage = 32
	// maxPackagesPage bounds a page of packages.
	maxPackagesPage = 1000
)

// imageRoutes are the image page's routes: they need the registry and
// the stored scans.
func (h *handler) imageRoutes() []route {
	rs := []route{
		{http.MethodGet, "/api/v1/images/{digest}", h.imageDetail},
		{http.MethodGet, "/api/v1/images/{digest}/lineage", h.imageLineage},
		{http.MethodGet, "/api/v1/images/{digest}/referrers", h.imageReferrers},
		{http.MethodGet, "/api/v1/manifests/{digest}", h.rawManifest},
	}
	if h.Inventories != nil {
		rs = append(rs, route{http.MethodGet, "/api/v1/images/{digest}/packages", h.imagePackages})
	}
	return rs
}

// imageScan reads the stored scan of the path's digest and checks the
// caller's pull on the repository it arrived in; false means the answer
// is written (400 naming the digest, 404 only to who may pull in
// quarantine, as for GET /api/v1/findings, 403).
func (h *handler) imageScan(w http.ResponseWriter, r *http.Request) (*store.Scan, bool) {
	raw := r.PathValue("digest")
	d, err := digest.Parse(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("digest: %q: %v (want sha256:HEX)", raw, err))
		return nil, false
	}
	sc, err := h.Scans.Scan(r.Context(), d.String())
	if errors.Is(err, store.ErrNotFound) {
		if h.allow(w, r, RolePull, imgref.Quarantine) {
			writeError(w, http.StatusNotFound, "NOT_FOUND", "no scan of "+d.String())
		}
		return nil, false
	}
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return sc, h.allow(w, r, RolePull, sc.Repository)
}

// failImage answers a manifest the registry no longer stores 404, any
// other error as fail does.
func (h *handler) failImage(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, registry.ErrNotFound) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", err.Error())
		return
	}
	h.fail(w, r, err)
}

// ImageDetail is the body of GET /api/v1/images/{digest}: what the
// digest is and, per platform image, its scan and layers.
type ImageDetail struct {
	Digest     string `json:"digest"`
	Repository string `json:"repository"`
	MediaType  string `json:"mediaType"`
	// Index is true for an image index (or Docker manifest list).
	Index     bool            `json:"index"`
	Platforms []ImagePlatform `json:"platforms"`
	// Omitted counts the index's children left out: build attestations
	// (platform unknown/unknown) and children over the route's bound.
	Omitted int `json:"omitted,omitempty"`
}

// ImagePlatform is one image of the digest: the digest itself, or a
// child of its index.
type ImagePlatform struct {
	Platform  string `json:"platform,omitempty"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Scanned is false when the stored scan has no report of this image
	// (Error then says why, when the scan failed).
	Scanned  bool           `json:"scanned"`
	OS       string         `json:"os,omitempty"`
	Status   scan.Status    `json:"status,omitempty"`
	Packages int            `json:"packages"`
	Findings int            `json:"findings"`
	Counts   map[string]int `json:"counts"`
	Error    string         `json:"error,omitempty"`
	Config   *Layer         `json:"config,omitempty"`
	Layers   []Layer        `json:"layers"`
	// Size is the sum of the layers' (compressed) sizes.
	Size int64 `json:"size"`
}

// Layer is a blob of an image manifest.
type Layer struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// imageDetail: GET /api/v1/images/{digest}, from the registry's manifests
// (no layer is read) and the stored scan.
func (h *handler) imageDetail(w http.ResponseWriter, r *http.Request) {
	sc, ok := h.imageScan(w, r)
	if !ok {
		return
	}
	out, err := h.describe(r.Context(), sc)
	if err != nil {
		h.failImage(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// manifest reads and parses repo@d.
func (h *handler) manifest(ctx context.Context, repo, d string) (*imgref.Manifest, error) {
	desc, body, err := h.Manifests.Manifest(ctx, repo, d)
	if err != nil {
		return nil, fmt.Errorf("reading %s@%s: %w", repo, d, err)
	}
	return imgref.ParseManifest(desc.MediaType, body)
}

func (h *handler) describe(ctx context.Context, sc *store.Scan) (*ImageDetail, error) {
	m, err := h.manifest(ctx, sc.Repository, sc.Digest)
	if err != nil {
		return nil, err
	}
	out := &ImageDetail{Digest: sc.Digest, Repository: sc.Repository, MediaType: m.MediaType, Index: m.Kind() == imgref.KindIndex,
		Platforms: []ImagePlatform{}}
	reports := map[string]store.PlatformReport{}
	for _, pr := range sc.Reports {
		reports[pr.Digest] = pr
	}
	add := func(platform string, d digest.Digest, child *imgref.Manifest) {
		p := ImagePlatform{Platform: platform, Digest: d.String(), MediaType: child.MediaType, Counts: map[string]int{}, Layers: []Layer{}}
		if pr, ok := reports[p.Digest]; ok && pr.Report != nil {
			rep := pr.Report
			p.Scanned, p.OS, p.Status, p.Packages, p.Findings = true, strings.TrimSpace(rep.OS.ID+" "+rep.OS.Version), rep.Status, rep.Packages, len(rep.Findings)
			for sev, n := range rep.Counts() {
				p.Counts[string(sev)] = n
			}
		} else {
			p.Error = sc.Error
		}
		if c := child.Config; c != nil {
			p.Config = &Layer{Digest: c.Digest.String(), Size: c.Size, MediaType: c.MediaType}
		}
		for _, l := range child.Layers {
			p.Layers = append(p.Layers, Layer{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType})
			p.Size += l.Size
		}
		out.Platforms = append(out.Platforms, p)
	}
	if !out.Index {
		add("", digest.Digest(sc.Digest), m)
		return out, nil
	}
	for _, c := range m.Manifests {
		n := imgref.Node{Descriptor: c}
		if n.Platform() == "unknown/unknown" || len(out.Platforms) == maxChildren {
			out.Omitted++
			continue
		}
		child, err := h.manifest(ctx, sc.Repository, c.Digest.String())
		if err != nil {
			return nil, err
		}
		add(n.Platform(), c.Digest, child)
	}
	return out, nil
}

// PackagesResponse is the body of GET /api/v1/images/{digest}/packages.
type PackagesResponse struct {
	Digest string `json:"digest"`
	// Platform and PlatformDigest name the image whose packages these are.
	Platform       string `json:"platform,omitempty"`
	PlatformDigest string `json:"platformDigest"`
	OS             string `json:"os,omitempty"`
	// Total counts the packages matching the filter; Page (from 1) and
	// Limit say which of them Packages holds.
	Total    int                `json:"total"`
	Page     int                `json:"page"`
	Limit    int                `json:"limit"`
	Packages []InstalledPackage `json:"packages"`
}

// InstalledPackage is a package of a stored inventory.
type InstalledPackage struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Arch          string `json:"arch,omitempty"`
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	Ecosystem     string `json:"ecosystem,omitempty"`
}

// pageParams reads limit (default def, at most max) and page (from 1);
// errors name the parameter.
func pageParams(r *http.Request, def, max int) (limit, page int, err error) {
	q := r.URL.Query()
	limit, page = def, 1
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > max {
			return 0, 0, fmt.Errorf("limit: %q, want 1 to %d", s, max)
		}
	}
	if s := q.Get("page"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 || page > 1<<20 {
			return 0, 0, fmt.Errorf("page: %q, want a number from 1", s)
		}
	}
	return limit, page, nil
}

// imagePackages: GET /api/v1/images/{digest}/packages[?platform=P]
// [&name=SUBSTRING][&limit=N][&page=N], the installed packages of one
// image of the digest from the inventory stored when it was scanned (no
// layer is read): the first platform scanned unless platform names one.
func (h *handler) imagePackages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, page, err := pageParams(r, 100, maxPackagesPage)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
		return
	}
	name := strings.ToLower(strings.TrimSpace(q.Get("name")))
	if len(name) > maxFilterLen {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("name: at most %d bytes", maxFilterLen))
		return
	}
	platform := q.Get("platform")
	sc, ok := h.imageScan(w, r)
	if !ok {
		return
	}
	i := slices.IndexFunc(sc.Reports, func(pr store.PlatformReport) bool {
		return pr.Report != nil && (platform == "" || pr.Platform == platform)
	})
	if i < 0 {
		if platform != "" {
			writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("platform: %q is not a scanned platform of %s", platform, sc.Digest))
		} else {
			writeError(w, http.StatusNotFound, "NOT_FOUND", "no platform of "+sc.Digest+" was scanned")
		}
		return
	}
	pr := sc.Reports[i]
	snap, found, err := h.Inventories.Inventory(r.Context(), pr.Digest)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no inventory of "+pr.Digest+" is stored on this server: a rescan stores it")
		return
	}
	out := PackagesResponse{Digest: sc.Digest, Platform: pr.Platform, PlatformDigest: pr.Digest,
		OS: strings.TrimSpace(pr.Report.OS.ID + " " + pr.Report.OS.Version), Page: page, Limit: limit, Packages: []InstalledPackage{}}
	var all []InstalledPackage
	for _, p := range snap.Packages {
		if name != "" && !strings.Contains(strings.ToLower(p.Name), name) && !strings.Contains(strings.ToLower(p.SourceName), name) {
			continue
		}
		all = append(all, InstalledPackage{Name: p.Name, Version: p.Version, Arch: p.Arch, SourceName: p.SourceName,
			SourceVersion: p.SourceVersion, Ecosystem: p.Ecosystem})
	}
	slices.SortStableFunc(all, func(a, b InstalledPackage) int {
		return strings.Compare(a.Name+"\x00"+a.Arch, b.Name+"\x00"+b.Arch)
	})
	out.Total = len(all)
	if from := (page - 1) * limit; from < len(all) {
		out.Packages = all[from:min(from+limit, len(all))]
	}
	writeJSON(w, http.StatusOK, out)
}

// ReferrersResponse is the body of GET /api/v1/images/{digest}/referrers.
type ReferrersResponse struct {
	Digest     string          `json:"digest"`
	Repository string          `json:"repository"`
	Groups     []ReferrerGroup `json:"groups"`
}

// ReferrerGroup is the referrers of one class (imgref.Classes: signature,
// attestation, sbom, vex, scan-report, artifact).
type ReferrerGroup struct {
	Class     string     `json:"class"`
	Referrers []Referrer `json:"referrers"`
}

// Referrer is a manifest whose subject is the digest.
type Referrer struct {
	Digest        string `json:"digest"`
	ArtifactType  string `json:"artifactType,omitempty"`
	MediaType     string `json:"mediaType"`
	Size          int64  `json:"size"`
	PredicateType string `json:"predicateType,omitempty"`
	Created       string `json:"created,omitempty"`
	// Reference pulls it: REPOSITORY@DIGEST.
	Reference string `json:"reference"`
}

// referrerClass refines imgref's class of an attestation by its
// predicate type (drydock's SBOM and VEX are in-toto attestations).
func referrerClass(d ocispec.Descriptor) string {
	class := imgref.ClassOfType(d.ArtifactType)
	pt := strings.ToLower(d.Annotations["predicateType"])
	if class == imgref.ClassAttestation || class == imgref.ClassArtifact {
		switch {
		case strings.Contains(pt, "openvex"):
			return imgref.ClassVEX
		case strings.Contains(pt, "cyclonedx"), strings.Contains(pt, "spdx"):
			return imgref.ClassSBOM
		}
	}
	return class
}

// imageReferrers: GET /api/v1/images/{digest}/referrers[?repository=R],
// the referrers of the digest in the repository it arrived in (or R,
// where the caller may pull too: its live/ copy), grouped by class.
func (h *handler) imageReferrers(w http.ResponseWriter, r *http.Request) {
	repo := r.URL.Query().Get("repository")
	if repo != "" && !imgref.ValidRepository(repo) {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("repository: %q is not a repository name", repo))
		return
	}
	sc, ok := h.imageScan(w, r)
	if !ok {
		return
	}
	if repo == "" {
		repo = sc.Repository
	} else if !h.allow(w, r, RolePull, repo) {
		return
	}
	descs, err := h.Manifests.Referrers(r.Context(), repo, digest.Digest(sc.Digest), "")
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		h.fail(w, r, err)
		return
	}
	out := ReferrersResponse{Digest: sc.Digest, Repository: repo, Groups: []ReferrerGroup{}}
	groups := map[string][]Referrer{}
	for _, d := range descs {
		c := referrerClass(d)
		groups[c] = append(groups[c], Referrer{Digest: d.Digest.String(), ArtifactType: d.ArtifactType, MediaType: d.MediaType, Size: d.Size,
			PredicateType: d.Annotations["predicateType"], Created: d.Annotations[ocispec.AnnotationCreated], Reference: repo + "@" + d.Digest.String()})
	}
	for _, c := range imgref.Classes {
		if rs := groups[c]; len(rs) > 0 {
			slices.SortFunc(rs, func(a, b Referrer) int { return strings.Compare(a.Created+a.Digest, b.Created+b.Digest) })
			out.Groups = append(out.Groups, ReferrerGroup{Class: c, Referrers: rs})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// annotations reads a manifest's annotations (nil when it has none).
func annotations(body []byte) map[string]string {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	_ = json.Unmarshal(body, &m)
	return m.Annotations
}

// maxShownManifest bounds the manifest GET /api/v1/manifests/{digest}
// returns (the registry bounds what it stores; this bounds the answer).
const maxShownManifest = 4 << 20

// ManifestResponse is the body of GET /api/v1/manifests/{digest}.
type ManifestResponse struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	MediaType  string `json:"mediaType"`
	Size       int64  `json:"size"`
	// Class is what a non-runnable artifact is (imgref's classes), empty
	// for an image or index.
	Class    string          `json:"class,omitempty"`
	Manifest json.RawMessage `json:"manifest"`
}

// rawManifest: GET /api/v1/manifests/{digest}?repository=R, a manifest
// as stored (a referrer's, for the image page's links): pull on R.
func (h *handler) rawManifest(w http.ResponseWriter, r *http.Request) {
	raw, repo := r.PathValue("digest"), r.URL.Query().Get("repository")
	d, err := digest.Parse(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("digest: %q: %v (want sha256:HEX)", raw, err))
		return
	}
	if !imgref.ValidRepository(repo) {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("repository: %q is not a repository name", repo))
		return
	}
	if !h.allow(w, r, RolePull, repo) {
		return
	}
	desc, body, err := h.Manifests.Manifest(r.Context(), repo, d.String())
	if err != nil {
		h.failImage(w, r, fmt.Errorf("%s@%s: %w", repo, d, err))
		return
	}
	if len(body) > maxShownManifest || !json.Valid(body) {
		writeError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE", fmt.Sprintf("%s@%s is not a JSON manifest of at most %d bytes", repo, d, maxShownManifest))
		return
	}
	out := ManifestResponse{Repository: repo, Digest: d.String(), MediaType: desc.MediaType, Size: desc.Size, Manifest: body}
	if m, err := imgref.ParseManifest(desc.MediaType, body); err == nil && m.Kind() == imgref.KindArtifact {
		out.Class = m.Class()
	}
	writeJSON(w, http.StatusOK, out)
}
