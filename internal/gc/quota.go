package gc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

// Quotas enforce gc.quotas (registry.Quota) on the usage the database
// holds for every repository and namespace, so that every replica checks
// the same numbers.
//
// The accounting: a collection computes each scope's usage exactly (the
// distinct bytes of what it keeps, dedupe-aware, plus open uploads;
// registry.Usage) and stores it; between collections, each blob or
// manifest newly linked into a repository adds its size to the
// repository and its namespace. A deleted tag frees nothing until the next
// collection deletes its content, and a blob linked into a second
// repository of a namespace counts twice in the namespace until then:
// between collections the usage can only be above the storage, never
// below, and a collection brings it back to the storage's bytes. Bytes
// added while a collection runs are kept on top of what it computes
// (since_mark), so no growth is lost to the race.
type Quotas struct {
	store quotaStore
	rules []config.QuotaRule
	audit Auditor
	log   *slog.Logger
	now   func() time.Time
}

// Scope kinds of usage rows ("repository:quarantine/app",
// "namespace:quarantine").
const (
	ScopeRepository = "repository"
	ScopeNamespace  = "namespace"
)

// NewQuotas returns the quotas of rules (gc.quotas) on db, which holds
// the collector's schema (Join migrates it). audit and log may be nil.
func NewQuotas(db *database.DB, rules []config.QuotaRule, au Auditor, log *slog.Logger, now func() time.Time) *Quotas {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Quotas{store: quotaStore{db: db}, rules: rules, audit: au, log: log, now: now}
}

var _ registry.Quota = (*Quotas)(nil)

// limit is one quota that applies to a repository.
type limit struct {
	key   string // usage row
	scope string // for messages: "repository quarantine/app"
	bytes int64
}

// limits returns the quotas that apply to repo: the first repository rule
// matching it, and its namespace's rule.
func (q *Quotas) limits(repo string) []limit {
	var out []limit
	repoDone, nsDone := false, false
	ns := imgref.Namespace(repo)
	for _, r := range q.rules {
		switch {
		case r.Repository != "" && !repoDone && config.MatchRepository(r.Repository, repo):
			repoDone = true
			out = append(out, limit{key: scopeKey(ScopeRepository, repo), scope: ScopeRepository + " " + repo, bytes: int64(r.Limit)})
		case r.Namespace != "" && !nsDone && r.Namespace == ns:
			nsDone = true
			out = append(out, limit{key: scopeKey(ScopeNamespace, ns), scope: ScopeNamespace + " " + ns, bytes: int64(r.Limit)})
		}
	}
	return out
}

// limitOf returns the quota of one scope, 0 for none.
func (q *Quotas) limitOf(kind, name string) int64 {
	if kind == ScopeNamespace {
		name += "/-" // any repository of the namespace
	}
	for _, l := range q.limits(name) {
		if strings.HasPrefix(l.key, kind+":") {
			return l.bytes
		}
	}
	return 0
}

func scopeKey(kind, name string) string { return kind + ":" + name }

// Check implements registry.Quota: n more bytes for repo are refused when
// a quota that applies would be exceeded (n = 0: when it is reached). A
// refusal is audited.
func (q *Quotas) Check(ctx context.Context, repo string, n int64) error {
	ls := q.limits(repo)
	if len(ls) == 0 {
		return nil
	}
	keys := make([]string, len(ls))
	for i, l := range ls {
		keys[i] = l.key
	}
	used, err := q.store.get(ctx, keys)
	if err != nil {
		return err
	}
	for _, l := range ls {
		u := used[l.key]
		if u+n > l.bytes || (n == 0 && u >= l.bytes) {
			qe := &registry.QuotaError{Scope: l.scope, Limit: l.bytes, Used: u, Requested: n}
			q.record(ctx, repo, qe)
			return qe
		}
	}
	return nil
}

func (q *Quotas) record(ctx context.Context, repo string, qe *registry.QuotaError) {
	q.log.Info("upload refused over quota", "repository", repo, "scope", qe.Scope, "used", qe.Used, "limit", qe.Limit, "requested", qe.Requested)
	if q.audit == nil {
		return
	}
	d, _ := audit.Detail(map[string]any{"reason": "quota", "scope": qe.Scope, "limit": qe.Limit, "used": qe.Used, "requested": qe.Requested})
	if _, err := q.audit.Record(context.WithoutCancel(ctx), audit.Entry{Actor: auth.UserFrom(ctx), Action: audit.ActionDenied,
		Repository: repo, Outcome: audit.OutcomeRefused, Detail: d}); err != nil {
		q.log.Error("audit: recording a quota refusal failed", "repository", repo, "err", err)
	}
}

