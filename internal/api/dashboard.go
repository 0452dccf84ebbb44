package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/drydock-project/drydock/internal/store"
)

// The dashboard's series and lists that no single image holds: the
// fixable findings by severity per day (store.FindingHistory) and the
// images whose OS is past, or near, the end of its public security
// support (store.EndOfLife).

// Dashboard is what these routes read; store.SQL implements it.
type Dashboard interface {
	FindingHistory(ctx context.Context, days int) ([]store.HistoryPoint, error)
	EndOfLife(ctx context.Context, sc store.RepositoryScope, by time.Time, limit int) ([]store.SupportedImage, int, error)
}

// Bounds and defaults of the dashboard routes.
const (
	DefaultHistoryDays = 90
	DefaultEOLWithin   = 30 // days
	MaxEOLWithin       = 365
	DefaultEOLLimit    = 50
)

func (h *handler) dashboardRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/findings/history", h.findingHistory},
		{http.MethodGet, "/api/v1/images/end-of-life", h.endOfLife},
	}
}

// HistoryResponse is the body of GET /api/v1/findings/history.
type HistoryResponse struct {
	// Days holds one point per day, oldest first, to today.
	Days []store.HistoryPoint `json:"days"`
}

// findingHistory: GET /api/v1/findings/history?days=N, the fixable
// findings over every repository by severity per day. The series covers
// every repository, so only a caller who may pull everywhere reads it.
func (h *handler) findingHistory(w http.ResponseWriter, r *http.Request) {
	days := DefaultHistoryDays
	if s := r.URL.Query().Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.HistoryDays {
			writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("days: %q, want 1 to %d", trunc(s), store.HistoryDays))
			return
		}
		days = n
	}
	sc, ok := h.scope(w, r)
	if !ok {
		return
	}
	if !sc.All {
		writeError(w, http.StatusForbidden, "DENIED", "the findings history covers every repository: it needs pull rights on all of them")
		return
	}
	ps, err := h.Dashboard.FindingHistory(r.Context(), days)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, HistoryResponse{Days: ps})
}

// EOLResponse is the body of GET /api/v1/images/end-of-life.
type EOLResponse struct {
	// By is the last day counted: today plus within.
	By     string                 `json:"by"`
	Total  int                    `json:"total"`
	Images []store.SupportedImage `json:"images"`
}

// endOfLife: GET /api/v1/images/end-of-life?within=DAYS&limit=N, the
// images the caller may pull whose OS's public security support ended or
// ends within DAYS days (default 30), soonest first.
func (h *handler) endOfLife(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	within, limit := DefaultEOLWithin, DefaultEOLLimit
	if s := q.Get("within"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxEOLWithin {
			writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("within: %q, want 0 to %d days", trunc(s), MaxEOLWithin))
			return
		}
		within = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxImagePage {
			writeError(w, http.StatusBadRequest, "INVALID", fmt.Sprintf("limit: %q, want 1 to %d", trunc(s), store.MaxImagePage))
			return
		}
		limit = n
	}
	sc, ok := h.scope(w, r)
	if !ok {
		return
	}
	by := h.now().UTC().AddDate(0, 0, within)
	ims, total, err := h.Dashboard.EndOfLife(r.Context(), sc, by, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ims == nil {
		ims = []store.SupportedImage{}
	}
	writeJSON(w, http.StatusOK, EOLResponse{By: by.Format(time.DateOnly), Total: total, Images: ims})
}

// now is the handler's clock: the exception service's when there is one.
func (h *handler) now() time.Time {
	if h.Exceptions != nil {
		return h.Exceptions.Now()
	}
	return time.Now()
}
