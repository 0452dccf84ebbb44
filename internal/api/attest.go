package api

import (
	"context"
	"net/http"

	"github.com/drydock-project/drydock/internal/attest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

// Attestations is the signing side of the gate; *gatekeeper.Keeper
// implements it.
type Attestations interface {
	Key() *attest.Key
	Verify(ctx context.Context, req gatekeeper.VerifyRequest) (*gatekeeper.VerifyResult, error)
}

// KeyResponse is the body of GET /api/v1/keys: drydock's public key (what
// `cosign verify --key` takes) and its certificate (a Notary Project trust
// store's root).
type KeyResponse struct {
	KeyID       string `json:"keyID"`
	PublicKey   string `json:"publicKey"`
	Certificate string `json:"certificate"`
}

// keys: GET /api/v1/keys, for any authenticated principal (a public key).
func (h *handler) keys(w http.ResponseWriter, r *http.Request) {
	if h.Attest == nil || h.Attest.Key() == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "this server signs nothing (sign.disabled)")
		return
	}
	k := h.Attest.Key()
	writeJSON(w, http.StatusOK, KeyResponse{KeyID: k.ID(), PublicKey: string(k.PublicPEM()), Certificate: string(k.CertificatePEM())})
}

// verify: POST /api/v1/verify {"ref": ..., "keys": [...], "roots": [...],
// "identity": ...}: the image's signatures and attestations, checked.
func (h *handler) verify(w http.ResponseWriter, r *http.Request) {
	var req gatekeeper.VerifyRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	repo, ok := h.repoOf(w, req.Ref)
	if !ok || !h.allow(w, r, RolePull, repo) {
		return
	}
	if h.Attest == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "this server does not verify signatures")
		return
	}
	res, err := h.Attest.Verify(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
