// Package exceptions keeps the gate's exceptions as records of their own:
// each covers one CVE (or every CVE of one package, or one CVE in one
// package) in one digest, one quarantine/ repository or every image, with
// a justification, a reason, its author and an expiry. They are created
// and revoked through the API and the web UI (the service in
// internal/gatekeeper validates, audits and re-decides the verdicts they
// touch), exported as one OpenVEX document, and read by the gate beside
// the OpenVEX files of the exceptions directory.
//
// The store persists; it does not decide: what an exception covers is
// gate.Exception's rule (Gate converts a record to it).
package exceptions

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
)

// Scope is what images an exception covers.
type Scope string

// The scopes.
const (
	ScopeDigest     Scope = "digest"
	ScopeRepository Scope = "repository"
	ScopeGlobal     Scope = "global"
)

// Exception is one stored exception.
type Exception struct {
	// ID is assigned by the store.
	ID    int64 `json:"id"`
	Scope Scope `json:"scope"`
	// Digest is the manifest digest (scope digest).
	Digest string `json:"digest,omitempty"`
	// Repository is the quarantine/ repository the gate judges (scope
	// repository).
	Repository string `json:"repository,omitempty"`
	// CVE is the vulnerability (or an alias of it); empty with Package
	// set covers every vulnerability of the package.
	CVE string `json:"cve,omitempty"`
	// Package limits the exception to findings in this binary or source
	// package.
	Package string `json:"package,omitempty"`
	// Justification is OpenVEX's not_affected justification.
	Justification string `json:"justification"`
	Reason        string `json:"reason"`
	// Author is the principal that created it.
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Revoked is when it was revoked (zero: it was not), by RevokedBy.
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revokedBy,omitempty"`
}

// ErrInvalid is wrapped by errors about an exception's fields; the
// message names the field.
var ErrInvalid = errors.New("invalid exception")

// ErrNotFound: no exception has that ID.
var ErrNotFound = errors.New("no such exception")

// ErrRevoked: the exception was revoked already.
var ErrRevoked = errors.New("exception already revoked")

// Limits on the fields.
const (
	MaxReason = 4096
	maxName   = 256
)

var (
	cveRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9][A-Za-z0-9._:-]{0,120}$`)
	packageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._~-]{0,254}$`)
	digestRE  = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// Validate checks a new exception at time now; the error names every bad
// field ("cve: ...; expires: ...") and wraps ErrInvalid.
func (e Exception) Validate(now time.Time) error {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	switch e.Scope {
	case ScopeDigest:
		if !digestRE.MatchString(e.Digest) {
			bad("digest: %q is not a manifest digest (sha256:<64 hex>)", trunc(e.Digest))
		}
		if e.Repository != "" {
			bad("repository: must be empty for scope digest")
		}
	case ScopeRepository:
		if err := imgref.CheckRepository(e.Repository); err != nil {
			bad("repository: %v", err)
		} else if !imgref.IsQuarantine(e.Repository) {
			bad("repository: %q is not in quarantine/: exceptions apply to the quarantine/ repository the gate judges, e.g. %s", e.Repository, imgref.Rebase(e.Repository, imgref.Quarantine))
		}
		if e.Digest != "" {
			bad("digest: must be empty for scope repository")
		}
	case ScopeGlobal:
		if e.Digest != "" || e.Repository != "" {
			bad("scope: global covers every image; digest and repository must be empty")
		}
	case "":
		bad("scope: required (digest, repository or global)")
	default:
		bad("scope: unknown %q (want digest, repository or global)", trunc(string(e.Scope)))
	}
	switch {
	case e.CVE == "" && e.Package == "":
		bad("cve: required unless package is set (a CVE, a package, or both)")
	case e.CVE != "" && !cveRE.MatchString(e.CVE):
		bad("cve: %q is not a vulnerability ID (e.g. CVE-2024-6387)", trunc(e.CVE))
	}
	if e.Package != "" && !packageRE.MatchString(e.Package) {
		bad("package: %q is not a package name", trunc(e.Package))
	}
	switch {
	case e.Justification == "":
		bad("justification: required (one of %s)", strings.Join(gate.Justifications, ", "))
	case !slices.Contains(gate.Justifications, e.Justification):
		bad("justification: unknown %q (want one of %s)", trunc(e.Justification), strings.Join(gate.Justifications, ", "))
	}
	switch {
	case strings.TrimSpace(e.Reason) == "":
		bad("reason: required")
	case len(e.Reason) > MaxReason:
		bad("reason: %d bytes, over the limit of %d", len(e.Reason), MaxReason)
	}
	if e.Author == "" {
		bad("author: required")
	}
	switch {
	case e.Expires.IsZero():
		bad("expires: required (RFC 3339)")
	case !e.Expires.After(now):
		bad("expires: %s is not in the future", e.Expires.UTC().Format(time.RFC3339))
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(probs, "; "))
	}
	return nil
}

func trunc(s string) string {
	if len(s) > maxName {
		return s[:maxName] + "..."
	}
	return s
}

// GateID is the exception's name in verdicts (Verdict.Applied).
func GateID(id int64) string { return fmt.Sprintf("exception/%d", id) }

// Product is the OpenVEX product @id of the exception's scope.
func (e Exception) Product() string {
	switch e.Scope {
	case ScopeDigest:
		return e.Digest
	case ScopeRepository:
		return e.Repository
	default:
		return "*"
	}
}

// Gate returns the exception as the gate decides with it.
func (e Exception) Gate() gate.Exception {
	p := gate.Product{Raw: e.Product()}
	switch e.Scope {
	case ScopeDigest:
		p.Digest = e.Digest
	case ScopeRepository:
		p.Repo = e.Repository
	default:
		p.Any = true
	}
	return gate.Exception{ID: GateID(e.ID), CVE: e.CVE, Package: e.Package, Products: []gate.Product{p},
		Justification: e.Justification, Reason: e.Reason, Author: e.Author, Issued: e.Created, Expires: e.Expires}
}

// Active reports whether the exception is in force at now: not revoked,
// issued and not expired.
func (e Exception) Active(now time.Time) bool {
	return e.Revoked.IsZero() && !now.Before(e.Created) && now.Before(e.Expires)
}
