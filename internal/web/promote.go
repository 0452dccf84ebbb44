package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/drydock-project/drydock/internal/gatekeeper"
)

func (u *UI) promoteRoutes() {
	u.mux.Handle("POST /ui/promote", u.session(u.promote))
}

// promote: the image page's promotion form, sent to the API's promote (as
// "drydock promote" does); a refusal comes back with the verdict's
// reasons.
func (u *UI) promote(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	from := f.Get("back")
	req := gatekeeper.PromoteRequest{Source: strings.TrimSpace(f.Get("source")), Target: strings.TrimSpace(f.Get("target"))}
	var p gatekeeper.Promotion
	if err := u.call(r, http.MethodPost, "/api/v1/promote", nil, req, &p); err != nil {
		var ae *apiError
		msg := "Not promoted: " + apiMessage(err)
		if errors.As(err, &ae) && ae.Code == "PROMOTION_REFUSED" {
			msg = "Promotion refused by the gate: " + ae.Message
		}
		back(w, r, from, "problem", msg)
		return
	}
	msg := "Promoted to " + p.Target + " (" + short(p.Digest) + ")."
	if p.SignError != "" {
		msg += " Signing it failed: " + p.SignError
	}
	back(w, r, from, "notice", msg)
}
