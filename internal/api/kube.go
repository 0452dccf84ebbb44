package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/kube"
)

// Kube is the Kubernetes side; *kube.Service implements it.
type Kube interface {
	Images(ctx context.Context, f kube.Filter) (*kube.ImagesReport, error)
	Affected(ctx context.Context, id string, f kube.Filter) (*kube.AffectedReport, error)
	WebhookConfigurations(ctx context.Context, mutating bool) (*kube.WebhookManifests, error)
	Plan(ctx context.Context, req kube.PlanRequest) (*kube.Plan, error)
	RecordRollout(ctx context.Context, actor string, res *kube.RolloutResult)
}

// maxKubeBody bounds the kube endpoints' bodies: a plan or a rollout
// result names every image of every workload of a cluster.
const maxKubeBody = 8 << 20

// The kube endpoints need the promote role on live/: they show what runs
// in the clusters and move workloads, the work of those who run live/ (a
// cluster's pull:live token must not read them).
func (h *handler) allowKube(w http.ResponseWriter, r *http.Request) bool {
	if h.Kube == nil {
		writeError(w, http.StatusConflict, "NOT_CONFIGURED", "the Kubernetes side is off in this server's configuration (kube.*)")
		return false
	}
	return h.allow(w, r, RolePromote, imgref.Live)
}

// failKube maps the kube package's errors, then falls back to fail.
func (h *handler) failKube(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, kube.ErrNotConfigured):
		writeError(w, http.StatusConflict, "NOT_CONFIGURED", err.Error())
	case errors.Is(err, kube.ErrInvalidVulnerability), errors.Is(err, kube.ErrInvalidPlan):
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
	default:
		h.fail(w, r, err)
	}
}

func kubeFilter(r *http.Request) kube.Filter {
	q := r.URL.Query()
	return kube.Filter{Cluster: q.Get("cluster"), Namespace: q.Get("namespace")}
}

// kubeImages: GET /api/v1/kube/images?cluster=&namespace=
func (h *handler) kubeImages(w http.ResponseWriter, r *http.Request) {
	if !h.allowKube(w, r) {
		return
	}
	rep, err := h.Kube.Images(r.Context(), kubeFilter(r))
	if err != nil {
		h.failKube(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// kubeAffected: GET /api/v1/kube/affected?id=CVE-…&cluster=&namespace=
func (h *handler) kubeAffected(w http.ResponseWriter, r *http.Request) {
	if !h.allowKube(w, r) {
		return
	}
	rep, err := h.Kube.Affected(r.Context(), r.URL.Query().Get("id"), kubeFilter(r))
	if err != nil {
		h.failKube(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// kubeWebhooks: GET /api/v1/kube/webhook-configurations?mutating=true
func (h *handler) kubeWebhooks(w http.ResponseWriter, r *http.Request) {
	if !h.allowKube(w, r) {
		return
	}
	mutating := false
	if v := r.URL.Query().Get("mutating"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "INVALID", "mutating: want true or false")
			return
		}
		mutating = b
	}
	m, err := h.Kube.WebhookConfigurations(r.Context(), mutating)
	if err != nil {
		h.failKube(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// kubePlan: POST /api/v1/kube/rollout-plan {repository, to, images}
func (h *handler) kubePlan(w http.ResponseWriter, r *http.Request) {
	if !h.allowKube(w, r) {
		return
	}
	var req kube.PlanRequest
	if err := decodeLimit(r, &req, maxKubeBody); err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.Kube.Plan(r.Context(), req)
	if err != nil {
		h.failKube(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// kubeRecordRollout: POST /api/v1/kube/rollouts, what `drydock rollout`
// did, for the audit log, events and metrics.
func (h *handler) kubeRecordRollout(w http.ResponseWriter, r *http.Request) {
	if !h.allowKube(w, r) {
		return
	}
	var res kube.RolloutResult
	if err := decodeLimit(r, &res, maxKubeBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if res.Plan == nil {
		writeError(w, http.StatusBadRequest, "INVALID", "a rollout result needs its plan")
		return
	}
	h.Kube.RecordRollout(r.Context(), h.Actor(r), &res)
	w.WriteHeader(http.StatusNoContent)
}
