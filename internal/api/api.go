// Package api is drydock's JSON HTTP API under /api/v1/. The CLI's server
// commands (verdict, promote) and the web UI call it; every handler calls
// the same service functions the rest of drydock uses.
//
// Errors are {"error": {"code": CODE, "message": TEXT}} with an HTTP
// status: 400 INVALID, 401 UNAUTHORIZED (from the auth layer), 403 DENIED
// (a missing role) or PROMOTION_REFUSED (the verdict; the body also holds
// it), 404 NOT_FOUND, 405 METHOD_NOT_ALLOWED, 409 NOT_CONFIGURED (a
// feature the server's configuration leaves off), 500 INTERNAL.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/gc"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/patchjob"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/workflow"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// Gate is the gate service; *gatekeeper.Keeper implements it.
type Gate interface {
	Verdict(ctx context.Context, ref string) (*gatekeeper.Status, error)
	Promote(ctx context.Context, req gatekeeper.PromoteRequest) (*gatekeeper.Promotion, error)
	RecordImport(ctx context.Context, actor, ref, source string) (*gatekeeper.Status, error)
	Rescan(ctx context.Context, ref string) (int64, error)
	Images(ctx context.Context) ([]store.Image, error)
}

// Roles the handlers ask the Authorizer for.
const (
	RolePull    = "pull"
	RolePush    = "push"
	RolePromote = "promote"
)

// Authorizer decides whether the request's principal holds role on a
// repository's namespace; the error's text is shown to the client.
type Authorizer func(r *http.Request, role, repository string) error

// Options configure the handler.
type Options struct {
	Gate    Gate
	Patches Patcher // nil: the server runs no patches
	// Kube is the Kubernetes side (nil: its endpoints answer
	// NOT_CONFIGURED).
	Kube      Kube
	Authorize Authorizer
	// Attest verifies signatures and serves drydock's public key; nil
	// answers NOT_FOUND on those routes.
	Attest Attestations
	// Actor names the request's principal for the audit log.
	Actor func(r *http.Request) string
	Log   *slog.Logger
	// Workflows is the continuous-patching service; nil leaves its routes
	// out.
	Workflows Workflows
	// GC is the garbage collection service; nil leaves its routes out.
	GC GC
	// Exceptions is the exception service; nil leaves its routes out.
	Exceptions Exceptions
	// Database reports the vulnerability database; nil leaves its route
	// out.
	Database Database
	// Scans reads the findings of scans; nil leaves GET /api/v1/findings
	// out.
	Scans Scans
	// Audit reads the audit log; nil leaves GET /api/v1/audit out.
	Audit AuditLog
	// Policy reads and replaces the gate's policy; nil leaves its routes
	// out.
	Policy Policies
	// Index is the findings index; nil leaves its routes (cves.go) out.
	Index FindingsIndex
	// Tags lists the registry's tags, for the CVE and package answers
	// (nil: they list no tags).
	Tags TagLister
	// Dashboard serves the findings history and the end-of-life images;
	// nil leaves their routes (dashboard.go) out. It needs Index too.
	Dashboard Dashboard
	// Manifests reads the registry for the image routes (image.go; with
	// Scans), Inventories the stored inventories for their packages; nil
	// leaves those routes out.
	Manifests   Manifests
	Inventories Inventories
}

type handler struct{ Options }

