package attest

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// PKCS#11 URIs (RFC 7512) name a key on a token:
//
//	pkcs11:token=drydock;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/drydock/pin
//
// The path selects the token (exactly one of token, serial, slot-id) and
// the key (object, its label, and/or id, its CKA_ID; type=private when
// given); the query names the module (module-path, an absolute path) and
// the PIN: pin-source (a file, "file:PATH"), pin-value, or neither, and
// then KeyOptions.Password (the server reads $DRYDOCK_SIGN_PASSWORD).
// Attributes drydock cannot honour are refused, not ignored.

// pkcs11Scheme prefixes a PKCS#11 URI.
const pkcs11Scheme = "pkcs11:"

// Bounds of a PKCS#11 URI and of a PIN file.
const (
	maxPKCS11URI = 4096
	maxPINFile   = 4096
)

// pkcs11URI is a parsed PKCS#11 URI.
type pkcs11URI struct {
	token, serial string
	slot          *int
	object        []byte // CKA_LABEL
	id            []byte // CKA_ID
	modulePath    string
	pinValue      string
	pinSource     string // a file path
	hasPIN        bool   // pin-value was given (possibly empty)
}

// parsePKCS11URI parses s, a PKCS#11 URI naming one private key.
func parsePKCS11URI(s string) (*pkcs11URI, error) {
	if len(s) > maxPKCS11URI {
		return nil, fmt.Errorf("PKCS#11 URI of %d bytes, over %d", len(s), maxPKCS11URI)
	}
	rest, ok := strings.CutPrefix(s, pkcs11Scheme)
	if !ok {
		return nil, errors.New("PKCS#11 URI: no pkcs11: scheme")
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &pkcs11URI{}
	seen := map[string]bool{}
	for _, attr := range split(path, ";") {
		name, v, err := attribute(attr, seen)
		if err != nil {
			return nil, err
		}
		switch name {
		case "token":
			u.token = string(v)
		case "serial":
			u.serial = string(v)
		case "slot-id":
			n, err := strconv.ParseUint(string(v), 10, 31)
			if err != nil {
				return nil, fmt.Errorf("PKCS#11 URI: slot-id %q is not a slot number", v)
			}
			slot := int(n)
			u.slot = &slot
		case "object":
			u.object = v
		case "id":
			u.id = v
		case "type":
			if string(v) != "private" {
				return nil, fmt.Errorf("PKCS#11 URI: type=%s: a signing key is type=private", v)
			}
		default:
			return nil, fmt.Errorf("PKCS#11 URI: path attribute %q is not supported (use token, serial or slot-id; object and/or id; type=private)", name)
		}
	}
	for _, attr := range split(query, "&") {
		name, v, err := attribute(attr, seen)
		if err != nil {
			return nil, err
		}
		switch name {
		case "module-path":
			u.modulePath = string(v)
		case "pin-value":
			u.pinValue, u.hasPIN = string(v), true
		case "pin-source":
			p := string(v)
			if rest, ok := strings.CutPrefix(p, "file:"); ok {
				// file:/abs, file:///abs (RFC 8089); no host.
				p = rest
				if h, ok := strings.CutPrefix(rest, "//"); ok {
					if !strings.HasPrefix(h, "/") {
						return nil, fmt.Errorf("PKCS#11 URI: pin-source %q: a file URI with a host is not supported", v)
					}
					p = h
				}
			}
			if !filepath.IsAbs(p) {
				return nil, fmt.Errorf("PKCS#11 URI: pin-source %q: name an absolute file (file:/path/to/pin)", v)
			}
			u.pinSource = filepath.Clean(p)
		case "module-name":
			return nil, errors.New("PKCS#11 URI: module-name is not supported: name the module's file with module-path")
		default:
			return nil, fmt.Errorf("PKCS#11 URI: query attribute %q is not supported (use module-path, and pin-source or pin-value)", name)
		}
	}
	tokens := 0
	for _, set := range []bool{u.token != "", u.serial != "", u.slot != nil} {
		if set {
			tokens++
		}
	}
	switch {
	case tokens == 0:
		return nil, errors.New("PKCS#11 URI: no token: name it with token=LABEL (or serial= or slot-id=)")
	case tokens > 1:
		return nil, errors.New("PKCS#11 URI: name the token one way only (token=, serial= or slot-id=)")
	case len(u.object) == 0 && len(u.id) == 0:
		return nil, errors.New("PKCS#11 URI: no key: name it with object=LABEL and/or id=%XX%XX")
	case u.modulePath == "":
		return nil, errors.New("PKCS#11 URI: no module: add ?module-path=/path/to/the/module.so")
	case !filepath.IsAbs(u.modulePath):
		return nil, fmt.Errorf("PKCS#11 URI: module-path %q is not an absolute path", u.modulePath)
	case u.hasPIN && u.pinSource != "":
		return nil, errors.New("PKCS#11 URI: pin-value and pin-source both given: keep one")
	}
	return u, nil
}

// split splits s at sep, dropping empty parts (a trailing separator).
func split(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// attribute parses one NAME=VALUE attribute (the value percent-decoded),
// refusing one seen before.
func attribute(attr string, seen map[string]bool) (string, []byte, error) {
	name, raw, ok := strings.Cut(attr, "=")
	if !ok || name == "" {
		// Not echoed: it may hold a PIN.
		return "", nil, errors.New("PKCS#11 URI: an attribute is not NAME=VALUE")
	}
	if seen[name] {
		return "", nil, fmt.Errorf("PKCS#11 URI: attribute %q given twice", name)
	}
	seen[name] = true
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", nil, fmt.Errorf("PKCS#11 URI: attribute %q: %w", name, err)
	}
	return name, []byte(v), nil
}

// pin returns the PIN u names, or password when it names none.
func (u *pkcs11URI) pin(password []byte) (string, error) {
	switch {
	case u.hasPIN:
		return u.pinValue, nil
	case u.pinSource != "":
		data, err := readBounded(u.pinSource)
		if err != nil {
			return "", fmt.Errorf("PKCS#11 PIN: %w", err)
		}
		if len(data) > maxPINFile {
			return "", fmt.Errorf("PKCS#11 PIN: %s: larger than %d bytes", u.pinSource, maxPINFile)
		}
		return string(bytes.TrimRight(data, "\r\n")), nil
	case len(password) > 0:
		return string(password), nil
	}
	return "", errors.New("PKCS#11 PIN: none given: add pin-source=file:/path/to/pin to the URI, or set $DRYDOCK_SIGN_PASSWORD")
}

// String names the token and key of u, without the PIN, for messages.
func (u *pkcs11URI) String() string {
	var parts []string
	switch {
	case u.token != "":
		parts = append(parts, "token="+url.PathEscape(u.token))
	case u.serial != "":
		parts = append(parts, "serial="+url.PathEscape(u.serial))
	case u.slot != nil:
		parts = append(parts, "slot-id="+strconv.Itoa(*u.slot))
	}
	if len(u.object) > 0 {
		parts = append(parts, "object="+url.PathEscape(string(u.object)))
	}
	if len(u.id) > 0 {
		parts = append(parts, "id="+pctEncode(u.id))
	}
	return pkcs11Scheme + strings.Join(parts, ";")
}

func pctEncode(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02x", c)
	}
	return sb.String()
}
