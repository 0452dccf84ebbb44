package gate

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// maxExceptionsSize bounds an exceptions document.
const maxExceptionsSize = 16 << 20

// Justifications are OpenVEX's not_affected justifications.
var Justifications = []string{
	"component_not_present",
	"vulnerable_code_not_present",
	"vulnerable_code_not_in_execute_path",
	"vulnerable_code_cannot_be_controlled_by_adversary",
	"inline_mitigations_already_exist",
}

// Exception is one OpenVEX not_affected statement, with drydock's expiry.
//
// Exceptions are read from an OpenVEX v0.2.0 document (LoadExceptions).
// The subset drydock reads, and its one extension, "expires":
//
//	{
//	  "@context": "https://openvex.dev/ns/v0.2.0",
//	  "@id": "https://example.com/vex/2026-001",
//	  "author": "alice@example.com",
//	  "timestamp": "2026-11-01T00:00:00Z",
//	  "version": 1,
//	  "statements": [{
//	    "vulnerability": {"name": "CVE-2023-4911", "aliases": ["..."]},
//	    "products": [
//	      {"@id": "sha256:<64 hex>"},                       // one image, by manifest digest
//	      {"@id": "quarantine/nginx"},                      // a repository; path.Match globs: "quarantine/*"
//	      {"@id": "quarantine/nginx@sha256:<64 hex>"},       // both must match
//	      {"@id": "pkg:oci/nginx@sha256%3A<hex>?repository_url=reg.example/quarantine/nginx"}
//	    ],
//	    "status": "not_affected",
//	    "justification": "vulnerable_code_not_in_execute_path",
//	    "impact_statement": "the reason, free text",
//	    "timestamp": "2026-11-01T00:00:00Z",   // optional; defaults to the document's
//	    "expires": "2027-02-01T00:00:00Z",     // drydock extension, RFC 3339, required
//	    "author": "bob@example.com",           // drydock extension, optional; defaults to the document's
//	    "package": "libc6"                     // drydock extension, optional: only this package's findings
//	  }]
//	}
//
// A product "*" covers every image. With "package", the statement covers
// only findings in that (binary or source) package, and a vulnerability
// name "*" covers every vulnerability of that package.
//
// Other OpenVEX fields are accepted and ignored. A purl's repository_url
// has its registry host (a first component with "." or ":", or
// "localhost") removed; a purl without repository_url names the
// repository by its name. The exception applies from its timestamp until
// (excluding) its expiry.
type Exception struct {
	// ID is the document's @id and the statement index, "ID#N".
	ID string
	// CVE is the vulnerability, "" (written "*") for every vulnerability
	// of Package.
	CVE     string
	Aliases []string
	// Package, when set, limits the exception to findings in it.
	Package       string
	Products      []Product
	Justification string
	// Reason is the statement's impact_statement.
	Reason  string
	Author  string
	Issued  time.Time
	Expires time.Time
}

// Product is what an exception covers: a digest, a repository pattern,
// or both (both must match), or every image (Any).
type Product struct {
	// Raw is the product's @id as written.
	Raw    string
	Digest string
	Repo   string
	// Any covers every image (@id "*").
	Any bool
}

type rawVEX struct {
	Context    string         `json:"@context"`
	ID         string         `json:"@id"`
	Author     string         `json:"author"`
	Timestamp  *time.Time     `json:"timestamp"`
	Statements []rawStatement `json:"statements"`
}

type rawStatement struct {
	Vulnerability struct {
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	} `json:"vulnerability"`
	Products []struct {
		ID string `json:"@id"`
	} `json:"products"`
	Status          string     `json:"status"`
	Justification   string     `json:"justification"`
	ImpactStatement string     `json:"impact_statement"`
	Timestamp       *time.Time `json:"timestamp"`
	Expires         string     `json:"expires"`
	Author          string     `json:"author"`
	Package         string     `json:"package"`
}

