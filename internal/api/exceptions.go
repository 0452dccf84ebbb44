package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/imgref"
)

// Exceptions is the gate's exception service; *gatekeeper.Keeper
// implements it.
type Exceptions interface {
	Exceptions(ctx context.Context, f exceptions.Filter) ([]exceptions.Exception, error)
	Exception(ctx context.Context, id int64) (exceptions.Exception, error)
	CreateException(ctx context.Context, actor string, e exceptions.Exception) (*gatekeeper.ExceptionChange, error)
	RevokeException(ctx context.Context, actor string, id int64) (*gatekeeper.ExceptionChange, error)
	ExportExceptions(ctx context.Context, actor string, f exceptions.Filter) ([]byte, error)
	// Now is the gate's clock: "in force" means at this time.
	Now() time.Time
}

// The exception routes. Reading exceptions needs pull on quarantine/.
// An exception lets findings into live/, so creating or revoking one of a
// digest or a repository needs promote on live/ (on the repository's
// live/ twin), and one that covers every image needs admin.
func (h *handler) exceptionRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/exceptions", h.listExceptions},
		{http.MethodPost, "/api/v1/exceptions", h.createException},
		{http.MethodGet, "/api/v1/openvex/exceptions", h.exportExceptions},
		{http.MethodGet, "/api/v1/exceptions/{id}", h.showException},
		{http.MethodPost, "/api/v1/exceptions/{id}/revoke", h.revokeException},
	}
}

// RoleAdmin is the global role that may write exceptions covering every
// image.
const RoleAdmin = "admin"

// ExceptionRequest is the body of POST /api/v1/exceptions.
type ExceptionRequest struct {
	// Scope is digest, repository or global.
	Scope      exceptions.Scope `json:"scope"`
	Digest     string           `json:"digest,omitempty"`
	Repository string           `json:"repository,omitempty"`
	CVE        string           `json:"cve,omitempty"`
	Package    string           `json:"package,omitempty"`
	// Justification is an OpenVEX not_affected justification.
	Justification string `json:"justification"`
	Reason        string `json:"reason"`
	// Expires is an RFC 3339 time.
	Expires string `json:"expires"`
}

// ExceptionsResponse is the body of GET /api/v1/exceptions.
type ExceptionsResponse struct {
	Exceptions []exceptions.Exception `json:"exceptions"`
}

func (h *handler) readExceptions(w http.ResponseWriter, r *http.Request) bool {
	return h.allow(w, r, RolePull, imgref.Quarantine)
}

// writeException checks the role that writing e needs.
func (h *handler) writeException(w http.ResponseWriter, r *http.Request, e exceptions.Exception) bool {
	switch e.Scope {
	case exceptions.ScopeRepository:
		return h.allow(w, r, RolePromote, imgref.Rebase(e.Repository, imgref.Live))
	case exceptions.ScopeDigest:
		return h.allow(w, r, RolePromote, imgref.Live)
	default:
		return h.allow(w, r, RoleAdmin, imgref.Live)
	}
}

// exceptionFilter reads the list and export filters from the query.
func exceptionFilter(r *http.Request, now time.Time) (exceptions.Filter, error) {
	q := r.URL.Query()
	f := exceptions.Filter{CVE: q.Get("cve"), Package: q.Get("package"), Digest: q.Get("digest"), Repository: q.Get("repository")}
	switch a := q.Get("active"); a {
	case "", "true":
		f.ActiveAt = now
	case "false", "all":
	default:
		return f, errors.Join(errInvalid, errors.New("active: "+strconv.Quote(a)+": want true (in force now, the default) or all"))
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return f, errors.Join(errInvalid, errors.New("limit: "+strconv.Quote(s)+": want a number from 1 to 10000"))
		}
		f.Limit = n
	}
	return f, nil
}

func (h *handler) listExceptions(w http.ResponseWriter, r *http.Request) {
	if !h.readExceptions(w, r) {
		return
	}
	f, err := exceptionFilter(r, h.Exceptions.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	exs, err := h.Exceptions.Exceptions(r.Context(), f)
	h.answer(w, r, http.StatusOK, ExceptionsResponse{Exceptions: exs}, err)
}

func (h *handler) exportExceptions(w http.ResponseWriter, r *http.Request) {
	if !h.readExceptions(w, r) {
		return
	}
	f, err := exceptionFilter(r, h.Exceptions.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	doc, err := h.Exceptions.ExportExceptions(r.Context(), h.Actor(r), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="drydock-exceptions.openvex.json"`)
	_, _ = w.Write(doc)
}

func (h *handler) exceptionID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "INVALID", "id: "+strconv.Quote(s)+": want an exception number")
		return 0, false
	}
	return id, true
}

func (h *handler) showException(w http.ResponseWriter, r *http.Request) {
	if !h.readExceptions(w, r) {
		return
	}
	id, ok := h.exceptionID(w, r)
	if !ok {
		return
	}
	e, err := h.Exceptions.Exception(r.Context(), id)
	h.answer(w, r, http.StatusOK, e, err)
}

func (h *handler) createException(w http.ResponseWriter, r *http.Request) {
	if !h.readExceptions(w, r) {
		return
	}
	var req ExceptionRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	switch req.Scope {
	case exceptions.ScopeDigest, exceptions.ScopeRepository, exceptions.ScopeGlobal:
	default:
		writeError(w, http.StatusBadRequest, "INVALID", "scope: "+strconv.Quote(string(req.Scope))+": want digest, repository or global")
		return
	}
	e := exceptions.Exception{Scope: req.Scope, Digest: req.Digest, Repository: req.Repository, CVE: req.CVE,
		Package: req.Package, Justification: req.Justification, Reason: req.Reason}
	if req.Expires != "" {
		t, err := time.Parse(time.RFC3339, req.Expires)
		if err != nil {
			writeError(w, http.StatusBadRequest, "INVALID", "expires: "+strconv.Quote(req.Expires)+" is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z)")
			return
		}
		e.Expires = t
	}
	if !h.writeException(w, r, e) {
		return
	}
	ch, err := h.Exceptions.CreateException(r.Context(), h.Actor(r), e)
	h.answer(w, r, http.StatusCreated, ch, err)
}

func (h *handler) revokeException(w http.ResponseWriter, r *http.Request) {
	if !h.readExceptions(w, r) {
		return
	}
	id, ok := h.exceptionID(w, r)
	if !ok {
		return
	}
	e, err := h.Exceptions.Exception(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.writeException(w, r, e) {
		return
	}
	ch, err := h.Exceptions.RevokeException(r.Context(), h.Actor(r), id)
	h.answer(w, r, http.StatusOK, ch, err)
}
