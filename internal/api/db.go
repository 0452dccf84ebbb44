package api

import (
	"context"
	"net/http"

	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/imgref"
)

// Database reports the gate's vulnerability database; *gatekeeper.Keeper
// implements it.
type Database interface {
	DBStatus(ctx context.Context) (*gatekeeper.DBStatus, error)
}

// dbStatus: GET /api/v1/db/status, the database's build, the age of its
// data (since the newest record) and whether it is stale. Needs pull on
// quarantine/, as verdicts do.
func (h *handler) dbStatus(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, RolePull, imgref.Quarantine) {
		return
	}
	st, err := h.Database.DBStatus(r.Context())
	h.answer(w, r, http.StatusOK, st, err)
}
