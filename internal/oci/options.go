package oci

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Option configures Open, Copy and ListImages. Options that do not apply
// to a call are ignored by it.
type Option func(*options) error

type options struct {
	keychain  authn.Keychain
	auth      authn.Authenticator
	transport http.RoundTripper
	logger    *slog.Logger
	progress  func(Progress)
	platform  *v1.Platform
	jobs      int
	tempDir   string
	userAgent string
	scheme    string // "http" or "https"; empty: go-containerregistry's rule (http for loopback and private addresses)
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		keychain:  authn.DefaultKeychain,
		transport: http.DefaultTransport,
		logger:    slog.New(slog.DiscardHandler),
		jobs:      4,
		userAgent: "drydock",
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithKeychain sets where registry credentials come from; the default is
// authn.DefaultKeychain (~/.docker/config.json, $DOCKER_CONFIG, credential
// helpers).
func WithKeychain(kc authn.Keychain) Option {
	return func(o *options) error {
		if kc == nil {
			return errors.New("oci.WithKeychain: nil keychain")
		}
		o.keychain = kc
		return nil
	}
}

// WithAuth sets fixed credentials for the registry the call talks to (the
// source for Open, the destination for Copy, the server for ListImages),
// overriding the keychain.
func WithAuth(a authn.Authenticator) Option {
	return func(o *options) error {
		if a == nil {
			return errors.New("oci.WithAuth: nil authenticator")
		}
		o.auth = a
		return nil
	}
}

// WithTransport sets the HTTP transport (default http.DefaultTransport).
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return errors.New("oci.WithTransport: nil transport")
		}
		o.transport = rt
		return nil
	}
}

// WithLogger sets the logger for diagnostics (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("oci.WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithProgress reports progress to fn. Calls are serialized; fn must not
// block for long.
func WithProgress(fn func(Progress)) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("oci.WithProgress: nil func")
		}
		o.progress = fn
		return nil
	}
}

// WithPlatform makes Copy copy only the child of an index that matches p
// (os/arch[/variant]); the child keeps its digest. Copying an image that is
// not an index checks that its config matches p.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("oci.WithPlatform: %q: want os/arch[/variant]", p.String())
		}
		o.platform = &p
		return nil
	}
}

// WithJobs sets how many blobs Copy transfers at once (default 4).
func WithJobs(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("oci.WithJobs: %d: must be > 0", n)
		}
		o.jobs = n
		return nil
	}
}

// WithTempDir sets where Open unpacks OCI archives (default os.TempDir()).
func WithTempDir(dir string) Option {
	return func(o *options) error {
		o.tempDir = dir
		return nil
	}
}

// ParsePlatform parses os/arch[/variant], e.g. linux/arm64/v8.
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return v1.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" {
			return v1.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
		}
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Phase names a step of Copy in a Progress report.
type Phase string

// The phases.
const (
	PhasePrepare  Phase = "prepare"  // reading a local source before any write (docker-archive layers)
	PhaseBlob     Phase = "blob"     // transferring a config or layer blob
	PhaseManifest Phase = "manifest" // writing a manifest
	PhaseCleanup  Phase = "cleanup"  // removing what a failed copy wrote
)

// Progress is one progress report.
type Progress struct {
	Phase     Phase
	Digest    v1.Hash
	MediaType types.MediaType
	// Complete and Total are bytes; Total is 0 when unknown.
	Complete, Total int64
	// Done is set on the last report for Digest; Skipped additionally says
	// the destination already had it.
	Done, Skipped bool
}
