// Package config loads the configuration of `drydock serve`: a YAML file,
// overridden by DRYDOCK_* environment variables, overridden by command-line
// flags. Every field has a default, so no file at all is a valid setup.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/drydock-project/drydock/internal/database"
)

// Version is the only config schema version this build reads.
const Version = "v1"

// maxFileSize bounds the config file; a larger one is certainly a mistake.
const maxFileSize = 1 << 20

// Config is the configuration of one drydock server process.
type Config struct {
	// Version of the schema; empty means Version.
	Version string `yaml:"version"`
	// Addr is the host:port the server listens on.
	Addr string `yaml:"addr"`
	// Data is the directory for everything drydock keeps on local disk.
	Data string `yaml:"data"`
	// Log configures the process log.
	Log Log `yaml:"log"`
	// Storage selects the blob storage driver.
	Storage Storage `yaml:"storage"`
	// Auth configures who may use the registry.
	Auth Auth `yaml:"auth"`
	// Uploads configures blob uploads.
	Uploads Uploads `yaml:"uploads"`
	// ShutdownTimeout is how long in-flight requests may run after SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
	// Gate configures scanning on arrival, verdicts and promotion.
	Gate Gate `yaml:"gate"`
	// Events configures outgoing webhooks.
	Events Events `yaml:"events"`
	// Kube configures the Kubernetes side: admission webhooks, the
	// running-image inventory, rollouts.
	Kube Kube `yaml:"kube"`
	// Patch configures patches the server runs (POST /api/v1/patch).
	Patch Patch `yaml:"patch"`
	// Workflow configures continuous patching workflows.
	Workflow Workflow `yaml:"workflow"`
	// Database selects where state lives: SQLite files in the data
	// directory (the default) or a PostgreSQL database that replicas share.
	Database database.Config `yaml:"database"`
	// GC configures garbage collection and retention (see gc.go).
	GC GC `yaml:"gc"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// Sign configures drydock's signing key.
	Sign Sign `yaml:"sign"`
	// Web configures the web UI (web.go).
	Web Web `yaml:"web"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes (see
	// memory.go): 0 takes the default, -1 sets none.
	MemoryLimit int64 `yaml:"memoryLimit"`
}

// Kube configures drydock's Kubernetes side.
type Kube struct {
	// Registry lists the registry hosts, as written in image references
	// (HOST or HOST:PORT), under which clusters pull from this drydock.
	// Admission admits live/ images under exactly these hosts; rollouts
	// and the inventory recognise drydock's images by them.
	Registry []string `yaml:"registry"`
	// Kubeconfig is the kubeconfig drydock uses to watch pods and roll
	// out; empty means in-cluster credentials when drydock runs in a pod,
	// else $KUBECONFIG or ~/.kube/config. Context picks one of its
	// contexts (empty: the current one).
	Kubeconfig string `yaml:"kubeconfig"`
	Context    string `yaml:"context"`
	// Cluster names the cluster in the inventory.
	Cluster string `yaml:"cluster"`
	// Watch keeps the running-image inventory from Pod informers.
	Watch bool `yaml:"watch"`
	// ResyncInterval is how often the whole inventory is written again
	// from the informers' cache (pods deleted while drydock was down,
	// tags that moved).
	ResyncInterval Duration `yaml:"resyncInterval"`
	// RolloutTimeout bounds the wait of the rollouts the server runs
	// itself (workflows with the rollout option); a workload not rolled
	// out by then is rolled back.
	RolloutTimeout Duration `yaml:"rolloutTimeout"`
	// Webhook configures the admission webhooks.
	Webhook KubeWebhook `yaml:"webhook"`
}

// KubeWebhook configures the admission webhooks' HTTPS listener and what
// they admit.
type KubeWebhook struct {
	// Addr is the host:port of the webhooks' own HTTPS listener; empty
	// turns the webhooks off.
	Addr string `yaml:"addr"`
	// URL is where the API server reaches the listener, e.g.
	// https://drydock.example.com:8443 (drydock kube install-webhook
	// writes it into the webhook configurations).
	URL string `yaml:"url"`
	// Hosts are the DNS names and IP addresses of the generated
	// certificate; empty means the URL's host.
	Hosts []string `yaml:"hosts"`
	// CertFile and KeyFile are a serving certificate to use instead of
	// the generated one (kept in DATA/kube/webhook); CAFile is the bundle
	// the API server verifies it with.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	CAFile   string `yaml:"caFile"`
	// ExemptNamespaces are never checked.
	ExemptNamespaces []string `yaml:"exemptNamespaces"`
	// Mode is enforce (deny) or audit (admit with warnings).
	Mode string `yaml:"mode"`
	// Verdicts checks that each digest's verdict passes now.
	Verdicts bool `yaml:"verdicts"`
	// VerdictCacheTTL is how long a verdict decided for one admission is
	// reused for the next.
	VerdictCacheTTL Duration `yaml:"verdictCacheTTL"`
	// RequirePromotion also requires each digest to carry drydock's
	// promotion attestation, signed by its key (sign.key), about that
	// digest: an image copied into live/ storage by another way than the
	// gate's promotion is denied. Checked in process, reused per digest
	// for verdictCacheTTL.
	RequirePromotion bool `yaml:"requirePromotion"`
	// Mutate also serves the mutating webhook that pins tags to digests.
	Mutate bool `yaml:"mutate"`
	// FailurePolicy is the API server's answer when the webhook cannot be
	// reached: Fail (deny) or Ignore (admit).
	FailurePolicy string `yaml:"failurePolicy"`
	// TimeoutSeconds is how long the API server waits for the webhook.
	TimeoutSeconds int `yaml:"timeoutSeconds"`
}

// Patch configures the server's patch engine.
type Patch struct {
	// CacheDir holds its caches (image trees, layer indexes, packages);
	// empty means DATA/cache/patch.
	CacheDir string `yaml:"cacheDir"`
	// Bounds of the caches in bytes (least recently used entries go
	// first); 0 keeps the engine's default.
	TreeCacheSize    int64 `yaml:"treeCacheSize"`
	ImageCacheSize   int64 `yaml:"imageCacheSize"`
	PackageCacheSize int64 `yaml:"packageCacheSize"`
	// IndexMemory bounds the parsed package indexes the process keeps in
	// memory between patches, in bytes (least recently used go first);
	// 0 keeps the engine's default.
	IndexMemory int64 `yaml:"indexMemory"`
	// DistroInfo is distro-info-data's directory, read for end-of-life
	// dates when there is no vulnerability database.
	DistroInfo string `yaml:"distroInfo"`
}

// Metrics configures /metrics. On the main address it always needs a
// credential with the metrics role (or admin).
type Metrics struct {
	// Addr, when set, also serves /metrics, without credentials, on a
	// listener of its own (bind it to an address only the scraper
	// reaches).
	Addr string `yaml:"addr"`
}

// Throttle limits failed logins (a token bucket per key: Failures at
// once, then one more every Per/Failures).
type Throttle struct {
	// Off turns the throttle off.
	Off bool `yaml:"off"`
	// User limits the wrong passwords of one user name, Address those
	// from one client address (IPv6: one /64).
	User    ThrottleLimit `yaml:"user"`
	Address ThrottleLimit `yaml:"address"`
	// AuditWindow is how long refused logins of one name from one address
	// are counted into one audit record.
	AuditWindow Duration `yaml:"auditWindow"`
}

// ThrottleLimit is Failures failed logins per Per.
type ThrottleLimit struct {
	Failures int      `yaml:"failures"`
	Per      Duration `yaml:"per"`
}

// Sign configures the key drydock signs promotions and patched images
// with (see internal/attest).
type Sign struct {
	// Key is a private key file (PEM: PKCS#8, EC or PKCS#1; or cosign's
	// encrypted format, whose password is read from $DRYDOCK_SIGN_PASSWORD
	// or $COSIGN_PASSWORD), or a PKCS#11 URI (RFC 7512:
	// "pkcs11:token=T;object=K?module-path=M&pin-source=file:P", the PIN
	// from pin-source or $DRYDOCK_SIGN_PASSWORD; builds with cgo); empty
	// uses DATA/keys/drydock.key, generated on first start with
	// drydock.pub and drydock.crt beside it. KMS URIs are refused.
	Key string `yaml:"key"`
	// Certificate is the key's PEM certificate chain (leaf first) for
	// Notary Project signatures; empty uses the certificate stored with a
	// PKCS#11 key, else a self-signed certificate.
	Certificate string `yaml:"certificate"`
	// Disabled turns signing off.
	Disabled bool `yaml:"disabled"`
}

// Workflow configures the continuous patching engine.
type Workflow struct {
	// Workers is how many workflow jobs (scans and patches of images) run
	// at once.
	Workers int `yaml:"workers"`
	// TickInterval is how often the engine looks for due schedules and
	// triggers.
	TickInterval Duration `yaml:"tickInterval"`
	// Debounce is how long a trigger (new findings after a database update,
	// a changed security suite) waits for quiet before its run is queued.
	Debounce Duration `yaml:"debounce"`
	// PollInterval is how often each security suite's InRelease is polled
	// (a conditional request: a few bytes when unchanged).
	PollInterval Duration `yaml:"pollInterval"`
	// Mirror and SecurityMirror replace the archives of the images'
	// releases (an offline mirror; images without apt sources, such as
	// distroless ones, need Mirror).
	Mirror         string `yaml:"mirror"`
	SecurityMirror string `yaml:"securityMirror"`
	// HostKeyring is a keyring trusted for archives an image has no key
	// for (distroless images), e.g. /usr/share/keyrings/debian-archive-keyring.gpg.
	HostKeyring string `yaml:"hostKeyring"`
	// Sandbox lets maintainer scripts drydock cannot apply natively run in
	// the patcher's sandbox.
	Sandbox bool `yaml:"sandbox"`
}

// Gate configures the quarantine -> live gate.
type Gate struct {
	// Policy is the policy file (see `drydock policy validate`); empty
	// means the built-in policy.
	Policy string `yaml:"policy"`
	// Exceptions is a directory of OpenVEX documents (*.json) whose
	// not_affected statements, with an expiry, exempt findings.
	Exceptions string `yaml:"exceptions"`
	// ScanTimeout bounds one scan attempt.
	ScanTimeout Duration `yaml:"scanTimeout"`
	// StuckAfter is how long a scan may run before its digest fails as
	// stuck and an event is raised; longer than ScanTimeout.
	StuckAfter Duration `yaml:"stuckAfter"`
	// SweepInterval is how often verdicts are decided again (expiries,
	// grace windows) and stuck scans and database updates are looked for.
	SweepInterval Duration `yaml:"sweepInterval"`
	// ScanWorkers is how many scans run at once.
	ScanWorkers int `yaml:"scanWorkers"`
	// MaxDataAge is the age of the vulnerability data (since its newest
	// record) above which verdicts, the API and the UI warn that the
	// database is stale (default 72h).
	MaxDataAge Duration `yaml:"maxDataAge"`
	// Limits bound what judging one image may cost; an image past one
	// fails as over-limit.
	Limits Limits `yaml:"limits"`
}

// Limits are the gate's scan.Limits as the config file spells them (the
// server converts one to the other, so the two cannot drift apart); a
// zero field takes scan's default (packages 20,000, findings 50,000,
// package database bytes 128 MiB, tar entries 500,000, layer bytes 16 GiB).
type Limits struct {
	MaxPackages      int   `yaml:"maxPackages"`
	MaxFindings      int   `yaml:"maxFindings"`
	MaxDatabaseBytes int64 `yaml:"maxDatabaseBytes"`
	MaxEntries       int   `yaml:"maxEntries"`
	MaxLayerBytes    int64 `yaml:"maxLayerBytes"`
}

// Events configures webhooks.
type Events struct {
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one event receiver.
type Webhook struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Secret keys the HMAC signature; SecretFile reads it from a file
	// instead (one of the two is required).
	Secret     string   `yaml:"secret"`
	SecretFile string   `yaml:"secretFile"`
	Types      []string `yaml:"types"`
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // auto, text or json
	Level  string `yaml:"level"`  // debug, info, warn or error
}

// Storage selects one of distribution's storage drivers by name, with the
// driver's own parameters (see the distribution documentation of each
// driver). The filesystem driver's rootdirectory defaults to DATA/registry.
type Storage struct {
	Driver     string         `yaml:"driver"`
	Parameters map[string]any `yaml:"parameters"`
	// Writeback is how often, on the filesystem driver, the registry
	// writes its filesystem's pending changes to disk when it wrote or
	// deleted anything (registry.Writeback): the metadata of new and
	// deleted files then reaches the disk in small steps instead of in
	// the kernel's periodic bursts, which hold every push's disk sync
	// meanwhile. 0 leaves it to the kernel.
	Writeback Duration `yaml:"writeback"`
}

// DefaultStorageWriteback is storage.writeback's default: on ext4 a quarter
// of a second of pushes or of a collection's deletions leaves a few
// megabytes of metadata, which the disk writes in a few milliseconds.
const DefaultStorageWriteback = 250 * time.Millisecond

// validate checks the storage section's own settings (the driver's
// parameters are the driver's to check).
func (s Storage) validate() []error {
	switch {
	case s.Writeback < 0:
		return []error{errors.New("storage.writeback: must not be negative (0s: leave it to the kernel)")}
	case s.Writeback > 0 && (s.Writeback < Duration(10*time.Millisecond) || s.Writeback > Duration(30*time.Second)):
		return []error{fmt.Errorf("storage.writeback: %s is not between 10ms and 30s (0s: leave it to the kernel, which writes back after 30s)", s.Writeback)}
	}
	return nil
}

// Auth configures registry authentication.
type Auth struct {
	// Htpasswd is a file of "user:bcrypt-hash" lines (as written by
	// `htpasswd -B`). Empty means anonymous access.
	Htpasswd string `yaml:"htpasswd"`
	// Realm is the HTTP auth realm.
	Realm string `yaml:"realm"`
	// Anonymous lists the roles of requests without credentials, e.g.
	// [pull:live]; empty (the default) means anonymous access is off.
	Anonymous []string `yaml:"anonymous"`
	// HtpasswdRoles are the roles of the users of the htpasswd file.
	HtpasswdRoles []string `yaml:"htpasswdRoles"`
	// TokenTTL is the lifetime of the bearer tokens /auth/token issues.
	TokenTTL Duration `yaml:"tokenTTL"`
	// Throttle limits failed logins per user name and client address.
	Throttle Throttle `yaml:"throttle"`
}

// Uploads configures blob uploads.
type Uploads struct {
	// PurgeAfter is the age after which an unfinished upload is removed.
	PurgeAfter Duration `yaml:"purgeAfter"`
	// PurgeInterval is how often abandoned uploads are looked for.
	PurgeInterval Duration `yaml:"purgeInterval"`
}

// Duration is a time.Duration written as "30s", "24h" in YAML.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like 30s or 24h", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String formats the duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Version: Version,
		Addr:    "127.0.0.1:5000",
		Data:    DefaultDataDir(),
		Log:     Log{Format: "auto", Level: "info"},
		Storage: Storage{Driver: "filesystem", Writeback: Duration(DefaultStorageWriteback)},
		Auth: Auth{Realm: "drydock", HtpasswdRoles: []string{"pull:*", "push:*"}, TokenTTL: Duration(5 * time.Minute),
			Throttle: Throttle{User: ThrottleLimit{10, Duration(time.Minute)}, Address: ThrottleLimit{30, Duration(time.Minute)},
				AuditWindow: Duration(time.Minute)}},
		Gate: Gate{ScanTimeout: Duration(10 * time.Minute), StuckAfter: Duration(15 * time.Minute),
			SweepInterval: Duration(time.Minute), ScanWorkers: 2, MaxDataAge: Duration(72 * time.Hour)},
		Uploads:         Uploads{PurgeAfter: Duration(24 * time.Hour), PurgeInterval: Duration(time.Hour)},
		GC:              GC{Schedule: Duration(24 * time.Hour), Grace: Duration(time.Hour), Pace: DefaultGCPace, Yield: Duration(DefaultGCYield)},
		ShutdownTimeout: Duration(30 * time.Second),
		Kube: Kube{Cluster: "default", ResyncInterval: Duration(10 * time.Minute), RolloutTimeout: Duration(5 * time.Minute), Webhook: KubeWebhook{
			ExemptNamespaces: []string{"kube-system"}, Mode: "enforce", Verdicts: true,
			VerdictCacheTTL: Duration(500 * time.Millisecond), FailurePolicy: "Fail", TimeoutSeconds: 5,
		}},
		Patch: Patch{DistroInfo: "/usr/share/distro-info"},
		Workflow: Workflow{Workers: 1, TickInterval: Duration(time.Minute), Debounce: Duration(2 * time.Minute),
			PollInterval: Duration(15 * time.Minute), Sandbox: true},
		Web: Web{SessionTTL: Duration(12 * time.Hour)},
	}
}

