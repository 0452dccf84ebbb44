// Package gatetest helps tests of the gate: OpenVEX exception documents
// for the findings of a verdict. It is a test-support package: only
// _test.go files import it.
package gatetest

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
)

// FailingCVEs lists, once each and in order, the vulnerability IDs of the
// findings that fail v (its maxSeverity reasons).
func FailingCVEs(v gate.Verdict) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range v.Reasons {
		if r.Rule != gate.RuleMaxSeverity {
			continue
		}
		for _, f := range r.Findings {
			id, _, _ := strings.Cut(f, " ")
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// OpenVEX returns an OpenVEX document with id, one not_affected statement
// per CVE for product (a repository or digest), expiring at expires, and
// dated issued.
func OpenVEX(id, product string, cves []string, issued, expires time.Time) []byte {
	var st []map[string]any
	for _, c := range cves {
		st = append(st, map[string]any{
			"vulnerability":    map[string]any{"name": c},
			"products":         []map[string]string{{"@id": product}},
			"status":           "not_affected",
			"justification":    "vulnerable_code_not_in_execute_path",
			"impact_statement": "reviewed for a test",
			"expires":          expires.UTC().Format(time.RFC3339),
		})
	}
	b, _ := json.MarshalIndent(map[string]any{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.test/vex/" + id,
		"author": "security@example.test", "timestamp": issued.UTC().Format(time.RFC3339), "version": 1, "statements": st}, "", "  ")
	return b // maps of strings and times always encode
}
