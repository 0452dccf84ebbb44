package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/workflow"
)

// Workflows is the continuous-patching service; *workflow.Engine
// implements it.
type Workflows interface {
	Create(ctx context.Context, req workflow.CreateRequest) (*workflow.Result, error)
	Update(ctx context.Context, req workflow.UpdateRequest) (*workflow.Result, error)
	Delete(ctx context.Context, name string) ([]string, error)
	Show(ctx context.Context, name string) (*workflow.View, error)
	List(ctx context.Context) ([]*workflow.View, error)
	RunNow(ctx context.Context, name string) (*workflow.Run, error)
	Runs(ctx context.Context, name string, limit int) ([]workflow.RunSummary, error)
	ImageStatuses(ctx context.Context, req workflow.StatusRequest) (*workflow.StatusList, error)
	Cancel(ctx context.Context, name, id string) ([]string, error)
	RunWithLog(ctx context.Context, id string, after int64) (*workflow.RunDetail, error)
}

// maxWorkflowBody bounds a create or update request: a config file of up
// to 10 MiB, JSON-escaped in a string.
const maxWorkflowBody = 3*workflow.MaxConfigSize + maxBody

// workflowNamespace is the namespace whose roles govern workflows: they
// write patched images into quarantine/.
const workflowNamespace = imgref.Quarantine

// The workflow routes. Reading workflows and their runs needs pull on
// quarantine/; changing them (they make the server write tags) needs push
// on quarantine/.
func (h *handler) workflowRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/workflows", h.listWorkflows},
		{http.MethodPost, "/api/v1/workflows", h.createWorkflow},
		{http.MethodGet, "/api/v1/workflows/{name}", h.showWorkflow},
		{http.MethodPatch, "/api/v1/workflows/{name}", h.updateWorkflow},
		{http.MethodDelete, "/api/v1/workflows/{name}", h.deleteWorkflow},
		{http.MethodGet, "/api/v1/workflows/{name}/runs", h.workflowRuns},
		{http.MethodPost, "/api/v1/workflows/{name}/runs", h.runWorkflow},
		{http.MethodGet, "/api/v1/workflows/{name}/images", h.workflowImages},
		{http.MethodPost, "/api/v1/workflows/{name}/cancel", h.cancelWorkflowRuns},
		{http.MethodGet, "/api/v1/workflow-runs/{id}", h.workflowRun},
	}
}

// CanceledResponse lists the runs a cancel or delete canceled.
type CanceledResponse struct {
	Canceled []string `json:"canceled"`
}

// CancelRequest is the body of POST /api/v1/workflows/{name}/cancel: one
// run, or every queued and running run when Run is empty.
type CancelRequest struct {
	Run string `json:"run,omitempty"`
}

func (h *handler) readWorkflows(w http.ResponseWriter, r *http.Request) bool {
	return h.allow(w, r, RolePull, workflowNamespace)
}

func (h *handler) writeWorkflows(w http.ResponseWriter, r *http.Request) bool {
	return h.allow(w, r, RolePush, workflowNamespace)
}

// answer writes v, or the error.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

func (h *handler) listWorkflows(w http.ResponseWriter, r *http.Request) {
	if !h.readWorkflows(w, r) {
		return
	}
	vs, err := h.Workflows.List(r.Context())
	if vs == nil {
		vs = []*workflow.View{}
	}
	h.answer(w, r, http.StatusOK, map[string]any{"workflows": vs}, err)
}

func (h *handler) createWorkflow(w http.ResponseWriter, r *http.Request) {
	var req workflow.CreateRequest
	if err := decodeLimit(r, &req, maxWorkflowBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.writeWorkflows(w, r) {
		return
	}
	res, err := h.Workflows.Create(r.Context(), req)
	status := http.StatusCreated
	if req.DryRun {
		status = http.StatusOK
	}
	h.answer(w, r, status, res, err)
}

func (h *handler) showWorkflow(w http.ResponseWriter, r *http.Request) {
	if !h.readWorkflows(w, r) {
		return
	}
	v, err := h.Workflows.Show(r.Context(), r.PathValue("name"))
	h.answer(w, r, http.StatusOK, v, err)
}

func (h *handler) updateWorkflow(w http.ResponseWriter, r *http.Request) {
	var req workflow.UpdateRequest
	if err := decodeLimit(r, &req, maxWorkflowBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.writeWorkflows(w, r) {
		return
	}
	req.Name = r.PathValue("name")
	res, err := h.Workflows.Update(r.Context(), req)
	h.answer(w, r, http.StatusOK, res, err)
}

func (h *handler) deleteWorkflow(w http.ResponseWriter, r *http.Request) {
	if !h.writeWorkflows(w, r) {
		return
	}
	ids, err := h.Workflows.Delete(r.Context(), r.PathValue("name"))
	h.answer(w, r, http.StatusOK, CanceledResponse{Canceled: nonNil(ids)}, err)
}

func (h *handler) runWorkflow(w http.ResponseWriter, r *http.Request) {
	if !h.writeWorkflows(w, r) {
		return
	}
	run, err := h.Workflows.RunNow(r.Context(), r.PathValue("name"))
	h.answer(w, r, http.StatusAccepted, run, err)
}

func (h *handler) workflowRuns(w http.ResponseWriter, r *http.Request) {
	if !h.readWorkflows(w, r) {
		return
	}
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "INVALID", "limit "+strconv.Quote(s)+": want a positive number")
			return
		}
		limit = n
	}
	runs, err := h.Workflows.Runs(r.Context(), r.PathValue("name"), limit)
	if runs == nil {
		runs = []workflow.RunSummary{}
	}
	h.answer(w, r, http.StatusOK, map[string]any{"runs": runs}, err)
}

func (h *handler) workflowImages(w http.ResponseWriter, r *http.Request) {
	if !h.readWorkflows(w, r) {
		return
	}
	q := r.URL.Query()
	l, err := h.Workflows.ImageStatuses(r.Context(), workflow.StatusRequest{Name: r.PathValue("name"),
		Status: workflow.State(q.Get("status")), Image: q.Get("image")})
	h.answer(w, r, http.StatusOK, l, err)
}

func (h *handler) cancelWorkflowRuns(w http.ResponseWriter, r *http.Request) {
	var req CancelRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.writeWorkflows(w, r) {
		return
	}
	ids, err := h.Workflows.Cancel(r.Context(), r.PathValue("name"), req.Run)
	h.answer(w, r, http.StatusOK, CanceledResponse{Canceled: nonNil(ids)}, err)
}

func (h *handler) workflowRun(w http.ResponseWriter, r *http.Request) {
	if !h.readWorkflows(w, r) {
		return
	}
	var after int64
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "INVALID", "after "+strconv.Quote(s)+": want a log sequence number")
			return
		}
		after = n
	}
	d, err := h.Workflows.RunWithLog(r.Context(), r.PathValue("id"), after)
	h.answer(w, r, http.StatusOK, d, err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
