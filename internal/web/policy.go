package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

func (u *UI) policyRoutes() {
	u.mux.Handle("GET /ui/policy", u.session(u.policyPage))
	u.mux.Handle("POST /ui/policy", u.session(u.policyForm))
}

// policyData is the policy page's.
type policyData struct {
	View gatekeeper.PolicyView
	// Text is the textarea's: the policy in effect, or the one sent.
	Text string
	// IfMatch is the hash the edit started from.
	IfMatch  string
	Problems []api.PolicyProblem
	// Valid is set after a validation that found nothing.
	Valid bool
}

// policyPage: GET /ui/policy, the policy in effect in a form to validate
// or (admins, when it lives in the database) save.
func (u *UI) policyPage(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Policy", "policy")
	var d policyData
	if err := u.call(r, http.MethodGet, "/api/v1/policy", nil, nil, &d.View); err != nil {
		u.fail(w, r, p, err)
		return
	}
	d.Text, d.IfMatch = d.View.Text, d.View.SHA256
	u.render(w, r, http.StatusOK, "policy", p, d)
}

// policyForm: POST /ui/policy, action validate or save, through the
// API's validate and PUT; problems are shown beside the text sent.
func (u *UI) policyForm(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Policy", "policy")
	var d policyData
	if err := u.call(r, http.MethodGet, "/api/v1/policy", nil, nil, &d.View); err != nil {
		u.fail(w, r, p, err)
		return
	}
	// Browsers send CR LF line ends; the policy's lines are LF.
	d.Text = strings.ReplaceAll(r.PostForm.Get("policy"), "\r\n", "\n")
	d.IfMatch = r.PostForm.Get("ifMatch")
	req := api.PolicyRequest{Policy: d.Text}
	var err error
	switch action := r.PostForm.Get("action"); action {
	case "validate":
		var res api.PolicyValidation
		if err = u.call(r, http.MethodPost, "/api/v1/policy/validate", nil, req, &res); err == nil {
			d.Valid = true
			p.Notice = "The policy is valid; it is not saved."
		}
	case "save":
		req.IfMatch = d.IfMatch
		var ch gatekeeper.PolicyChange
		if err = u.call(r, http.MethodPut, "/api/v1/policy", nil, req, &ch); err == nil {
			msg := "The policy is unchanged."
			if ch.Changed {
				msg = "Policy saved (sha256 " + ch.SHA256[:12] + "); the next verdicts use it."
			}
			back(w, r, "/ui/policy", "notice", msg)
			return
		}
	default:
		u.fail(w, r, p, &apiError{Status: http.StatusBadRequest, Message: "action: " + action + ": want validate or save"})
		return
	}
	status := http.StatusOK
	var ae *apiError
	switch {
	case err == nil:
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		var res api.PolicyValidation
		if json.Unmarshal(ae.Body, &res) == nil && len(res.Problems) > 0 {
			d.Problems = res.Problems
		}
		status, p.Problem = http.StatusBadRequest, "The policy is not valid: nothing was saved."
		if len(d.Problems) == 0 {
			p.Problem = ae.Message
		}
	case errors.As(err, &ae) && ae.Status < 500:
		status, p.Problem = ae.Status, ae.Message
		if ae.Status == http.StatusForbidden {
			p.Problem = "You may not change the policy (it takes the admin role): " + ae.Message
		}
	default:
		u.fail(w, r, p, err)
		return
	}
	u.render(w, r, status, "policy", p, d)
}
