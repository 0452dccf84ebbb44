package events

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Receiver is one webhook endpoint. Name identifies it in logs and Stats and
// must be unique within a Dispatcher. URL must be an absolute http or https
// URL. Secret keys the HMAC signature of every request; it is never logged.
// Types lists the event types to send; empty means all of them.
type Receiver struct {
	Name   string
	URL    string
	Secret []byte
	Types  []string
}

// ConfigError reports an invalid receiver setting. Field is the name of the
// Receiver field at fault ("Name", "URL", "Secret" or "Types").
type ConfigError struct {
	Index    int    // position of the receiver in the list given to NewDispatcher
	Receiver string // its Name, possibly empty
	Field    string
	Err      error
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("event receiver %d (%q): %s: %v", e.Index, e.Receiver, e.Field, e.Err)
}

// Unwrap returns the underlying cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate checks r on its own: a name, an absolute http(s) URL with a host,
// a non-empty secret and known types. Errors are *ConfigError with Index 0.
func (r Receiver) Validate() error {
	return r.validate(0)
}

func (r Receiver) validate(i int) error {
	fail := func(field string, err error) error {
		return &ConfigError{Index: i, Receiver: r.Name, Field: field, Err: err}
	}
	if strings.TrimSpace(r.Name) == "" {
		return fail("Name", errors.New("empty"))
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		// url.Parse errors quote the whole URL, which may hold credentials.
		return fail("URL", errors.New("not a valid URL"))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail("URL", fmt.Errorf("scheme %q is not http or https", u.Scheme))
	}
	if u.Host == "" {
		return fail("URL", errors.New("no host"))
	}
	if len(r.Secret) == 0 {
		return fail("Secret", errors.New("empty"))
	}
	for _, t := range r.Types {
		if !KnownType(t) {
			return fail("Types", fmt.Errorf("%q: %w", t, ErrUnknownType))
		}
	}
	return nil
}

// wants reports whether r takes events of type t.
func (r Receiver) wants(t string) bool {
	return len(r.Types) == 0 || slices.Contains(r.Types, t)
}

// validateReceivers checks every receiver and that names are unique, and
// returns deep copies so later changes by the caller have no effect.
func validateReceivers(rs []Receiver) ([]Receiver, error) {
	out := make([]Receiver, len(rs))
	seen := make(map[string]int, len(rs))
	for i, r := range rs {
		if err := r.validate(i); err != nil {
			return nil, err
		}
		if j, dup := seen[r.Name]; dup {
			return nil, &ConfigError{Index: i, Receiver: r.Name, Field: "Name", Err: fmt.Errorf("also used by receiver %d", j)}
		}
		seen[r.Name] = i
		out[i] = Receiver{Name: r.Name, URL: r.URL, Secret: slices.Clone(r.Secret), Types: slices.Clone(r.Types)}
	}
	return out, nil
}