// DefaultDataDir is the per-user data directory: $XDG_DATA_HOME/drydock,
// else ~/.local/share/drydock, else ./drydock-data when there is no home.
func DefaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "drydock")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "share", "drydock")
	}
	return "drydock-data"
}

// DefaultCacheDir is where drydock keeps build products and downloads it
// can make again (test images, fetched indexes, built tools):
// $DRYDOCK_CACHE, else $HOME/.cache/drydock.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("DRYDOCK_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locating the cache directory (set DRYDOCK_CACHE): %w", err)
	}
	return filepath.Join(home, ".cache", "drydock"), nil
}

// Load reads the file at path (if path is not empty) over the defaults, then
// applies the DRYDOCK_* variables from env (as returned by os.Environ).
// Flags are applied by the caller afterwards, then Validate is called.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return Config{}, fmt.Errorf("open config file: %w", err)
		}
		defer f.Close()
		if err := Decode(f, &cfg); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Decode reads YAML from r into cfg, refusing unknown fields so that a typo
// is an error instead of a silently ignored setting.
func Decode(r io.Reader, cfg *Config) error {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return err
	}
	if len(data) > maxFileSize {
		return fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// envVars maps each DRYDOCK_* variable to the field it sets.
var envVars = map[string]func(c *Config, v string) error{
	"DRYDOCK_ADDR":           func(c *Config, v string) error { c.Addr = v; return nil },
	"DRYDOCK_DATA":           func(c *Config, v string) error { c.Data = v; return nil },
	"DRYDOCK_LOG_FORMAT":     func(c *Config, v string) error { c.Log.Format = v; return nil },
	"DRYDOCK_LOG_LEVEL":      func(c *Config, v string) error { c.Log.Level = v; return nil },
	"DRYDOCK_STORAGE_DRIVER": func(c *Config, v string) error { c.Storage.Driver = v; return nil },
	"DRYDOCK_AUTH_HTPASSWD":  func(c *Config, v string) error { c.Auth.Htpasswd = v; return nil },
	"DRYDOCK_AUTH_ANONYMOUS": func(c *Config, v string) error {
		c.Auth.Anonymous = splitList(v)
		return nil
	},
	"DRYDOCK_METRICS_ADDR":     func(c *Config, v string) error { c.Metrics.Addr = v; return nil },
	"DRYDOCK_GATE_POLICY":      func(c *Config, v string) error { c.Gate.Policy = v; return nil },
	"DRYDOCK_GATE_EXCEPTIONS":  func(c *Config, v string) error { c.Gate.Exceptions = v; return nil },
	"DRYDOCK_SIGN_KEY":         func(c *Config, v string) error { c.Sign.Key = v; return nil },
	"DRYDOCK_SHUTDOWN_TIMEOUT": func(c *Config, v string) error { return setDuration(&c.ShutdownTimeout, v) },
	"DRYDOCK_KUBE_REGISTRY":    func(c *Config, v string) error { c.Kube.Registry = splitList(v); return nil },
	"DRYDOCK_KUBE_KUBECONFIG":  func(c *Config, v string) error { c.Kube.Kubeconfig = v; return nil },
	"DRYDOCK_KUBE_WEBHOOK_ADDR": func(c *Config, v string) error {
		c.Kube.Webhook.Addr = v
		return nil
	},
	"DRYDOCK_UPLOADS_PURGE_AFTER": func(c *Config, v string) error {
		return setDuration(&c.Uploads.PurgeAfter, v)
	},
	"DRYDOCK_GC_SCHEDULE":     func(c *Config, v string) error { return setDuration(&c.GC.Schedule, v) },
	"DRYDOCK_GC_GRACE":        func(c *Config, v string) error { return setDuration(&c.GC.Grace, v) },
	"DRYDOCK_DATABASE_DRIVER": func(c *Config, v string) error { c.Database.Driver = database.Driver(v); return nil },
	"DRYDOCK_DATABASE_DSN":    func(c *Config, v string) error { c.Database.DSN = v; return nil },
}

// EnvVars lists the environment variables Load understands, sorted.
func EnvVars() []string {
	names := make([]string, 0, len(envVars))
	for k := range envVars {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// splitList splits a comma- or space-separated list.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
}

func setDuration(d *Duration, v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*d = Duration(x)
	return nil
}

func applyEnv(cfg *Config, env []string) error {
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			continue
		}
		if set, ok := envVars[k]; ok {
			if err := set(cfg, v); err != nil {
				return fmt.Errorf("environment variable %s=%q: %w", k, v, err)
			}
		}
	}
	return nil
}

