package archive

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// Clock tells the time; it judges Valid-Until and key expiry.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Option configures Open.
type Option func(*options) error

type options struct {
	mirror, securityMirror string
	hostKeyring            string
	insecure               bool
	cacheDir               string
	cacheSize              int64
	client                 *http.Client
	clock                  Clock
	log                    *slog.Logger
	xz                     xzdec.Decoder // the zero Decoder: the host's xz program if any
}

// WithMirror replaces the archive URI of the release's own suites (SUITE,
// SUITE-updates, SUITE-proposed-updates, SUITE-backports) with uri, e.g. a
// local mirror. Unless WithSecurityMirror is given too, the security suite
// moves to uri's "-security" sibling (".../debian" -> ".../debian-security"),
// or to uri itself for Ubuntu. An image without any apt source (distroless)
// needs it.
func WithMirror(uri string) Option {
	return func(o *options) error {
		u, err := checkURI(uri)
		if err != nil {
			return fmt.Errorf("apt.WithMirror: %w", err)
		}
		o.mirror = u
		return nil
	}
}

// WithSecurityMirror sets the archive that serves SUITE-security.
func WithSecurityMirror(uri string) Option {
	return func(o *options) error {
		u, err := checkURI(uri)
		if err != nil {
			return fmt.Errorf("apt.WithSecurityMirror: %w", err)
		}
		o.securityMirror = u
		return nil
	}
}

func checkURI(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: want an http(s) URL of an archive root", uri)
	}
	return strings.TrimRight(uri, "/"), nil
}

// WithHostKeyring trusts the keyring file at path on the host (typically
// DebianArchiveKeyring) for sources the image itself gives no key for: a
// distroless image, or a Signed-By file the image lacks. It is never used
// silently: without this option such sources are refused with ErrNoKeyring,
// and with it every use is logged.
func WithHostKeyring(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("apt.WithHostKeyring: empty path")
		}
		o.hostKeyring = path
		return nil
	}
}

// WithInsecureSkipVerify accepts Release files whose signature is missing or
// does not verify, and expired ones. Every such acceptance is logged at
// error level. Index and package hashes are still checked.
func WithInsecureSkipVerify() Option {
	return func(o *options) error { o.insecure = true; return nil }
}

// WithCacheDir keeps fetched indexes and packages under dir (default
// DefaultCacheDir()).
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("apt.WithCacheDir: empty dir")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithCacheSize bounds the cache in bytes (default DefaultCacheSize); the
// least recently used entries go first.
func WithCacheSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("apt.WithCacheSize(%d): must be positive", n)
		}
		o.cacheSize = n
		return nil
	}
}

// WithHTTPClient fetches with c (default: http.DefaultClient).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("apt.WithHTTPClient: nil client")
		}
		o.client = c
		return nil
	}
}

// WithClock sets the clock that judges expiry (default: the system clock).
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("apt.WithClock: nil clock")
		}
		o.clock = c
		return nil
	}
}

// WithLogger sets the logger for diagnostics (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("apt.WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// DefaultCacheDir is where the patch engine keeps the Debian backend's
// downloads: patch/deb in drydock's cache (config.DefaultCacheDir).
func DefaultCacheDir() (string, error) {
	d, err := config.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "patch", "deb"), nil
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{client: http.DefaultClient, clock: realClock{}, log: slog.New(slog.DiscardHandler), cacheSize: DefaultCacheSize}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.cacheDir = d
	}
	return o, nil
}
