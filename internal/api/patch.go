package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/patchjob"
)

// Patcher runs patches on the server; *patchjob.Service implements it.
type Patcher interface {
	Submit(ctx context.Context, actor string, req patch.Request) (int64, error)
	Status(ctx context.Context, id int64) (*patchjob.Status, error)
}

// PatchRequest is the body of POST /api/v1/patch: a patch.Request whose
// image is quarantine/NAME[:TAG] or live/NAME[:TAG] on this server, and
// optionally the Trivy or drydock JSON report to take the packages from
// (mode "report").
type PatchRequest struct {
	patch.Request
	Report json.RawMessage `json:"report,omitempty"`
}

// PatchAccepted is the answer to POST /api/v1/patch (202).
type PatchAccepted struct {
	Job    int64  `json:"job"`
	Status string `json:"status"` // the URL to GET the job at
}

// maxPatchBody bounds a patch request with its report.
const maxPatchBody = 32 << 20

// patchSubmit: POST /api/v1/patch. The caller needs pull on the input's
// repository and push on the output's (quarantine/).
func (h *handler) patchSubmit(w http.ResponseWriter, r *http.Request) {
	if h.Patches == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "this server does not run patches")
		return
	}
	var req PatchRequest
	if err := decodeLimit(r, &req, maxPatchBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(req.Report) > 0 {
		if req.Mode != "" && req.Mode != patch.FromReport {
			h.fail(w, r, errors.Join(errInvalid, errors.New("a report goes with mode \"report\"")))
			return
		}
		pkgs, err := patch.ParseReport(bytes.NewReader(req.Report))
		if err != nil {
			h.fail(w, r, errors.Join(errInvalid, errors.New("report: "+err.Error())))
			return
		}
		req.Mode, req.Packages = patch.FromReport, pkgs
	}
	in, out, err := patchjob.Targets(req.Request)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.allow(w, r, RolePull, in) || !h.allow(w, r, RolePush, out) {
		return
	}
	id, err := h.Patches.Submit(r.Context(), h.Actor(r), req.Request)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, PatchAccepted{Job: id, Status: "/api/v1/patch/" + strconv.FormatInt(id, 10)})
}

// patchStatus: GET /api/v1/patch/{id}: the job's state, progress and, once
// done, its result. The caller needs pull on the input's repository.
func (h *handler) patchStatus(w http.ResponseWriter, r *http.Request) {
	if h.Patches == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "this server does not run patches")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "INVALID", "patch job id "+strconv.Quote(r.PathValue("id"))+" is not a positive number")
		return
	}
	st, err := h.Patches.Status(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	in, _, err := patchjob.Targets(st.Request)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.allow(w, r, RolePull, in) {
		return
	}
	writeJSON(w, http.StatusOK, st)
}