// Validate checks the configuration and fills in derived defaults (the
// filesystem driver's root directory). Errors name the field.
func (c *Config) Validate() error {
	var errs []error
	if c.Version != "" && c.Version != Version {
		errs = append(errs, fmt.Errorf("version: %q is not supported, want %q", c.Version, Version))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %q is not host:port: %w", c.Addr, err))
	}
	if c.Data == "" {
		errs = append(errs, errors.New("data: must not be empty"))
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q, want auto, text or json", c.Log.Format))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q, want debug, info, warn or error", c.Log.Level))
	}
	if c.Storage.Driver == "" {
		errs = append(errs, errors.New("storage.driver: must not be empty"))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("shutdownTimeout: must not be negative"))
	}
	if c.Uploads.PurgeAfter <= 0 {
		errs = append(errs, errors.New("uploads.purgeAfter: must be positive"))
	}
	if c.Uploads.PurgeInterval <= 0 {
		errs = append(errs, errors.New("uploads.purgeInterval: must be positive"))
	}
	if c.Auth.TokenTTL <= 0 {
		errs = append(errs, errors.New("auth.tokenTTL: must be positive"))
	}
	if t := c.Auth.Throttle; !t.Off {
		for _, l := range []struct {
			name string
			l    ThrottleLimit
		}{{"auth.throttle.user", t.User}, {"auth.throttle.address", t.Address}} {
			if l.l.Failures < 1 || l.l.Per <= 0 {
				errs = append(errs, fmt.Errorf("%s: %d failures per %s: want at least 1 failure per a positive duration (or auth.throttle.off: true)", l.name, l.l.Failures, l.l.Per))
			}
		}
		if t.AuditWindow <= 0 {
			errs = append(errs, errors.New("auth.throttle.auditWindow: must be positive"))
		}
	}
	if c.Metrics.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Addr); err != nil {
			errs = append(errs, fmt.Errorf("metrics.addr: %q is not host:port: %w", c.Metrics.Addr, err))
		} else if c.Metrics.Addr == c.Addr && port != "0" {
			errs = append(errs, fmt.Errorf("metrics.addr: %q is the main address; give another one (or none)", c.Metrics.Addr))
		}
	}
	if c.Gate.ScanTimeout <= 0 {
		errs = append(errs, errors.New("gate.scanTimeout: must be positive"))
	}
	if c.Gate.StuckAfter <= c.Gate.ScanTimeout {
		errs = append(errs, fmt.Errorf("gate.stuckAfter: %s must be longer than gate.scanTimeout %s", c.Gate.StuckAfter, c.Gate.ScanTimeout))
	}
	if c.Gate.SweepInterval <= 0 {
		errs = append(errs, errors.New("gate.sweepInterval: must be positive"))
	}
	if c.Gate.MaxDataAge <= 0 {
		errs = append(errs, errors.New("gate.maxDataAge: must be positive, e.g. 72h"))
	}
	if c.Gate.ScanWorkers < 1 || c.Gate.ScanWorkers > 64 {
		errs = append(errs, fmt.Errorf("gate.scanWorkers: %d, want 1 to 64", c.Gate.ScanWorkers))
	}
	for _, f := range []struct {
		name string
		n    int64
	}{{"treeCacheSize", c.Patch.TreeCacheSize}, {"imageCacheSize", c.Patch.ImageCacheSize}, {"packageCacheSize", c.Patch.PackageCacheSize},
		{"indexMemory", c.Patch.IndexMemory}} {
		if f.n < 0 {
			errs = append(errs, fmt.Errorf("patch.%s: %d, must not be negative", f.name, f.n))
		}
	}
	for _, l := range []struct {
		name string
		v    int64
	}{{"maxPackages", int64(c.Gate.Limits.MaxPackages)}, {"maxFindings", int64(c.Gate.Limits.MaxFindings)},
		{"maxDatabaseBytes", c.Gate.Limits.MaxDatabaseBytes}, {"maxEntries", int64(c.Gate.Limits.MaxEntries)},
		{"maxLayerBytes", c.Gate.Limits.MaxLayerBytes}} {
		if l.v < 0 {
			errs = append(errs, fmt.Errorf("gate.limits.%s: %d is negative (0 takes the default)", l.name, l.v))
		}
	}
	errs = append(errs, c.Workflow.validate()...)
	errs = append(errs, validateMemoryLimit(c.MemoryLimit)...)
	for i, w := range c.Events.Webhooks {
		if (w.Secret == "") == (w.SecretFile == "") {
			errs = append(errs, fmt.Errorf("events.webhooks[%d] (%q): give exactly one of secret and secretFile", i, w.Name))
		}
	}
	errs = append(errs, c.Kube.validate()...)
	if c.Kube.Webhook.Addr != "" && c.Kube.Webhook.RequirePromotion && c.Sign.Disabled {
		errs = append(errs, errors.New("kube.webhook.requirePromotion: needs drydock's signing key, and sign.disabled is set"))
	}
	if err := c.Database.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Storage.validate()...)
	errs = append(errs, c.GC.validate()...)
	errs = append(errs, c.Web.validate()...)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.Storage.Driver == "filesystem" {
		if c.Storage.Parameters == nil {
			c.Storage.Parameters = map[string]any{}
		}
		if _, ok := c.Storage.Parameters["rootdirectory"]; !ok {
			c.Storage.Parameters["rootdirectory"] = filepath.Join(c.Data, "registry")
		}
	}
	return nil
}

