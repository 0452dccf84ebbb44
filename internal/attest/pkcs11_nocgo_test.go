//go:build !cgo

package attest

import (
	"errors"
	"strings"
	"testing"
)

// TestPKCS11WithoutCgo: a build without cgo refuses a PKCS#11 URI with
// ErrKeyURI, saying it has no PKCS#11 support (and still reads the URI,
// so that a malformed one gets its own message).
func TestPKCS11WithoutCgo(t *testing.T) {
	_, err := LoadKey(KeyOptions{Ref: "pkcs11:token=t;object=k?module-path=/m.so&pin-value=1234"})
	if !errors.Is(err, ErrKeyURI) || !strings.Contains(err.Error(), "without cgo") || strings.Contains(err.Error(), "1234") {
		t.Errorf("error %v", err)
	}
	if _, err := LoadKey(KeyOptions{Ref: "pkcs11:object=k"}); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("malformed URI: %v", err)
	}
}