// Handler returns the API's handler, to be mounted at /api/v1/.
func Handler(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Actor == nil {
		o.Actor = func(*http.Request) string { return "anonymous" }
	}
	h := &handler{o}
	mux := http.NewServeMux()
	routes := h.routes()
	methods := map[string][]string{} // path pattern -> methods, for 405 answers
	for _, rt := range routes {
		mux.HandleFunc(rt.method+" "+rt.path, rt.fn)
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	// A pattern without a method is less specific than one with it: it
	// catches the other methods of each path.
	for path, ms := range methods {
		allow := strings.Join(slices.Sorted(slices.Values(ms)), ", ")
		// One pattern per other method, not one without a method: a
		// method-less "/api/v1/images/end-of-life" would conflict with
		// "GET /api/v1/images/{digest}".
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if slices.Contains(ms, m) || (m == http.MethodHead && slices.Contains(ms, http.MethodGet)) {
				continue
			}
			mux.HandleFunc(m+" "+path, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", allow)
				writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.URL.Path+" takes "+allow+", not "+r.Method)
			})
		}
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// routes lists the API's routes for the services h has.
func (h *handler) routes() []route {
	routes := []route{
		{http.MethodGet, "/api/v1/verdict", h.verdict},
		{http.MethodGet, "/api/v1/verdicts", h.verdicts},
		{http.MethodPost, "/api/v1/promote", h.promote},
		{http.MethodPost, "/api/v1/imports", h.imports},
		{http.MethodPost, "/api/v1/rescan", h.rescan},
		{http.MethodGet, "/api/v1/kube/images", h.kubeImages},
		{http.MethodGet, "/api/v1/kube/affected", h.kubeAffected},
		{http.MethodGet, "/api/v1/kube/webhook-configurations", h.kubeWebhooks},
		{http.MethodPost, "/api/v1/kube/rollout-plan", h.kubePlan},
		{http.MethodPost, "/api/v1/kube/rollouts", h.kubeRecordRollout},
		{http.MethodPost, "/api/v1/patch", h.patchSubmit},
		{http.MethodGet, "/api/v1/patch/{id}", h.patchStatus},
		{http.MethodGet, "/api/v1/keys", h.keys},
		{http.MethodPost, "/api/v1/verify", h.verify},
		{http.MethodGet, "/api/v1/openapi.json", h.openapi},
	}
	if h.Workflows != nil {
		routes = append(routes, h.workflowRoutes()...)
	}
	if h.Exceptions != nil {
		routes = append(routes, h.exceptionRoutes()...)
	}
	if h.Database != nil {
		routes = append(routes, route{http.MethodGet, "/api/v1/db/status", h.dbStatus})
	}
	if h.GC != nil {
		routes = append(routes, h.gcRoutes()...)
	}
	if h.Scans != nil {
		routes = append(routes, route{http.MethodGet, "/api/v1/findings", h.findings})
	}
	if h.Audit != nil {
		routes = append(routes, route{http.MethodGet, "/api/v1/audit", h.auditLog})
	}
	if h.Policy != nil {
		routes = append(routes, h.policyRoutes()...)
	}
	if h.Index != nil {
		routes = append(routes, h.indexRoutes()...)
		if h.Dashboard != nil {
			routes = append(routes, h.dashboardRoutes()...)
		}
	}
	if h.Manifests != nil && h.Scans != nil {
		routes = append(routes, h.imageRoutes()...)
	}
	return routes
}

type route struct {
	method, path string
	fn           http.HandlerFunc
}