// LoadExceptions reads an OpenVEX document of exceptions. Every statement
// must be not_affected, with a justification, an expiry and at least one
// product; errors name the statement and field and are joined, so all of
// them are reported at once.
func LoadExceptions(r io.Reader) ([]Exception, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxExceptionsSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading exceptions: %w", err)
	}
	if len(data) > maxExceptionsSize {
		return nil, fmt.Errorf("exceptions document is larger than %d bytes", maxExceptionsSize)
	}
	var doc rawVEX
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing OpenVEX exceptions: %w", err)
	}
	if !strings.HasPrefix(doc.Context, "https://openvex.dev/ns") {
		return nil, fmt.Errorf("parsing OpenVEX exceptions: @context %q is not an OpenVEX context", doc.Context)
	}
	var errs []error
	out := make([]Exception, 0, len(doc.Statements))
	for i, st := range doc.Statements {
		ex, err := statementException(doc, i, st)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ex)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func statementException(doc rawVEX, i int, st rawStatement) (Exception, error) {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	ex := Exception{
		ID:            fmt.Sprintf("%s#%d", doc.ID, i),
		CVE:           st.Vulnerability.Name,
		Aliases:       st.Vulnerability.Aliases,
		Justification: st.Justification,
		Reason:        st.ImpactStatement,
		Author:        cmp.Or(st.Author, doc.Author),
		Package:       st.Package,
	}
	switch {
	case ex.CVE == "":
		bad("vulnerability.name: required (\"*\" with a package: every vulnerability of the package)")
	case ex.CVE == "*" && ex.Package == "":
		bad("vulnerability.name: \"*\" needs a package")
	case ex.CVE == "*":
		ex.CVE = ""
	}
	if st.Status != "not_affected" {
		bad("status: %q is not an exception (want not_affected)", st.Status)
	}
	switch {
	case st.Justification == "":
		bad("justification: required (one of %s)", strings.Join(Justifications, ", "))
	case !slices.Contains(Justifications, st.Justification):
		bad("justification: unknown %q (want one of %s)", st.Justification, strings.Join(Justifications, ", "))
	}
	if st.Timestamp != nil {
		ex.Issued = *st.Timestamp
	} else if doc.Timestamp != nil {
		ex.Issued = *doc.Timestamp
	}
	if st.Expires == "" {
		bad("expires: required (RFC 3339)")
	} else if t, err := time.Parse(time.RFC3339, st.Expires); err != nil {
		bad("expires: %q is not an RFC 3339 time", st.Expires)
	} else {
		ex.Expires = t
		if !ex.Issued.IsZero() && !t.After(ex.Issued) {
			bad("expires: %s is not after the timestamp %s", st.Expires, ex.Issued.Format(time.RFC3339))
		}
	}
	if len(st.Products) == 0 {
		bad("products: at least one product (digest or repository) is required")
	}
	for j, p := range st.Products {
		prod, err := parseProduct(p.ID)
		if err != nil {
			bad("products[%d].@id: %v", j, err)
			continue
		}
		ex.Products = append(ex.Products, prod)
	}
	if len(probs) > 0 {
		return Exception{}, fmt.Errorf("statement %d (%s): %s", i, ex.CVE, strings.Join(probs, "; "))
	}
	return ex, nil
}

// parseProduct reads a product @id: a digest, a repository pattern,
// REPO@DIGEST, or a pkg:oci purl.
func parseProduct(id string) (Product, error) {
	p := Product{Raw: id}
	switch {
	case id == "":
		return p, errors.New("empty")
	case id == "*":
		p.Any = true
		return p, nil
	case strings.HasPrefix(id, "pkg:"):
		return parsePurl(id)
	case strings.HasPrefix(id, "sha256:"):
		p.Digest = id
	default:
		repo, digest, found := strings.Cut(id, "@")
		p.Repo = repo
		if found {
			p.Digest = digest
		}
	}
	if p.Digest != "" && !validDigest(p.Digest) {
		return p, fmt.Errorf("%q: bad digest %q (want sha256:<64 hex>)", id, p.Digest)
	}
	if p.Repo != "" {
		if _, err := path.Match(p.Repo, ""); err != nil {
			return p, fmt.Errorf("%q: bad repository pattern: %v", id, err)
		}
	}
	return p, nil
}

