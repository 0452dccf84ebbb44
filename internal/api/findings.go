package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Scans reads the latest scan of a digest; store.Store implements it.
type Scans interface {
	Scan(ctx context.Context, digest string) (*store.Scan, error)
}

// FindingsResponse is the body of GET /api/v1/findings.
type FindingsResponse struct {
	Digest     string    `json:"digest"`
	Repository string    `json:"repository"`
	ScannedAt  time.Time `json:"scannedAt,omitzero"`
	// Error is why the last scan failed.
	Error     string             `json:"error,omitempty"`
	Platforms []FindingsPlatform `json:"platforms"`
	// Total is the number of findings before the filters; Counts and
	// Fixable count the findings after them by severity; UniqueCVEs the
	// distinct vulnerability ids after them.
	Total      int            `json:"total"`
	Counts     map[string]int `json:"counts"`
	Fixable    map[string]int `json:"fixable"`
	UniqueCVEs int            `json:"uniqueCVEs"`
	Findings   []Finding      `json:"findings"`
}

// FindingsPlatform is one scanned image of the digest; OS is labelled as
// the verdict's scan summary labels it (gatekeeper.PlatformSummary).
type FindingsPlatform struct {
	Platform string      `json:"platform,omitempty"`
	Digest   string      `json:"digest"`
	OS       string      `json:"os,omitempty"`
	Status   scan.Status `json:"status"` // "" when the image has no report
	Packages int         `json:"packages"`
}

// Finding is a finding of one platform image.
type Finding struct {
	Platform string `json:"platform,omitempty"`
	scan.Finding
}

// FindingsFilter selects findings; zero fields match everything.
type FindingsFilter struct {
	Severities []vulndb.Severity
	Statuses   []vulndb.Status
	// Fixable is "true", "false" or "" (both).
	Fixable string
	// Package matches the binary or source package name exactly; CVE the
	// vulnerability id, case-insensitively.
	Package, CVE string
}

var statuses = []vulndb.Status{vulndb.StatusFixed, vulndb.StatusAffected, vulndb.StatusWillNotFix, vulndb.StatusNoDSA,
	vulndb.StatusPostponed, vulndb.StatusEndOfLife, vulndb.StatusNotAffected, vulndb.StatusUndetermined}

// maxFilterLen bounds a text filter.
const maxFilterLen = 256

// ParseFindingsFilter reads the filters of a query string (severity and
// status are comma-separated lists); errors name the parameter.
func ParseFindingsFilter(q url.Values) (FindingsFilter, error) {
	var f FindingsFilter
	var err error
	if f.Severities, err = scan.ParseSeverities(q.Get("severity")); err != nil {
		return f, fmt.Errorf("severity: %w", err)
	}
	for _, s := range splitList(q.Get("status")) {
		st := vulndb.Status(strings.ToLower(s))
		if !slices.Contains(statuses, st) {
			return f, fmt.Errorf("status: %q, want one or more of fixed, affected, will_not_fix, no_dsa, postponed, end_of_life, not_affected, undetermined", s)
		}
		f.Statuses = append(f.Statuses, st)
	}
	switch f.Fixable = q.Get("fixable"); f.Fixable {
	case "", "true", "false":
	default:
		return f, fmt.Errorf("fixable: %q, want true or false", f.Fixable)
	}
	f.Package, f.CVE = strings.TrimSpace(q.Get("package")), strings.TrimSpace(q.Get("cve"))
	if len(f.Package) > maxFilterLen || len(f.CVE) > maxFilterLen {
		return f, fmt.Errorf("package, cve: at most %d bytes", maxFilterLen)
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Match reports whether f selects finding x.
func (f FindingsFilter) Match(x scan.Finding) bool {
	switch {
	case len(f.Severities) > 0 && !slices.Contains(f.Severities, x.Severity),
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, x.Status),
		f.Fixable == "true" && !x.Fixable(), f.Fixable == "false" && x.Fixable(),
		f.Package != "" && f.Package != x.PkgName && f.Package != x.SrcName,
		f.CVE != "" && !strings.EqualFold(f.CVE, x.VulnerabilityID):
		return false
	}
	return true
}

// Findings summarises and filters the latest scan of a digest, findings
// sorted by severity (highest first), then id, package and platform.
func Findings(sc *store.Scan, f FindingsFilter) *FindingsResponse {
	out := &FindingsResponse{Digest: sc.Digest, Repository: sc.Repository, ScannedAt: sc.ScannedAt, Error: sc.Error,
		Platforms: []FindingsPlatform{}, Counts: map[string]int{}, Fixable: map[string]int{}, Findings: []Finding{}}
	ids := map[string]bool{}
	for _, pr := range sc.Reports {
		if pr.Report == nil {
			// Listed as the verdict's scan summary lists it: without a
			// status, since it has no report.
			out.Platforms = append(out.Platforms, FindingsPlatform{Platform: pr.Platform, Digest: pr.Digest})
			continue
		}
		rep := pr.Report
		out.Platforms = append(out.Platforms, FindingsPlatform{Platform: pr.Platform, Digest: pr.Digest,
			OS: strings.TrimSpace(rep.OS.ID + " " + rep.OS.Version), Status: rep.Status, Packages: rep.Packages})
		out.Total += len(rep.Findings)
		for _, x := range rep.Findings {
			if !f.Match(x) {
				continue
			}
			out.Findings = append(out.Findings, Finding{Platform: pr.Platform, Finding: x})
			out.Counts[string(x.Severity)]++
			if x.Fixable() {
				out.Fixable[string(x.Severity)]++
			}
			ids[x.VulnerabilityID] = true
		}
	}
	out.UniqueCVEs = len(ids)
	rank := func(s vulndb.Severity) int { return slices.Index(scan.Severities, s) }
	slices.SortStableFunc(out.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(rank(b.Severity), rank(a.Severity)), cmp.Compare(a.VulnerabilityID, b.VulnerabilityID),
			cmp.Compare(a.PkgName, b.PkgName), cmp.Compare(a.Platform, b.Platform))
	})
	return out
}

// findings: GET /api/v1/findings?digest=D[&severity=..][&fixable=..]
// [&package=..][&cve=..][&status=..], the findings of a digest's latest
// scan (pull on the repository it arrived in; a digest without one
// answers 404 only to who may pull in quarantine).
func (h *handler) findings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := digest.Parse(q.Get("digest"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("digest: %q: %v (want sha256:HEX)", q.Get("digest"), err))
		return
	}
	f, err := ParseFindingsFilter(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
		return
	}
	sc, err := h.Scans.Scan(r.Context(), d.String())
	if errors.Is(err, store.ErrNotFound) {
		// Every scan is of an image that arrived in quarantine: only who
		// may pull there learns that a digest has none; anyone else is
		// refused as for a scan they may not read.
		if h.allow(w, r, RolePull, imgref.Quarantine) {
			writeError(w, http.StatusNotFound, "NOT_FOUND", "no scan of "+d.String())
		}
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.allow(w, r, RolePull, sc.Repository) {
		return
	}
	writeJSON(w, http.StatusOK, Findings(sc, f))
}