// ErrorBody is the JSON body of an error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	// Verdict is set on PROMOTION_REFUSED.
	Verdict *gate.Verdict `json:"verdict,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

// fail maps a service error to a response.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var refused *gatekeeper.RefusedError
	switch {
	case errors.As(err, &refused):
		var b ErrorBody
		b.Error.Code, b.Error.Message = "PROMOTION_REFUSED", refused.Error()
		b.Verdict = &refused.Verdict
		writeJSON(w, http.StatusForbidden, b)
	case errors.Is(err, gatekeeper.ErrUnknownImage), errors.Is(err, workflow.ErrNotFound), errors.Is(err, patchjob.ErrNotFound),
		errors.Is(err, exceptions.ErrNotFound), errors.Is(err, gc.ErrRunNotFound):
		writeError(w, http.StatusNotFound, "NOT_FOUND", err.Error())
	case errors.Is(err, workflow.ErrExists), errors.Is(err, exceptions.ErrRevoked):
		writeError(w, http.StatusConflict, "CONFLICT", err.Error())
	case errors.Is(err, gatekeeper.ErrInvalidRequest), errors.Is(err, errInvalid), errors.Is(err, workflow.ErrInvalid), errors.Is(err, workflow.ErrInvalidConfig),
		errors.Is(err, patchjob.ErrInvalid), errors.Is(err, patch.ErrInvalidRequest), errors.Is(err, exceptions.ErrInvalid):
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
	default:
		h.Log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
	}
}

var errInvalid = errors.New("invalid request")

// allow checks role on repo; false means the response is written.
func (h *handler) allow(w http.ResponseWriter, r *http.Request, role, repo string) bool {
	if h.Authorize == nil {
		return true
	}
	if err := h.Authorize(r, role, repo); err != nil {
		writeError(w, http.StatusForbidden, "DENIED", err.Error())
		return false
	}
	return true
}

// repoOf returns the repository of a reference, or writes a 400.
func (h *handler) repoOf(w http.ResponseWriter, ref string) (string, bool) {
	r, err := gatekeeper.ParseRef(ref)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
		return "", false
	}
	return r.Repository, true
}

func decode(r *http.Request, v any) error { return decodeLimit(r, v, maxBody) }

// decodeLimit decodes a JSON body of at most limit bytes into v.
func decodeLimit(r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errors.Join(errInvalid, errors.New("Content-Type must be application/json"))
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.Join(errInvalid, errors.New("request body: "+err.Error()))
	}
	return nil
}

// verdict: GET /api/v1/verdict?ref=quarantine/NAME:TAG
func (h *handler) verdict(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	repo, ok := h.repoOf(w, ref)
	if !ok || !h.allow(w, r, RolePull, repo) {
		return
	}
	st, err := h.Gate.Verdict(r.Context(), ref)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// VerdictsResponse is the body of GET /api/v1/verdicts.
type VerdictsResponse struct {
	Images []store.Image `json:"images"`
}

// verdicts: GET /api/v1/verdicts, every digest the principal may pull
// (by the repository it arrived in) with its effective verdict.
func (h *handler) verdicts(w http.ResponseWriter, r *http.Request) {
	all, err := h.Gate.Images(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := VerdictsResponse{Images: []store.Image{}}
	for _, im := range all {
		if h.Authorize == nil || h.Authorize(r, RolePull, im.Repository) == nil {
			out.Images = append(out.Images, im)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// promote: POST /api/v1/promote {"source": ..., "target": ...}
func (h *handler) promote(w http.ResponseWriter, r *http.Request) {
	var req gatekeeper.PromoteRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	src, _, dst, _, err := gatekeeper.PlanPromotion(req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.allow(w, r, RolePull, src) || !h.allow(w, r, RolePromote, dst) {
		return
	}
	req.Actor = h.Actor(r)
	p, err := h.Gate.Promote(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// ImportRequest is the body of POST /api/v1/imports.
type ImportRequest struct {
	// Reference is quarantine/NAME:TAG or quarantine/NAME@DIGEST.
	Reference string `json:"reference"`
	Source    string `json:"source"`
}

// imports: POST /api/v1/imports, sent by `drydock import` after the copy.
func (h *handler) imports(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	repo, ok := h.repoOf(w, req.Reference)
	if !ok || !h.allow(w, r, RolePush, repo) {
		return
	}
	st, err := h.Gate.RecordImport(r.Context(), h.Actor(r), req.Reference, req.Source)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// RescanRequest is the body of POST /api/v1/rescan.
type RescanRequest struct {
	Reference string `json:"reference"`
}

func (h *handler) rescan(w http.ResponseWriter, r *http.Request) {
	var req RescanRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	repo, ok := h.repoOf(w, req.Reference)
	if !ok || !h.allow(w, r, RolePush, repo) {
		return
	}
	id, err := h.Gate.Rescan(r.Context(), req.Reference)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": id, "reference": req.Reference})
}
