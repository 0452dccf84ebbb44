package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/drydock-project/drydock/internal/audit"
)

// AuditLog reads the audit log; *audit.Log implements it.
type AuditLog interface {
	Head(ctx context.Context) (audit.Anchor, error)
	Newest(ctx context.Context, before int64, action audit.Action, limit int) ([]*audit.Entry, error)
}

// AuditPage is the body of GET /api/v1/audit: entries newest first, and
// the "before" of the next (older) page, 0 when there is none.
type AuditPage struct {
	Entries    []audit.Entry `json:"entries"`
	NextBefore int64         `json:"nextBefore"`
	// Head is the log's latest seq.
	Head int64 `json:"head"`
	// NextAfter is the after of the next page when reading forward
	// (after=SEQ); unset otherwise.
	NextAfter int64 `json:"nextAfter,omitempty"`
}

// Audit page sizes.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 500
)

// ReadAuditPage returns up to limit entries with seq < before (the newest
// when before is 0) whose action is action ("" for every action), newest
// first: one indexed read, whatever the log's size.
func ReadAuditPage(ctx context.Context, l AuditLog, before int64, limit int, action audit.Action) (*AuditPage, error) {
	head, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	es, err := l.Newest(ctx, before, action, limit)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	page := &AuditPage{Entries: make([]audit.Entry, 0, len(es)), Head: head.Seq}
	for _, e := range es {
		page.Entries = append(page.Entries, *e)
	}
	if n := len(page.Entries); n == limit && page.Entries[n-1].Seq > 1 {
		page.NextBefore = page.Entries[n-1].Seq
	}
	return page, nil
}

// ParseAuditQuery reads before, limit and action; errors name the
// parameter.
func ParseAuditQuery(r *http.Request) (before int64, limit int, action audit.Action, err error) {
	q := r.URL.Query()
	limit = DefaultAuditLimit
	if s := q.Get("before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			return 0, 0, "", fmt.Errorf("before: %q, want a sequence number of 1 or more", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxAuditLimit {
			return 0, 0, "", fmt.Errorf("limit: %q, want 1 to %d", s, MaxAuditLimit)
		}
	}
	if s := q.Get("action"); s != "" {
		if action = audit.Action(s); !action.Valid() {
			return 0, 0, "", fmt.Errorf("action: %q is not an audit action (push, promotion, bypass_refused, exception, ...)", s)
		}
	}
	return before, limit, action, nil
}

// auditLog: GET /api/v1/audit?before=SEQ&limit=N&action=A, the audit log
// newest first (with after=SEQ instead of before: oldest first, see
// auditAfter). It tells who did what from where: admin only.
func (h *handler) auditLog(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, RoleAdmin, "") {
		return
	}
	if r.URL.Query().Has("after") {
		h.auditAfter(w, r)
		return
	}
	before, limit, action, err := ParseAuditQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
		return
	}
	page, err := ReadAuditPage(r.Context(), h.Audit, before, limit, action)
	h.answer(w, r, http.StatusOK, page, err)
}
