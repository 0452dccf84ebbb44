package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/drydock-project/drydock/internal/audit"
)

// AuditLog reads the audit log; *audit.Log implements it.
type AuditLog interface {
	Head(ctx context.Context) (audit.Anchor, error)
	Scan(ctx context.Context, fromSeq int64, fn func(*audit.Entry) error) error
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
	// auditWindow is how many records a page reads at a time, going back.
	auditWindow = 512
)

var errPageFull = errors.New("page full")

// ReadAuditPage returns up to limit entries with seq < before (the newest
// when before is 0) whose action is action ("" for every action), newest
// first.
func ReadAuditPage(ctx context.Context, l AuditLog, before int64, limit int, action audit.Action) (*AuditPage, error) {
	head, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	page := &AuditPage{Entries: []audit.Entry{}, Head: head.Seq}
	end := head.Seq + 1 // exclusive
	if before > 0 && before < end {
		end = before
	}
	for end > 1 && len(page.Entries) < limit {
		from := max(1, end-auditWindow)
		var window []audit.Entry
		err := l.Scan(ctx, from, func(e *audit.Entry) error {
			if e.Seq >= end {
				return errPageFull
			}
			if action == "" || e.Action == action {
				window = append(window, *e)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPageFull) {
			return nil, fmt.Errorf("read the audit log: %w", err)
		}
		for i := len(window) - 1; i >= 0 && len(page.Entries) < limit; i-- {
			page.Entries = append(page.Entries, window[i])
		}
		end = from
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
