package store

import (
	"context"
	"fmt"
	"strings"
)

// WhereSummary counts everything a FindingQuery finds (its Limit and
// image page aside), in SQL: the API pages the digests and fetches only
// the page's rows.
type WhereSummary struct {
	Digests, Findings, UniqueCVEs int
	// FixAvailable: a fixed version exists for one of the findings.
	FixAvailable bool
	// Repositories are where the digests were seen, sorted.
	Repositories []string
	// Promoted: one of the digests is promoted to live/.
	Promoted bool
}

// whereCond is the condition (and its arguments) of q's CVE or package
// and scope over the findings table.
func whereCond(q FindingQuery) (string, []any) {
	scope, sargs := scopeWhere(q.Scope)
	if q.CVE != "" {
		return `cve = ?` + scope, append([]any{strings.ToUpper(q.CVE)}, sargs...)
	}
	// Two indexed lookups joined, instead of an OR the planners scan for.
	return `id IN (SELECT id FROM findings WHERE package = ? UNION SELECT id FROM findings WHERE source_package = ?)` + scope,
		append([]any{q.Package, q.Package}, sargs...)
}

// FindingsSummary counts the digests, findings and distinct CVEs q finds,
// lists their repositories, and says whether a fix exists and whether one
// of the digests is promoted.
func (s *SQL) FindingsSummary(ctx context.Context, q FindingQuery) (*WhereSummary, error) {
	if (q.CVE == "") == (q.Package == "") {
		return nil, fmt.Errorf("store: summary of a CVE or of a package, not both or neither")
	}
	cond, args := whereCond(q)
	out := &WhereSummary{Repositories: []string{}}
	// A digest's rows all carry the repository its scan records, so the
	// digests per repository add up to the distinct digests.
	rows, err := s.db.QueryContext(ctx, `SELECT repository, COUNT(*), COUNT(DISTINCT digest), SUM(CASE WHEN fixable THEN 1 ELSE 0 END)
		FROM findings WHERE `+cond+` GROUP BY repository ORDER BY repository`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: summary of findings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var repo string
		var n, digests, fixable int
		if err := rows.Scan(&repo, &n, &digests, &fixable); err != nil {
			return nil, fmt.Errorf("store: summary of findings: %w", err)
		}
		out.Repositories = append(out.Repositories, repo)
		out.Findings += n
		out.Digests += digests
		out.FixAvailable = out.FixAvailable || fixable > 0
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: summary of findings: %w", err)
	}
	rows.Close()
	if out.Findings == 0 {
		return out, nil
	}
	if q.CVE != "" {
		out.UniqueCVEs = 1
	} else if err := s.db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT cve) FROM findings WHERE `+cond, args...).Scan(&out.UniqueCVEs); err != nil {
		return nil, fmt.Errorf("store: summary of findings: distinct CVEs: %w", err)
	}
	var promoted int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM images WHERE promoted = ? AND digest IN (SELECT digest FROM findings WHERE `+cond+`)`,
		append([]any{true}, args...)...).Scan(&promoted); err != nil {
		return nil, fmt.Errorf("store: summary of findings: promoted: %w", err)
	}
	out.Promoted = promoted > 0
	return out, nil
}
