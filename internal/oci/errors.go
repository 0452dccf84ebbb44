package oci

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// AuthError says a registry refused the credentials (HTTP 401 or 403).
type AuthError struct {
	Registry string
	Err      error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("authentication to %s failed: %v", e.Registry, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// UnreachableError says a registry could not be reached at all.
type UnreachableError struct {
	Registry string
	Err      error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach registry %s: %v", e.Registry, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ErrNotFound is wrapped when a manifest, tag or blob does not exist.
var ErrNotFound = errors.New("not found")

// classify wraps registry errors into AuthError / UnreachableError so that
// callers can branch with errors.As, and the message names the registry.
func classify(registry string, err error) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	var ue *UnreachableError
	if errors.As(err, &ae) || errors.As(err, &ue) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return &AuthError{Registry: registry, Err: err}
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	}
	var se *statusError
	if errors.As(err, &se) {
		switch se.code {
		case http.StatusUnauthorized, http.StatusForbidden:
			return &AuthError{Registry: registry, Err: err}
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	}
	var oe *net.OpError
	var dnsErr *net.DNSError
	var ue2 *url.Error
	if errors.As(err, &oe) || errors.As(err, &dnsErr) {
		return &UnreachableError{Registry: registry, Err: err}
	}
	if errors.As(err, &ue2) && !errors.Is(err, ErrContentMismatch) {
		return &UnreachableError{Registry: registry, Err: err}
	}
	return err
}

// statusError is an unexpected HTTP status from a registry.
type statusError struct {
	method, url string
	code        int
	body        string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s %s: unexpected status %d %s", e.method, e.url, e.code, http.StatusText(e.code))
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

// ErrContentMismatch is wrapped when a blob or manifest does not match its
// digest or size.
var ErrContentMismatch = errors.New("content does not match its descriptor")
