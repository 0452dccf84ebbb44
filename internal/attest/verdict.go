package attest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// PredicateVerdict is the predicate type of drydock's promotion
// attestation: the gate's verdict on a digest when it was promoted.
const PredicateVerdict = "https://drydock-project.github.io/attestations/promotion/v1"

// VerdictPredicate is the promotion attestation's predicate.
type VerdictPredicate struct {
	// Source and Target are the promotion's references; Actor who asked.
	Source     string    `json:"source"`
	Target     string    `json:"target"`
	Actor      string    `json:"actor,omitempty"`
	PromotedAt time.Time `json:"promotedAt"`
	// Verdict is the state (pass or exempt) and its reasons.
	Verdict VerdictState `json:"verdict"`
	// Policy is the gate policy the verdict was decided by.
	Policy PolicyRef `json:"policy"`
	// Scan is the scan the verdict was decided from.
	Scan ScanRef `json:"scan"`
	// Exceptions are the VEX exceptions the verdict used.
	Exceptions []string `json:"exceptions,omitempty"`
}

// VerdictState is a verdict's state and reasons.
type VerdictState struct {
	State   string    `json:"state"`
	At      time.Time `json:"at"`
	Reasons []string  `json:"reasons,omitempty"`
}

// PolicyRef names a gate policy by path and hash.
type PolicyRef struct {
	Path   string `json:"path,omitempty"` // "" for the built-in policy
	SHA256 string `json:"sha256"`
}

// ScanRef sums up the scan a verdict came from.
type ScanRef struct {
	ScannedAt time.Time      `json:"scannedAt"`
	DBBuiltAt time.Time      `json:"dbBuiltAt,omitzero"`
	Images    []ScannedImage `json:"images"`
}

// ScannedImage is one scanned image of the promoted digest.
type ScannedImage struct {
	Platform string         `json:"platform,omitempty"`
	Digest   string         `json:"digest"`
	Status   string         `json:"status"`
	Findings int            `json:"findings"`
	Counts   map[string]int `json:"counts,omitempty"`
}

// VerdictStatement is the promotion attestation about the manifest d in
// repository name.
func VerdictStatement(name string, d digest.Digest, p VerdictPredicate) (*Statement, error) {
	return NewStatement(name, d, PredicateVerdict, p)
}

// PromotionError is a digest without drydock's promotion attestation.
type PromotionError struct {
	Repository string
	Digest     digest.Digest
	Why        string
}

func (e *PromotionError) Error() string {
	return fmt.Sprintf("%s@%s has no valid promotion attestation by drydock's key: %s", e.Repository, e.Digest, e.Why)
}

// RequirePromotion is the check an admission webhook makes: the manifest d
// in repo carries a promotion attestation signed by key, about d, whose
// verdict was pass or exempt. It returns the attestation's predicate, or
// a *PromotionError saying what is wrong (nothing there, another key,
// another digest).
func RequirePromotion(ctx context.Context, reg Reader, repo string, d digest.Digest, key PublicKey) (*VerdictPredicate, error) {
	rep, err := Verify(ctx, reg, repo, d, VerifyOptions{Keys: []PublicKey{key}})
	if err != nil {
		return nil, err
	}
	a := rep.Attestation(PredicateVerdict, key.ID)
	if a == nil {
		var seen []string
		for _, s := range rep.Signatures {
			if s.PredicateType == PredicateVerdict && s.Error != "" {
				seen = append(seen, s.Error)
			}
		}
		why := "none found"
		if len(seen) > 0 {
			why = strings.Join(seen, "; ")
		}
		return nil, &PromotionError{Repository: repo, Digest: d, Why: why}
	}
	var p VerdictPredicate
	if err := json.Unmarshal(a.Statement.Predicate, &p); err != nil {
		return nil, &PromotionError{Repository: repo, Digest: d, Why: "its predicate does not decode: " + err.Error()}
	}
	if p.Verdict.State != "pass" && p.Verdict.State != "exempt" {
		return nil, &PromotionError{Repository: repo, Digest: d, Why: "its verdict is " + p.Verdict.State}
	}
	return &p, nil
}
