package oci

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultServer is the drydock server address used when neither --server
// nor $DRYDOCK_SERVER is set.
const DefaultServer = "http://127.0.0.1:5000"

// Server is a drydock server (any OCI registry, really) as given by
// --server: http://HOST[:PORT], https://HOST[:PORT] or HOST[:PORT]
// (https), optionally with user:pass@ for its credentials.
type Server struct {
	Registry name.Registry
	// Auth holds the credentials from the URL; nil means "use the
	// keychain".
	Auth authn.Authenticator
	// Insecure is true for http:// URLs.
	Insecure bool
}

// ParseServer parses a server URL.
func ParseServer(raw string) (Server, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Server{}, fmt.Errorf("invalid server %q: empty", raw)
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Server{}, fmt.Errorf("invalid server %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Server{}, fmt.Errorf("invalid server %q: scheme must be http or https", raw)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Server{}, fmt.Errorf("invalid server %q: want SCHEME://HOST[:PORT]", raw)
	}
	var nopts []name.Option
	if u.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, append(nopts, name.StrictValidation)...)
	if err != nil {
		return Server{}, fmt.Errorf("invalid server %q: %w", raw, err)
	}
	srv := Server{Registry: reg, Insecure: u.Scheme == "http"}
	if u.User != nil {
		pass, _ := u.User.Password()
		srv.Auth = authn.FromConfig(authn.AuthConfig{Username: u.User.Username(), Password: pass})
	}
	return srv, nil
}

// String returns the server URL without credentials.
func (s Server) String() string {
	scheme := "https"
	if s.Insecure {
		scheme = "http"
	}
	return scheme + "://" + s.Registry.RegistryStr()
}

// Tag returns the reference repo:tag on the server.
func (s Server) Tag(repo, tag string) (name.Tag, error) {
	var opts []name.Option
	if s.Insecure {
		opts = append(opts, name.Insecure)
	}
	t, err := name.NewTag(s.Registry.RegistryStr()+"/"+repo+":"+tag, append(opts, name.StrictValidation)...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("invalid image name %s:%s: %w", repo, tag, err)
	}
	return t, nil
}

// Options returns the options Copy and ListImages need to talk to the
// server: its scheme as given in the URL and its credentials, if any.
func (s Server) Options() []Option {
	scheme := "https"
	if s.Insecure {
		scheme = "http"
	}
	opts := []Option{func(o *options) error { o.scheme = scheme; return nil }}
	if s.Auth != nil {
		opts = append(opts, WithAuth(s.Auth))
	}
	return opts
}
