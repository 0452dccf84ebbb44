//go:build !cgo

package attest

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
)

// pkcs11Supported says this build signs with PKCS#11 keys: without cgo
// it cannot load a PKCS#11 module.
const pkcs11Supported = false

func openPKCS11(u *pkcs11URI, _ string) (crypto.Signer, *x509.Certificate, io.Closer, error) {
	return nil, nil, nil, fmt.Errorf("%w %s: this drydock was built without cgo (CGO_ENABLED=0) and has no PKCS#11 support: use a build with cgo, or a key file", ErrKeyURI, u)
}
