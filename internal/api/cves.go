package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/store"
)

// FindingsIndex is the findings index of the gate's store; store.Store
// implements it.
type FindingsIndex interface {
	FindingTotals(ctx context.Context, sc store.RepositoryScope) (*store.FindingTotals, error)
	ImageFindingCounts(ctx context.Context, digests []string) (map[string]store.ImageCounts, error)
	FindingsWhere(ctx context.Context, q store.FindingQuery) ([]store.IndexedFinding, bool, error)
	FindingsSummary(ctx context.Context, q store.FindingQuery) (*store.WhereSummary, error)
	Repositories(ctx context.Context) ([]string, error)
	Image(ctx context.Context, digest string) (*store.Image, error)
	Images(ctx context.Context, q store.ImageQuery) (*store.ImagePage, error)
}

// Bounds of the index routes.
const (
	DefaultWhereLimit = 100 // images per page of a CVE or package answer
	MaxWhereLimit     = 500
	// MaxCountsDigests bounds the digests of one /findings/counts call.
	MaxCountsDigests = 200
)

// indexRoutes are the routes of the findings index. Every answer covers
// the repositories the caller may pull, and only them.
func (h *handler) indexRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/cves/{id}", h.cve},
		{http.MethodGet, "/api/v1/packages/{name}", h.pkg},
		{http.MethodGet, "/api/v1/findings/totals", h.findingTotals},
		{http.MethodGet, "/api/v1/findings/counts", h.findingCounts},
		{http.MethodGet, "/api/v1/images", h.images},
	}
}

// ImagesResponse is the body of GET /api/v1/images.
type ImagesResponse struct {
	Images []store.Image `json:"images"`
	// Total is how many images match the filters; ByState counts every
	// image the caller may pull by verdict state.
	Total   int            `json:"total"`
	ByState map[string]int `json:"byState"`
	Page    int            `json:"page"`
	Pages   int            `json:"pages"`
}

// imageStates are the states the verdict filter takes.
var imageStates = []gate.State{gate.StateFail, gate.StatePending, gate.StatePass, gate.StateExempt}

// images: GET /api/v1/images?verdict=&repository=&page=&limit=, a page of
// the images the caller may pull, by repository then newest first.
func (h *handler) images(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	iq := store.ImageQuery{State: q.Get("verdict"), RepositoryContains: strings.TrimSpace(q.Get("repository")), Limit: DefaultWhereLimit}
	if iq.State != "" && !slices.Contains(imageStates, gate.State(iq.State)) {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("verdict: %q, want fail, pending, pass or exempt", trunc(iq.State)))
		return
	}
	if len(iq.RepositoryContains) > maxFilterLen {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("repository: at most %d bytes", maxFilterLen))
		return
	}
	page := 1
	var err error
	if s := q.Get("page"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 || page > 1_000_000 {
			writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("page: %q, want a page number from 1", trunc(s)))
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		if iq.Limit, err = strconv.Atoi(s); err != nil || iq.Limit < 1 || iq.Limit > store.MaxImagePage {
			writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("limit: %q, want 1 to %d", trunc(s), store.MaxImagePage))
			return
		}
	}
	var ok bool
	if iq.Scope, ok = h.scope(w, r); !ok {
		return
	}
	iq.Offset = (page - 1) * iq.Limit
	p, err := h.Index.Images(r.Context(), iq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := ImagesResponse{Images: p.Images, Total: p.Total, ByState: p.ByState, Page: page, Pages: max(1, (p.Total+iq.Limit-1)/iq.Limit)}
	if out.Images == nil {
		out.Images = []store.Image{}
	}
	writeJSON(w, http.StatusOK, out)
}