// validate checks the kube section; errors name the field.
func (k *Kube) validate() []error {
	var errs []error
	for i, h := range k.Registry {
		if h == "" || strings.Contains(h, "/") || strings.TrimSpace(h) != h {
			errs = append(errs, fmt.Errorf("kube.registry[%d]: %q: want a registry host as images name it (HOST or HOST:PORT, no scheme or path)", i, h))
		}
	}
	if k.Cluster == "" {
		errs = append(errs, errors.New("kube.cluster: must not be empty"))
	}
	if k.ResyncInterval <= 0 {
		errs = append(errs, errors.New("kube.resyncInterval: must be positive"))
	}
	if k.RolloutTimeout < Duration(time.Second) || k.RolloutTimeout > Duration(time.Hour) {
		errs = append(errs, fmt.Errorf("kube.rolloutTimeout: %s, want 1s to 1h", k.RolloutTimeout))
	}
	w := &k.Webhook
	if w.Addr == "" {
		return errs
	}
	if _, _, err := net.SplitHostPort(w.Addr); err != nil {
		errs = append(errs, fmt.Errorf("kube.webhook.addr: %q is not host:port: %w", w.Addr, err))
	}
	if len(k.Registry) == 0 {
		errs = append(errs, errors.New("kube.registry: the webhooks need the registry host clusters pull this drydock's images from (e.g. [drydock.example.com])"))
	}
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("kube.webhook.url: %q: want https://HOST[:PORT][/PATH]", w.URL))
		}
	}
	if (w.CertFile == "") != (w.KeyFile == "") {
		errs = append(errs, errors.New("kube.webhook: give both certFile and keyFile, or neither"))
	}
	switch w.Mode {
	case "enforce", "audit":
	default:
		errs = append(errs, fmt.Errorf("kube.webhook.mode: %q, want enforce or audit", w.Mode))
	}
	switch w.FailurePolicy {
	case "Fail", "Ignore":
	default:
		errs = append(errs, fmt.Errorf("kube.webhook.failurePolicy: %q, want Fail or Ignore", w.FailurePolicy))
	}
	if w.TimeoutSeconds < 1 || w.TimeoutSeconds > 30 {
		errs = append(errs, fmt.Errorf("kube.webhook.timeoutSeconds: %d, want 1 to 30 (the API server's limit)", w.TimeoutSeconds))
	}
	if w.VerdictCacheTTL < 0 || w.VerdictCacheTTL > Duration(time.Minute) {
		errs = append(errs, fmt.Errorf("kube.webhook.verdictCacheTTL: %s, want 0 (off) to 1m", w.VerdictCacheTTL))
	}
	return errs
}

func (w Workflow) validate() []error {
	var errs []error
	if w.Workers < 1 || w.Workers > 16 {
		errs = append(errs, fmt.Errorf("workflow.workers: %d, want 1 to 16", w.Workers))
	}
	if w.TickInterval < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("workflow.tickInterval: %s, want at least 1s", w.TickInterval))
	}
	if w.Debounce < 0 {
		errs = append(errs, errors.New("workflow.debounce: must not be negative"))
	}
	if w.PollInterval < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("workflow.pollInterval: %s, want at least 1s", w.PollInterval))
	}
	for _, m := range []struct{ field, v string }{{"workflow.mirror", w.Mirror}, {"workflow.securityMirror", w.SecurityMirror}} {
		if m.v != "" && !strings.HasPrefix(m.v, "http://") && !strings.HasPrefix(m.v, "https://") {
			errs = append(errs, fmt.Errorf("%s: %q, want an http:// or https:// URL", m.field, m.v))
		}
	}
	return errs
}
