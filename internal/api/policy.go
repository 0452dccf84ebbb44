package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

// Policies is the gate's policy; *gatekeeper.Keeper implements it.
type Policies interface {
	Policy(ctx context.Context) (*gatekeeper.PolicyView, error)
	SetPolicy(ctx context.Context, actor, text, ifHash string) (*gatekeeper.PolicyChange, error)
}

// maxPolicyBody bounds a policy request: the text JSON-escaped.
const maxPolicyBody = 2 << 20

// PolicyRequest is the body of POST /api/v1/policy/validate and PUT
// /api/v1/policy.
type PolicyRequest struct {
	// Policy is the YAML text.
	Policy string `json:"policy"`
	// IfMatch, on PUT, is the sha256 of the policy the edit started from:
	// the PUT is refused (412) when the policy changed since.
	IfMatch string `json:"ifMatch,omitempty"`
}

// PolicyProblem is one problem of a policy: its field (the YAML key, e.g.
// "maxSeverity" or "allowedSources[1]") and line when known.
type PolicyProblem struct {
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// PolicyValidation is the body of a validation: valid, or every problem.
type PolicyValidation struct {
	Valid    bool            `json:"valid"`
	Problems []PolicyProblem `json:"problems"`
	// Error is the body's error on a 400 answer (the first problem named).
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func (h *handler) policyRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/policy", h.getPolicy},
		{http.MethodPut, "/api/v1/policy", h.putPolicy},
		{http.MethodPost, "/api/v1/policy/validate", h.validatePolicy},
	}
}

// readPolicy: reading and validating the policy needs pull on quarantine/,
// whose verdicts it decides.
func (h *handler) readPolicy(w http.ResponseWriter, r *http.Request) bool {
	return h.allow(w, r, RolePull, "quarantine")
}

// getPolicy: GET /api/v1/policy, the policy in effect and its source.
func (h *handler) getPolicy(w http.ResponseWriter, r *http.Request) {
	if !h.readPolicy(w, r) {
		return
	}
	v, err := h.Policy.Policy(r.Context())
	h.answer(w, r, http.StatusOK, v, err)
}

// validatePolicy: POST /api/v1/policy/validate {"policy": TEXT}: 200 with
// valid true, or 400 whose message names the first problem's line and
// field and whose problems list them all.
func (h *handler) validatePolicy(w http.ResponseWriter, r *http.Request) {
	if !h.readPolicy(w, r) {
		return
	}
	var req PolicyRequest
	if err := decodeLimit(r, &req, maxPolicyBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.IfMatch != "" {
		writeError(w, http.StatusBadRequest, "INVALID", "ifMatch: only PUT takes it")
		return
	}
	// The text is validated for where it would go: a policy file
	// resolves relative key paths against its directory, the database's
	// policy has none.
	validate := gatekeeper.ValidateStoredPolicy
	if v, err := h.Policy.Policy(r.Context()); err == nil && v.Source == "file" {
		validate = gatekeeper.ValidatePolicy
	}
	if err := validate(req.Policy); err != nil {
		h.policyInvalid(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, PolicyValidation{Valid: true, Problems: []PolicyProblem{}})
}

// putPolicy: PUT /api/v1/policy {"policy": TEXT, "ifMatch": SHA256}
// replaces the policy (admin only), audited; the next verdicts use it.
func (h *handler) putPolicy(w http.ResponseWriter, r *http.Request) {
	if !h.allow(w, r, RoleAdmin, "") {
		return
	}
	var req PolicyRequest
	if err := decodeLimit(r, &req, maxPolicyBody); err != nil {
		h.fail(w, r, err)
		return
	}
	if m := strings.Trim(r.Header.Get("If-Match"), `"`); m != "" && req.IfMatch == "" {
		req.IfMatch = m
	}
	ch, err := h.Policy.SetPolicy(r.Context(), h.Actor(r), req.Policy, req.IfMatch)
	var pe *gate.PolicyError
	switch {
	case errors.As(err, &pe):
		h.policyInvalid(w, r, err)
	case errors.Is(err, gatekeeper.ErrPolicyInFile):
		writeError(w, http.StatusConflict, "CONFLICT", err.Error())
	case errors.Is(err, gatekeeper.ErrPolicyChanged):
		writeError(w, http.StatusPreconditionFailed, "CHANGED", err.Error())
	default:
		h.answer(w, r, http.StatusOK, ch, err)
	}
}

// policyInvalid answers 400 for a policy that does not validate.
func (h *handler) policyInvalid(w http.ResponseWriter, r *http.Request, err error) {
	var pe *gate.PolicyError
	if !errors.As(err, &pe) || len(pe.Problems) == 0 {
		h.fail(w, r, err)
		return
	}
	v := PolicyValidation{Problems: make([]PolicyProblem, len(pe.Problems))}
	for i, p := range pe.Problems {
		v.Problems[i] = PolicyProblem{Field: p.Field, Line: p.Line, Message: p.Message}
	}
	v.Error = &struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{"INVALID", pe.Error()}
	writeJSON(w, http.StatusBadRequest, v)
}
