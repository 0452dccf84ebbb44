package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/drydock-project/drydock/internal/audit"
)

// AuditScanner reads the audit log forward; *audit.Log implements it.
type AuditScanner interface {
	AuditLog
	Scan(ctx context.Context, fromSeq int64, fn func(*audit.Entry) error) error
}

// errPageFull stops a scan when a page is full.
var errPageFull = errors.New("page full")

// ReadAuditAfter returns up to limit entries with seq > after whose action
// is action ("" for every action), oldest first: the pages of a reader
// going forward, as "drydock audit --follow" does. NextAfter is the last
// entry's seq (after when there is none), the after of the next page.
func ReadAuditAfter(ctx context.Context, l AuditScanner, after int64, limit int, action audit.Action) (*AuditPage, error) {
	head, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	page := &AuditPage{Entries: []audit.Entry{}, Head: head.Seq, NextAfter: after}
	err = l.Scan(ctx, after+1, func(e *audit.Entry) error {
		if e.Seq > head.Seq {
			return errPageFull // recorded after the head was read: the next page
		}
		page.NextAfter = e.Seq
		if action == "" || e.Action == action {
			page.Entries = append(page.Entries, *e)
		}
		if len(page.Entries) == limit {
			return errPageFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	return page, nil
}

// auditAfter: GET /api/v1/audit?after=SEQ&limit=N&action=A, the entries
// after SEQ oldest first (after=0: from the first).
func (h *handler) auditAfter(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("before") {
		writeError(w, http.StatusBadRequest, "INVALID", "after and before exclude each other: after reads forward, before backward")
		return
	}
	s := q.Get("after")
	after, err := strconv.ParseInt(s, 10, 64)
	if err != nil || after < 0 {
		writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("after: %q, want a sequence number of 0 or more", s))
		return
	}
	_, limit, action, err := ParseAuditQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
		return
	}
	l, ok := h.Audit.(AuditScanner)
	if !ok {
		writeError(w, http.StatusConflict, "NOT_CONFIGURED", "after: this server's audit log cannot be read forward")
		return
	}
	page, err := ReadAuditAfter(r.Context(), l, after, limit, action)
	h.answer(w, r, http.StatusOK, page, err)
}
