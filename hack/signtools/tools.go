//go:build tools

// Package signtools pins the stock signing clients drydock's signature and
// attestation tests run against: cosign (sigstore) and oras. It is a
// separate module so that their commands and dependencies stay out of
// drydock's go.mod. `make signtools` builds both once into
// $DRYDOCK_CACHE/tools (cosign-VERSION, oras-VERSION); the tests find them
// there (internal/attest/attesttest).
//
// Build: cd hack/signtools && go build -o DIR/cosign github.com/sigstore/cosign/v2/cmd/cosign
package signtools

import (
	_ "github.com/sigstore/cosign/v2/cmd/cosign"
	_ "oras.land/oras/cmd/oras"
)