// scope is the repositories the caller may pull; false means the answer
// is written: an error, or 403 for a caller who may pull in neither
// quarantine/ nor live/.
func (h *handler) scope(w http.ResponseWriter, r *http.Request) (store.RepositoryScope, bool) {
	if h.Authorize == nil {
		return store.RepositoryScope{All: true}, true
	}
	if err := h.Authorize(r, RolePull, imgref.Quarantine); err != nil {
		if h.Authorize(r, RolePull, imgref.Live) != nil {
			writeError(w, http.StatusForbidden, "DENIED", err.Error())
			return store.RepositoryScope{}, false
		}
	}
	repos, err := h.Index.Repositories(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return store.RepositoryScope{}, false
	}
	sc := store.RepositoryScope{Names: []string{}}
	for _, repo := range repos {
		if h.Authorize(r, RolePull, repo) == nil {
			sc.Names = append(sc.Names, repo)
		}
	}
	if len(sc.Names) == len(repos) {
		return store.RepositoryScope{All: true}, true // no IN list to send
	}
	return sc, true
}

// TotalsResponse is the body of GET /api/v1/findings/totals.
type TotalsResponse struct {
	store.FindingTotals
	// Repositories is how many repositories the totals cover.
	Repositories int `json:"repositories"`
}

// findingTotals: GET /api/v1/findings/totals, findings by severity (all
// and fixable) and unique CVEs over the images the caller may pull.
func (h *handler) findingTotals(w http.ResponseWriter, r *http.Request) {
	sc, ok := h.scope(w, r)
	if !ok {
		return
	}
	tot, err := h.Index.FindingTotals(r.Context(), sc)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := TotalsResponse{FindingTotals: *tot, Repositories: len(sc.Names)}
	if sc.All {
		repos, err := h.Index.Repositories(r.Context())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out.Repositories = len(repos)
	}
	writeJSON(w, http.StatusOK, out)
}

// CountsResponse is the body of GET /api/v1/findings/counts.
type CountsResponse struct {
	// Images holds the counts of each asked digest that has findings and
	// that the caller may pull.
	Images map[string]store.ImageCounts `json:"images"`
}

