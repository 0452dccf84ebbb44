package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/drydock-project/drydock/internal/gc"
)

// GC is the garbage collection service; *gc.Service implements it.
type GC interface {
	Start(ctx context.Context, req gc.Request) (*gc.Run, error)
	Run(ctx context.Context, id int64) (*gc.Run, error)
	Runs(ctx context.Context, limit int) ([]gc.Run, error)
	Quotas(ctx context.Context) ([]gc.QuotaUsage, error)
}

// QuotasResponse is the body of GET /api/v1/quotas.
type QuotasResponse struct {
	Quotas []gc.QuotaUsage `json:"quotas"`
}

// GCRequest is the body of POST /api/v1/gc.
type GCRequest struct {
	// DryRun reports what a run would delete and deletes nothing.
	DryRun bool `json:"dryRun"`
	// SkipRetention collects without applying the retention policies.
	SkipRetention bool `json:"skipRetention"`
}

// GCRunsResponse is the body of GET /api/v1/gc/runs.
type GCRunsResponse struct {
	Runs []gc.Run `json:"runs"`
}

func (h *handler) gcRoutes() []route {
	return []route{
		{http.MethodPost, "/api/v1/gc", h.gcStart},
		{http.MethodGet, "/api/v1/gc/runs", h.gcRuns},
		{http.MethodGet, "/api/v1/gc/runs/{id}", h.gcRun},
		{http.MethodGet, "/api/v1/quotas", h.quotas},
	}
}

// gcStart: POST /api/v1/gc {"dryRun": true}, 202 with the queued run; its
// progress and report are read at /api/v1/gc/runs/ID.
func (h *handler) gcStart(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, RoleAdmin, "") {
		return
	}
	var req GCRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	run, err := h.GC.Start(r.Context(), gc.Request{DryRun: req.DryRun, SkipRetention: req.SkipRetention, Actor: h.Actor(r)})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

// gcRuns: GET /api/v1/gc/runs?limit=N, the newest runs first (without
// the items of their reports).
func (h *handler) gcRuns(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, RoleAdmin, "") {
		return
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "INVALID", "limit: want 1 to 1000")
			return
		}
		limit = n
	}
	runs, err := h.GC.Runs(r.Context(), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, GCRunsResponse{Runs: runs})
}

// gcRun: GET /api/v1/gc/runs/ID, a run with its progress and report.
func (h *handler) gcRun(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, RoleAdmin, "") {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "INVALID", "run id: want a positive number")
		return
	}
	run, err := h.GC.Run(r.Context(), id)
	h.answer(w, r, http.StatusOK, run, err)
}

// quotas: GET /api/v1/quotas, every repository's and namespace's usage
// (bytes, dedupe-aware, as of the last collection plus what was pushed
// since) with its quota.
func (h *handler) quotas(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, RoleAdmin, "") {
		return
	}
	qs, err := h.GC.Quotas(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if qs == nil {
		qs = []gc.QuotaUsage{}
	}
	writeJSON(w, http.StatusOK, QuotasResponse{Quotas: qs})
}