// Added implements registry.Quota: n bytes newly linked into repo count
// in the scopes that have a quota (the others are counted by the next
// collection; no write is spent on them).
func (q *Quotas) Added(ctx context.Context, repo string, n int64) error {
	ls := q.limits(repo)
	if len(ls) == 0 || n <= 0 {
		return nil
	}
	keys := make([]string, len(ls))
	for i, l := range ls {
		keys[i] = l.key
	}
	return q.store.add(ctx, keys, n)
}

// QuotaUsage is one scope's usage and its limit.
type QuotaUsage struct {
	Scope string `json:"scope"` // ScopeRepository or ScopeNamespace
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	// Limit is the quota in bytes, 0 when none applies.
	Limit int64 `json:"limit,omitempty"`
	// ComputedAt is when a collection last computed the usage (bytes
	// added since are included).
	ComputedAt time.Time `json:"computedAt,omitzero"`
}

// List returns every scope's usage with its limit, sorted by scope and
// name; namespaces with a quota and no usage are listed with 0 bytes.
func (q *Quotas) List(ctx context.Context) ([]QuotaUsage, error) {
	rows, err := q.store.list(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []QuotaUsage
	for _, r := range rows {
		kind, name, _ := strings.Cut(r.scope, ":")
		u := QuotaUsage{Scope: kind, Name: name, Bytes: r.used, ComputedAt: parseTS(r.computedAt)}
		u.Limit = q.limitOf(kind, name)
		seen[r.scope] = true
		out = append(out, u)
	}
	for _, r := range q.rules {
		if r.Namespace != "" && !seen[scopeKey(ScopeNamespace, r.Namespace)] {
			out = append(out, QuotaUsage{Scope: ScopeNamespace, Name: r.Namespace, Limit: int64(r.Limit)})
		}
	}
	slices.SortFunc(out, func(a, b QuotaUsage) int { return strings.Compare(a.Scope+"\x00"+a.Name, b.Scope+"\x00"+b.Name) })
	return out, nil
}

// beginCollection starts counting the bytes added while a collection
// runs; call it before the collection lists the storage.
func (q *Quotas) beginCollection(ctx context.Context) error { return q.store.resetMark(ctx) }

// collected stores a collection's usage (plus what was added since
// beginCollection).
func (q *Quotas) collected(ctx context.Context, usage []registry.Usage) error {
	m := make(map[string]int64, len(usage))
	for _, u := range usage {
		m[scopeKey(u.Scope, u.Name)] += u.Bytes
	}
	return q.store.replace(ctx, m, q.now())
}

// quotaStore keeps quota_usage: it stores, the Quotas decide.
type quotaStore struct{ db *database.DB }

type usageRow struct {
	scope      string
	used       int64
	computedAt string
}

func (s quotaStore) get(ctx context.Context, keys []string) (map[string]int64, error) {
	out := make(map[string]int64, len(keys))
	rows, err := s.db.QueryContext(ctx, `SELECT scope, used FROM quota_usage WHERE scope IN (`+values(len(keys), "?")+`)`, anys(keys)...)
	if err != nil {
		return nil, fmt.Errorf("reading quota usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// add counts n more bytes in each scope, in one transaction.
func (s quotaStore) add(ctx context.Context, keys []string, n int64) error {
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO quota_usage (scope, used, since_mark, computed_at) VALUES (?, ?, ?, '')
				ON CONFLICT (scope) DO UPDATE SET used = quota_usage.used + excluded.used, since_mark = quota_usage.since_mark + excluded.since_mark`,
				k, n, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("accounting %d bytes to %v: %w", n, keys, err)
	}
	return nil
}

func (s quotaStore) resetMark(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE quota_usage SET since_mark = 0`); err != nil {
		return fmt.Errorf("starting the quota count of a collection: %w", err)
	}
	return nil
}

// replace sets every scope's usage to computed (0 for scopes absent
// from it) plus what was added since resetMark, in one transaction, and
// drops the scopes left empty.
func (s quotaStore) replace(ctx context.Context, computed map[string]int64, at time.Time) error {
	keys := make([]string, 0, len(computed))
	for k := range computed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE quota_usage SET used = since_mark, computed_at = ?`, ts(at)); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO quota_usage (scope, used, since_mark, computed_at) VALUES (?, ?, 0, ?)
				ON CONFLICT (scope) DO UPDATE SET used = quota_usage.used + excluded.used, computed_at = excluded.computed_at`,
				k, computed[k], ts(at)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM quota_usage WHERE used = 0`)
		return err
	})
	if err != nil {
		return fmt.Errorf("storing quota usage: %w", err)
	}
	return nil
}

func (s quotaStore) list(ctx context.Context) ([]usageRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT scope, used, computed_at FROM quota_usage ORDER BY scope`)
	if err != nil {
		return nil, fmt.Errorf("reading quota usage: %w", err)
	}
	defer rows.Close()
	var out []usageRow
	for rows.Next() {
		var r usageRow
		if err := rows.Scan(&r.scope, &r.used, &r.computedAt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
