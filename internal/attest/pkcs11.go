//go:build cgo

package attest

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"os"

	"github.com/ThalesGroup/crypto11"
)

// pkcs11Supported says this build signs with PKCS#11 keys (it has cgo,
// which the module loader needs).
const pkcs11Supported = true

// openPKCS11 logs in to the token u names with pin and returns its key as
// a crypto.Signer, the certificate stored beside it on the token (nil if
// none) and what closes the session. crypto11 (Thales) keeps a pool of
// logged-in sessions, so concurrent signatures do not queue on one.
func openPKCS11(u *pkcs11URI, pin string) (crypto.Signer, *x509.Certificate, io.Closer, error) {
	if _, err := os.Stat(u.modulePath); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: PKCS#11 module: %w", u, err)
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: u.modulePath, TokenLabel: u.token, TokenSerial: u.serial,
		SlotNumber: u.slot, Pin: pin})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening %s in module %s: %w", u, u.modulePath, err)
	}
	keys, err := ctx.FindKeyPairs(u.id, u.object)
	switch {
	case err != nil:
		err = fmt.Errorf("finding %s: %w", u, err)
	case len(keys) == 0:
		err = fmt.Errorf("%s: no such key pair on the token (a private key with a CKA_ID and its public key)", u)
	case len(keys) > 1:
		err = fmt.Errorf("%s: %d key pairs match: name one (id=)", u, len(keys))
	}
	if err != nil {
		ctx.Close()
		return nil, nil, nil, err
	}
	var cert *x509.Certificate
	if len(u.id) > 0 || len(u.object) > 0 {
		// A certificate stored with the key; none is not an error.
		if c, err := ctx.FindCertificate(u.id, u.object, nil); err == nil {
			cert = c
		}
	}
	return keys[0], cert, ctx, nil
}