// findingCounts: GET /api/v1/findings/counts?digest=D&digest=D2..., the
// findings of each digest by severity (all and fixable).
func (h *handler) findingCounts(w http.ResponseWriter, r *http.Request) {
	ds := r.URL.Query()["digest"]
	if len(ds) == 0 || len(ds) > MaxCountsDigests {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("digest: %d given, want 1 to %d", len(ds), MaxCountsDigests))
		return
	}
	for _, d := range ds {
		if _, err := imgref.ParseDigest(d); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("digest: %q: %v (want sha256:HEX)", d, err))
			return
		}
	}
	if _, ok := h.scope(w, r); !ok {
		return
	}
	counts, err := h.Index.ImageFindingCounts(r.Context(), ds)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := CountsResponse{Images: map[string]store.ImageCounts{}}
	for d, c := range counts {
		if h.Authorize == nil || h.Authorize(r, RolePull, c.Repository) == nil {
			out.Images[d] = c
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// WhereResponse is the body of GET /api/v1/cves/{id} and
// /api/v1/packages/{name}: where a vulnerability or a package is, in the
// images the caller may pull.
type WhereResponse struct {
	CVE     string `json:"cve,omitempty"`
	Package string `json:"package,omitempty"`
	// FixAvailable says that a fixed version exists for some finding.
	FixAvailable bool `json:"fixAvailable"`
	// Digests, Findings and UniqueCVEs count everything found (not only
	// this page); Repositories and Namespaces list where.
	Digests      int      `json:"digests"`
	Findings     int      `json:"findings"`
	UniqueCVEs   int      `json:"uniqueCVEs"`
	Repositories []string `json:"repositories"`
	Namespaces   []string `json:"namespaces"`
	// Truncated: this page's images have more than store.MaxFindingRows
	// findings; the page holds the first ones (the counts are whole).
	Truncated bool `json:"truncated,omitempty"`
	// TagsTruncated: a repository of this page has more tags than
	// one answer resolves; some tags may be missing.
	TagsTruncated bool `json:"tagsTruncated,omitempty"`
	Page          int  `json:"page"`
	Pages         int  `json:"pages"`
	// Images is this page of the digests, sorted.
	Images []AffectedImage `json:"images"`
}

// AffectedImage is one digest containing the CVE or package.
type AffectedImage struct {
	Digest     string `json:"digest"`
	Repository string `json:"repository"`
	// Namespaces are where the digest is: its repository's, and live
	// once promoted.
	Namespaces []string   `json:"namespaces"`
	State      gate.State `json:"state,omitempty"`
	Promoted   bool       `json:"promoted"`
	// Tags are the tags pointing at the digest, as the registry knows
	// them, e.g. quarantine/app:1.27 and live/app:1.27.
	Tags []string `json:"tags"`
	// Fixable says a fixed version exists for one of its findings here.
	Fixable bool `json:"fixable"`
	// Exemptions are the exceptions in force that the verdict applied and
	// that cover these findings: until Expires.
	Exemptions []Exemption            `json:"exemptions,omitempty"`
	Findings   []store.IndexedFinding `json:"findings"`
}

// Exemption is an exception that exempts an image's findings.
type Exemption struct {
	ID      int64            `json:"id"`
	Scope   exceptions.Scope `json:"scope"`
	CVE     string           `json:"cve,omitempty"`
	Package string           `json:"package,omitempty"`
	Reason  string           `json:"reason"`
	Author  string           `json:"author"`
	Expires time.Time        `json:"expires"`
}

var (
	cveIDRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	packageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._:~-]*$`)
)

// maxIDLen bounds a CVE id or a package name.
const maxIDLen = 128

// cve: GET /api/v1/cves/{id}?page=N&limit=N
func (h *handler) cve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > maxIDLen || !cveIDRE.MatchString(id) {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("id: %q is not a vulnerability id (e.g. CVE-2024-6387, at most %d bytes)", trunc(id), maxIDLen))
		return
	}
	h.where(w, r, store.FindingQuery{CVE: strings.ToUpper(id)})
}

// pkg: GET /api/v1/packages/{name}?page=N&limit=N, by binary or source
// package name.
func (h *handler) pkg(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if len(name) > maxIDLen || !packageRE.MatchString(name) {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("name: %q is not a package name (e.g. openssl, at most %d bytes)", trunc(name), maxIDLen))
		return
	}
	h.where(w, r, store.FindingQuery{Package: name})
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ParsePage reads page and limit (images per page); errors name the
// parameter.
func ParsePage(r *http.Request) (page, limit int, err error) {
	q := r.URL.Query()
	page, limit = 1, DefaultWhereLimit
	if s := q.Get("page"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 || page > 1_000_000 {
			return 0, 0, fmt.Errorf("page: %q, want a page number from 1", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxWhereLimit {
			return 0, 0, fmt.Errorf("limit: %q, want 1 to %d", s, MaxWhereLimit)
		}
	}
	return page, limit, nil
}

func (h *handler) where(w http.ResponseWriter, r *http.Request, q store.FindingQuery) {
	page, limit, err := ParsePage(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
		return
	}
	var ok bool
	if q.Scope, ok = h.scope(w, r); !ok {
		return
	}
	sum, err := h.Index.FindingsSummary(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := WhereResponse{CVE: q.CVE, Package: q.Package, FixAvailable: sum.FixAvailable, Digests: sum.Digests, Findings: sum.Findings,
		UniqueCVEs: sum.UniqueCVEs, Repositories: sum.Repositories, Namespaces: []string{}, Images: []AffectedImage{}}
	nss := map[string]bool{}
	for _, repo := range sum.Repositories {
		nss[imgref.Namespace(repo)] = true
	}
	if sum.Promoted {
		nss[imgref.Live] = true
	}
	out.Pages = max(1, (sum.Digests+limit-1)/limit)
	out.Page = min(page, out.Pages)
	// Only the page's rows: the summary counted the rest in SQL.
	q.Limit, q.ImageOffset, q.ImageLimit = store.MaxFindingRows, (out.Page-1)*limit, limit
	rows, more, err := h.Index.FindingsWhere(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out.Truncated = more
	var pageOf []AffectedImage // rows come sorted by digest
	for _, f := range rows {
		if n := len(pageOf); n == 0 || pageOf[n-1].Digest != f.Digest {
			pageOf = append(pageOf, AffectedImage{Digest: f.Digest, Repository: f.Repository})
		}
		im := &pageOf[len(pageOf)-1]
		im.Findings = append(im.Findings, f)
		im.Fixable = im.Fixable || f.Fixable
	}
	inForce, err := h.exceptionsInForce(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for i := range pageOf {
		im := &pageOf[i]
		im.Namespaces = []string{imgref.Namespace(im.Repository)}
		st, err := h.Index.Image(r.Context(), im.Digest)
		if errors.Is(err, store.ErrNotFound) {
			continue // scanned, no verdict yet
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		im.State, im.Promoted = st.Verdict.State, st.Promoted
		if st.Promoted && !slices.Contains(im.Namespaces, imgref.Live) {
			im.Namespaces = append(im.Namespaces, imgref.Live)
		}
		if im.Exemptions, err = exemptions(st.Verdict.Applied, inForce, im.Findings, h.advisoriesOf(r.Context(), im.Digest)); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if out.TagsTruncated, err = h.pageTags(r.Context(), pageOf); err != nil {
		h.fail(w, r, err)
		return
	}
	out.Images = append(out.Images, pageOf...)
	out.Namespaces = slices.Sorted(maps.Keys(nss))
	writeJSON(w, http.StatusOK, out)
}

// exceptionsInForce returns the exceptions in force now by gate id (none
// when the server keeps no exceptions).
func (h *handler) exceptionsInForce(ctx context.Context) (map[string]exceptions.Exception, error) {
	out := map[string]exceptions.Exception{}
	if h.Exceptions == nil {
		return out, nil
	}
	exs, err := h.Exceptions.Exceptions(ctx, exceptions.Filter{ActiveAt: h.Exceptions.Now()})
	if err != nil {
		return nil, err
	}
	for _, e := range exs {
		out[exceptions.GateID(e.ID)] = e
	}
	return out, nil
}

// exemptions are the exceptions among applied, in force, that cover one
// of fs: by vulnerability id, by an advisory that fixes it (advisories
// maps a digest's vulnerability ids to them, read only when an applied
// exception names an id no finding has), or by package when they name no
// id.
func exemptions(applied []string, inForce map[string]exceptions.Exception, fs []store.IndexedFinding, advisories func() (map[string][]string, error)) ([]Exemption, error) {
	var out []Exemption
	for _, id := range applied {
		e, ok := inForce[id]
		if !ok {
			continue
		}
		var fixes map[string][]string
		covers := false
		for _, f := range fs {
			if e.Package != "" && e.Package != f.Package && e.Package != f.SourcePackage {
				continue
			}
			if e.CVE == "" || strings.EqualFold(e.CVE, f.CVE) {
				covers = true
				break
			}
			if fixes == nil {
				var err error
				if fixes, err = advisories(); err != nil {
					return nil, err
				}
			}
			if slices.Contains(fixes[f.CVE], e.CVE) {
				covers = true
				break
			}
		}
		if covers {
			out = append(out, Exemption{ID: e.ID, Scope: e.Scope, CVE: e.CVE, Package: e.Package, Reason: e.Reason, Author: e.Author, Expires: e.Expires})
		}
	}
	return out, nil
}

// advisoriesOf returns a function that reads, once, which advisories fix
// each vulnerability (upper-cased id) in the stored scan of digest: none
// when the server keeps no scans or has none of the digest.
func (h *handler) advisoriesOf(ctx context.Context, digest string) func() (map[string][]string, error) {
	var fixes map[string][]string
	return func() (map[string][]string, error) {
		if fixes != nil {
			return fixes, nil
		}
		fixes = map[string][]string{}
		if h.Scans == nil {
			return fixes, nil
		}
		sc, err := h.Scans.Scan(ctx, digest)
		if errors.Is(err, store.ErrNotFound) {
			return fixes, nil
		}
		if err != nil {
			fixes = nil
			return nil, err
		}
		for _, pr := range sc.Reports {
			if pr.Report == nil {
				continue
			}
			for _, f := range pr.Report.Findings {
				id := strings.ToUpper(f.VulnerabilityID)
				for _, a := range f.FixedBy {
					if !slices.Contains(fixes[id], a) {
						fixes[id] = append(fixes[id], a)
					}
				}
			}
		}
		return fixes, nil
	}
}