func parsePurl(id string) (Product, error) {
	p := Product{Raw: id}
	rest, ok := strings.CutPrefix(id, "pkg:oci/")
	if !ok {
		return p, fmt.Errorf("%q: only pkg:oci purls name images", id)
	}
	rest, query, _ := strings.Cut(rest, "?")
	query, _, _ = strings.Cut(query, "#")
	name, version, hasVersion := strings.Cut(rest, "@")
	if hasVersion {
		v, err := url.PathUnescape(version)
		if err != nil || !validDigest(v) {
			return p, fmt.Errorf("%q: bad digest version %q (want sha256%%3A<64 hex>)", id, version)
		}
		p.Digest = v
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return p, fmt.Errorf("%q: bad qualifiers: %v", id, err)
	}
	if ru := q.Get("repository_url"); ru != "" {
		p.Repo = stripRegistry(ru)
	} else if !hasVersion {
		p.Repo = name
	}
	if p.Repo == "" && p.Digest == "" {
		return p, fmt.Errorf("%q: names neither a digest nor a repository", id)
	}
	return p, nil
}

// stripRegistry removes a registry host from a repository reference.
func stripRegistry(ref string) string {
	first, rest, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return rest
	}
	return ref
}

func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// matches reports whether the product covers an image.
func (p Product) matches(digest, repo string) bool {
	if p.Any {
		return true
	}
	if p.Digest != "" && p.Digest != digest {
		return false
	}
	if p.Repo != "" {
		ok, err := path.Match(p.Repo, repo)
		if err != nil || !ok {
			return false
		}
	}
	return p.Digest != "" || p.Repo != ""
}

// Applies reports whether the exception covers vulnerability cve (its
// name or an alias) in the image digest in repository repo at time now.
// An exception that would cover it but has expired (now is at or after
// Expires) does not apply and reports expired; one whose timestamp is
// still in the future does not apply either.
func (e Exception) Applies(cve, digest, repo string, now time.Time) (applies, expired bool) {
	return e.Covers(Subject{CVE: cve}, digest, repo, now)
}

// Subject is the finding an exception is asked about: its vulnerability,
// the binary and source package it is in, and the advisories that ship
// its fix (DSA-5555-1, DLA-…, GHSA-…: the scanner's FixedBy).
type Subject struct {
	CVE, Package, Source string
	Advisories           []string
}

// names reports whether id names the subject's vulnerability: the
// vulnerability itself, or an advisory that ships its fix. An exception
// written for an advisory accepts every vulnerability that advisory
// fixes, which is what a reviewer who declines one update means.
func (f Subject) names(id string) bool {
	return f.CVE == id || slices.Contains(f.Advisories, id)
}

// Covers is Applies for a finding: an exception limited to a package
// covers only findings in that binary or source package, and one for
// every vulnerability of a package (CVE "") covers any of them. An
// exception's CVE matches the finding's vulnerability, one of the
// finding's fix advisories, or (from a VEX statement) one of its aliases.
func (e Exception) Covers(f Subject, digest, repo string, now time.Time) (applies, expired bool) {
	if e.CVE == "" && e.Package == "" {
		return false, false
	}
	if e.CVE != "" && !f.names(e.CVE) && !slices.Contains(e.Aliases, f.CVE) {
		return false, false
	}
	if e.Package != "" && e.Package != f.Package && e.Package != f.Source {
		return false, false
	}
	if !slices.ContainsFunc(e.Products, func(p Product) bool { return p.matches(digest, repo) }) {
		return false, false
	}
	if !now.Before(e.Expires) {
		return false, true
	}
	if !e.Issued.IsZero() && now.Before(e.Issued) {
		return false, false
	}
	return true, false
}
