package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/server"
)

func newServeCmd(g *globals) *cobra.Command {
	var (
		configFile  string
		addr        string
		data        string
		metricsAddr string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the drydock server: OCI registry, health probes and metrics on one port",
		Long: `Run the drydock server in the foreground.

One process serves, on one port:
  /v2/       an OCI distribution-spec v1.1 registry (push, pull, referrers,
             cross-repository mounts, sha256 and sha512 digests)
  /healthz   liveness: 200 while the process runs
  /readyz    readiness: 200 when the blob storage answers
  /metrics   Prometheus metrics (requests, bytes in/out, upload durations,
             the gate's verdicts): needs a credential with the metrics role
             (or admin), e.g. a token from "drydock token create prometheus
             --role metrics" sent as a Bearer token; metrics.addr also serves
             it without credentials on a listener of its own
  /api/v1/   the JSON API: verdict, promote, imports, rescan, workflows,
             kube
  /auth/token  the registry token endpoint (docker/podman/skopeo/crane logins)

With kube.webhook.addr set, the Kubernetes admission webhooks listen on
their own HTTPS port (a certificate generated in DATA/kube/webhook, or
given).

Authentication is on: users and API tokens ("drydock user", "drydock token")
with roles per namespace. The first start creates user admin and writes its
password to DATA/auth/initial-admin-password. Wrong passwords are throttled
per user name and per client address: past auth.throttle's limits a login
gets 429 Too Many Requests with Retry-After, without its password being
checked (API tokens count against the address only). A burst of refused
logins is one audit record with a count, not one per attempt. The counts
live in the process: each replica counts its own.

With no configuration at all it listens on 127.0.0.1:5000 and keeps its data
under the per-user data directory (` + config.DefaultDataDir() + `),
blobs on the local filesystem.

Settings come from, lowest to highest precedence: built-in defaults, the YAML
file given with --config, DRYDOCK_* environment variables, flags.
Environment variables: ` + strings.Join(config.EnvVars(), ", ") + `.

A config file (every field optional):

  version: v1
  addr: 127.0.0.1:5000
  data: /var/lib/drydock
  log: {format: json, level: info}
  storage:
    driver: filesystem          # or s3, inmemory: distribution's drivers
    parameters:                 # the driver's own parameters
      rootdirectory: /var/lib/drydock/registry
    writeback: 250ms            # filesystem: write pending changes to disk this often after writes; 0s: leave it to the kernel
  auth:
    anonymous: [pull:live]            # roles without credentials; none (default) = off
    htpasswd: /etc/drydock/htpasswd   # extra users, bcrypt entries (htpasswd -B)
    htpasswdRoles: ["pull:*", "push:*"]  # the roles of the htpasswd users
    tokenTTL: 5m                      # bearer tokens issued by /auth/token
    throttle:                         # failed logins: N at once, then N per period
      user: {failures: 10, per: 1m}     # per user name
      address: {failures: 30, per: 1m}  # per client address (IPv6: per /64)
      auditWindow: 1m                 # refused logins per name+address in one audit record
      off: false
  metrics:
    addr: 10.0.0.5:9090               # also serve /metrics here, without credentials; none = off
  uploads: {purgeAfter: 24h, purgeInterval: 1h}   # purgeAfter: idle uploads are abandoned
  gc:                                 # garbage collection ("drydock gc")
    schedule: 24h                     # a collection (retention first) this often; 0s = on demand only
    grace: 1h                         # young untagged manifests and blob links kept (not needed for safety)
    pace: 0.5                         # share of the time a collection works; it rests the rest for pushes and pulls
    retention:                        # first matching policy per repository
      - repositories: ["quarantine/**"]
        keepPatchTags: 3              # newest patch tags per original (the newest is never deleted)
        keepDays: 30                  # tags pushed or pulled within 30 days
        keepTags: ["latest", "v*"]
  shutdownTimeout: 30s
  memoryLimit: 0                      # Go's soft memory limit in bytes; 0 = 3/4 of the cgroup's memory limit
                                      # (none without one; GOMEMLIMIT wins), -1 = none
  gate:
    policy: /etc/drydock/policy.yaml  # see "drydock policy validate"; none = built-in
    exceptions: /etc/drydock/vex      # OpenVEX documents (*.json) with expiries
    scanTimeout: 10m                  # one scan attempt
    stuckAfter: 15m                   # a scan running longer fails its digest
    sweepInterval: 1m                 # verdicts decided again (expiries, grace)
    scanWorkers: 2
    limits:                           # what one image may cost; past one it fails as over-limit
      maxPackages: 20000              # installed packages
      maxFindings: 50000              # findings, before exceptions
      maxDatabaseBytes: 134217728     # package database files, in all
      maxEntries: 500000              # tar entries, all layers
      maxLayerBytes: 17179869184      # uncompressed bytes of one layer
  events:
    webhooks:                         # CloudEvents JSON, HMAC-SHA256 signed
      - {name: ops, url: "https://hooks.example/drydock", secretFile: /etc/drydock/hook.secret}
  kube:                               # see "drydock kube --help"
    registry: [drydock.example.com]   # the host clusters pull this drydock's images from
    kubeconfig: ""                    # "" = in-cluster, $KUBECONFIG, ~/.kube/config
    context: ""
    cluster: default                  # its name in the inventory
    watch: false                      # keep the running-image inventory (Pod informers)
    resyncInterval: 10m
    rolloutTimeout: 5m                # rollouts the server runs (workflow --rollout)
    webhook:
      addr: ""                        # e.g. ":8443": the admission webhooks' HTTPS listener
      url: ""                         # where the API server reaches it (https://HOST:PORT)
      hosts: []                       # names of the generated certificate (default: url's host)
      certFile: ""                    # a certificate instead of the generated one
      keyFile: ""
      caFile: ""
      exemptNamespaces: [kube-system]
      mode: enforce                   # or audit: admit with warnings
      verdicts: true                  # the digest's verdict must pass now
      verdictCacheTTL: 500ms          # a verdict reused this long at most (0 = never)
      requirePromotion: false         # also require drydock's signed promotion attestation
      mutate: false                   # install-webhook adds the tag-pinning webhook
      failurePolicy: Fail             # or Ignore, when drydock cannot answer
      timeoutSeconds: 5
  patch:                              # patches the server runs (POST /api/v1/patch)
    cacheDir: /var/cache/drydock/patch  # default DATA/cache/patch
    treeCacheSize: 4294967296         # bytes of extracted image trees (LRU); 0 = default
    imageCacheSize: 2147483648        # layer indexes and files read, by layer digest
    packageCacheSize: 4294967296      # downloads and parsed package indexes
    indexMemory: 50331648             # parsed package indexes kept in memory between patches; 0 = default (48 MiB, one release)
    distroInfo: /usr/share/distro-info  # end-of-life dates when there is no vulnerability DB
  sign:                               # the key promotions are signed with
    key: /etc/drydock/signing.key     # PEM or cosign's encrypted format ($DRYDOCK_SIGN_PASSWORD);
                                      # or pkcs11:token=T;object=K?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/drydock/pin
                                      # none = DATA/keys/drydock.key, generated on first start
    certificate: /etc/drydock/signing.crt  # chain for Notary Project signatures; none = self-signed
    disabled: false
  workflow:                           # continuous patching ("drydock workflow")
    workers: 1                        # image scans and patches at once
    tickInterval: 1m                  # how often due schedules and triggers are looked for
    debounce: 2m                      # a trigger waits for this much quiet before its run
    pollInterval: 15m                 # each security suite's InRelease (conditional GET)
    mirror: http://mirror.internal/debian   # replaces the images' archives (distroless: required)
    securityMirror: http://mirror.internal/debian-security
    hostKeyring: /usr/share/keyrings/debian-archive-keyring.gpg  # for images without keys
    sandbox: true                     # scripts drydock cannot apply natively run in the rootless sandbox (false: such patches fail)

The gate: every manifest that arrives in quarantine/ (import or push) is
scanned in the background by a persistent job queue (DATA/jobs) with the
vulnerability database in DATA/vulndb ("drydock db update"); without a
database scans fail and nothing is promotable. The verdict is stored by
digest (DATA/gate) and shown by "drydock verdict"; "drydock promote" copies
a pass or exempt digest into live/, which accepts nothing else. The policy
and exception files are re-read when they change. Everything is recorded in
the audit log (DATA/audit, "drydock audit").

Signatures: signatures, attestations and SBOMs (OCI 1.1 referrers, and
cosign's sha256-<hex>.sig/.att/.sbom tags) are never scanned; they follow
their digest into live/ at promotion and, pushed later, on arrival. Each
promotion is signed with drydock's key: a cosign and a Notary Project
signature of the live/ digest and the promotion attestation ("drydock
verify"; the public key is DATA/keys/drydock.pub, or GET /api/v1/keys).

Workflows ("drydock workflow create"): the server scans and patches the
images a workflow names on its schedule, when a database update brings new
fixable findings, and when a release's security suite changes, on the same
job queue; patched images are written to quarantine/ (DATA/workflow holds
the run ledger) and pass the gate like any image.

On SIGINT or SIGTERM the server stops accepting connections and lets running
requests finish for shutdownTimeout. An upload cut off then is never visible
in the registry; its partial data is purged after uploads.purgeAfter.`,
		Example: `  # embedded defaults: loopback, per-user data dir, filesystem blobs
  drydock serve

  # another address and data directory, JSON logs
  drydock serve --addr 127.0.0.1:5001 --data /srv/drydock --log-format json

  # Prometheus metrics on a private address, without credentials
  drydock serve --metrics-addr 10.0.0.5:9090

  # from a config file, with the address overridden by the environment
  DRYDOCK_ADDR=127.0.0.1:6000 drydock serve --config /etc/drydock/drydock.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile == "" {
				configFile = os.Getenv("DRYDOCK_CONFIG")
			}
			cfg, err := config.Load(configFile, os.Environ())
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if flags.Changed("addr") {
				cfg.Addr = addr
			}
			if flags.Changed("data") {
				cfg.Data = data
			}
			if flags.Changed("metrics-addr") {
				cfg.Metrics.Addr = metricsAddr
			}
			if cmd.Flags().Changed("log-format") {
				cfg.Log.Format = g.logFormat
			}
			if cmd.Flags().Changed("log-level") {
				cfg.Log.Level = g.logLevel
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			g.logFormat, g.logLevel = cfg.Log.Format, cfg.Log.Level
			log, err := g.logger()
			if err != nil {
				return err
			}
			limit, from := server.ApplyMemory(cfg)
			log.Info("memory bounds", "soft_limit_bytes", limit, "soft_limit_from", from, "parsed_index_bytes", archive.ParsedIndexMemory())
			srv, err := server.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return srv.ListenAndServe(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "YAML config file [$DRYDOCK_CONFIG]")
	f.StringVar(&addr, "addr", "127.0.0.1:5000", "listen address host:port (port 0 picks a free port) [$DRYDOCK_ADDR]")
	f.StringVar(&data, "data", config.DefaultDataDir(), "data directory [$DRYDOCK_DATA]")
	f.StringVar(&metricsAddr, "metrics-addr", "", "also serve /metrics, without credentials, on this host:port [$DRYDOCK_METRICS_ADDR]")
	return cmd
}
