package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/vulndb"
)

type patchFlags struct {
	image, tag, report, output, platform, format string
	mirror, securityMirror, hostKeyring          string
	updateAll, dryRun, allowEOL, insecure        bool
	vulnerableOnly, force                        bool
	server, data, dbPath, cacheDir, distroInfo   string
	sandbox                                      string
	onServer                                     bool
	cacheLimits                                  string
	cpuProfile                                   string
}

func newPatchCmd(g *globals) *cobra.Command {
	f := &patchFlags{}
	cmd := &cobra.Command{
		Use:   "patch IMAGE -t TAG",
		Short: "Install an image's package updates as one new, reproducible layer",
		Long: `Patch installs the updates of an image's OS packages from its distribution's
archive as ONE new layer on top of the image, without a daemon, without
root and without running the image: drydock downloads the packages,
verifies them (InRelease signature with the image's own keyring, index
and package hashes) and writes exactly the files dpkg would, through the
image's directory symlinks, with the dpkg database updated. The same image
and the same package versions always give the same digest.

IMAGE is anything "drydock import" accepts (REF, oci:DIR[:TAG],
oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG|:@N]) or
quarantine/NAME[:TAG] on the drydock server (--server). A multi-platform
index gives a multi-platform index: every platform is patched (foreign
ones too: nothing is executed), platforms that need nothing are kept.

What is updated:
  --vulnerable-only   the packages with fixable findings in drydock's own scan
                      of the image (the default when a vulnerability database
                      exists: "drydock db update")
  --update-all        every update the release's suites (with -security and
                      -updates, added when the image lacks them) offer
  --report FILE       the fixable OS packages of a Trivy JSON report (what
                      "copa patch -r" reads) or of "drydock scan --format json"

Where it goes (-t TAG, default: the input's tag + "-patched"):
  a registry image  -> the same repository, tag TAG
  quarantine/NAME   -> quarantine/NAME:TAG on the drydock server
  live/NAME         -> quarantine/NAME:TAG (a patched image passes the gate
                       like any other)
  oci:DIR           -> the same layout, tag TAG
  --output REF|oci:DIR[:TAG]|docker-archive:FILE  overrides that.

Nothing to patch is success: exit status 0, nothing written (unless
--force: then the input is written to the output tag with lineage
annotations), and the summary says why. --dry-run prints the plan (package, installed ->
candidate, suite, download size, new dependencies) and writes nothing.

End-of-life releases (by distro-info-data: the vulnerability database's
copy, or the host's /usr/share/distro-info) are refused with the date their
support ended; --allow-eol patches them from what the mirror still has.

Maintainer scripts: scripts that do nothing for an upgrade inside an image
(service restarts, systemd enablement, applied dpkg-maintscript-helper
migrations), the ldconfig trigger and ca-certificates' update are applied
natively. Any other script runs in drydock's sandbox (--sandbox auto, the
default): the image with the new layer, in new user, mount, PID, network,
IPC and UTS namespaces, with no network and none of the host's files, in
dpkg's order; what the scripts change joins the layer. Run unprivileged,
drydock maps the user's /etc/subuid and /etc/subgid ranges into the
sandbox (newuidmap, newgidmap), so scripts that give files to system users
work and the layer's owners are the image's. --sandbox never refuses such
a patch with the scripts' names instead; --sandbox always runs in the
sandbox every script not reproduced natively. Where the sandbox cannot run
(another architecture, user namespaces disabled, no subordinate ids), the
refusal says what to configure. Distroless images (packages in
/var/lib/dpkg/status.d) are patched the way they are built: unpacked,
without scripts.`,
		Example: `  # every available update, pushed next to the original as 1.27.1-patched
  drydock patch registry.example.com/nginx:1.27.1 --update-all

  # run no code of the image: refuse when a maintainer script must run
  drydock patch oci:./layout:app --update-all --sandbox never

  # what Copa users type, with a Trivy report
  trivy image --pkg-types os --ignore-unfixed -f json -o nginx.json nginx:1.27.1
  drydock patch -i nginx:1.27.1 -r nginx.json -t 1.27.1-1

  # an image in drydock's quarantine, patched into quarantine/nginx:1.27.1-1
  drydock patch quarantine/nginx:1.27.1 --update-all -t 1.27.1-1 --server http://127.0.0.1:5000

  # the same, run by the server itself (a job with progress; needs push on quarantine/)
  drydock patch quarantine/nginx:1.27.1 --update-all -t 1.27.1-1 --on-server

  # look first, through a local mirror
  drydock patch oci:./layout:app --update-all --dry-run --mirror http://mirror.internal/debian`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if f.image != "" && f.image != args[0] {
					return fmt.Errorf("IMAGE given twice: %q and -i %q", args[0], f.image)
				}
				f.image = args[0]
			}
			if f.image == "" {
				return errors.New("no image: drydock patch IMAGE (or -i IMAGE)")
			}
			return runPatch(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.image, "image", "i", "", "image to patch (Copa's spelling; same as the IMAGE argument)")
	fl.StringVarP(&f.tag, "tag", "t", "", "tag of the patched image (default: the input's tag + \"-patched\")")
	fl.BoolVar(&f.updateAll, "update-all", false, "install every available update")
	fl.BoolVar(&f.vulnerableOnly, "vulnerable-only", false, "update the packages drydock's scan finds fixable vulnerabilities in (default with a vulnerability database)")
	fl.StringVarP(&f.report, "report", "r", "", "update the fixable OS packages of this Trivy or drydock JSON report")
	fl.StringVarP(&f.output, "output", "o", "", "where to write the result: REF, oci:DIR[:TAG] or docker-archive:FILE")
	fl.StringVar(&f.platform, "platform", "", "patch only this platform of an index: os/arch[/variant]")
	fl.StringVar(&f.format, "format", "table", "plan and summary format: table or json")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan, download nothing, write nothing")
	fl.BoolVar(&f.force, "force", false, "write the output even when there is nothing to patch (the input, with lineage annotations)")
	fl.StringVar(&f.sandbox, "sandbox", "auto", "when maintainer scripts run in the isolated sandbox: auto (those drydock cannot apply natively), always (every script not reproduced natively; the sandbox must be available), never (refuse instead)")
	fl.BoolVar(&f.allowEOL, "allow-eol", false, "patch an end-of-life release from what the mirror still has")
	fl.StringVar(&f.mirror, "mirror", "", "archive URL replacing the image's (e.g. a local mirror)")
	fl.StringVar(&f.securityMirror, "security-mirror", "", "security archive URL (default: derived from the archive)")
	fl.StringVar(&f.hostKeyring, "host-keyring", "", "trust this keyring for sources the image has no key for (distroless images), e.g. "+apt.DebianArchiveKeyring)
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "INSECURE: do not check archive signatures (hashes are still checked)")
	fl.BoolVar(&f.onServer, "on-server", false, "run the patch on the drydock server (a job; quarantine/ and live/ images; the result goes to quarantine/)")
	fl.StringVar(&f.server, "server", "", "for quarantine/ and live/ images: "+serverHelp)
	fl.StringVar(&f.data, "data", envOr("DRYDOCK_DATA", config.DefaultDataDir()), "data directory holding the vulnerability database [$DRYDOCK_DATA]")
	fl.StringVar(&f.dbPath, "db", "", "vulnerability database for end-of-life data (default: the one in --data)")
	fl.StringVar(&f.distroInfo, "distro-info", "/usr/share/distro-info", "directory with distro-info-data's debian.csv and ubuntu.csv, used when there is no database")
	fl.StringVar(&f.cacheDir, "cache", "", "package, index and image cache (default: $DRYDOCK_CACHE/patch)")
	fl.StringVar(&f.cacheLimits, "cache-limits", "", "bound the caches (least recently used go first): trees=SIZE,images=SIZE,packages=SIZE, e.g. trees=2GiB,packages=8GiB")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the patch to this file (for bench/patch.sh)")
	_ = fl.MarkHidden("cpuprofile")
	return cmd
}

func runPatch(cmd *cobra.Command, g *globals, f *patchFlags) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	req := patch.Request{Image: f.image, Output: f.output, Tag: f.tag, Platform: f.platform,
		DryRun: f.dryRun, Force: f.force, AllowEOL: f.allowEOL, Sandbox: patch.SandboxMode(f.sandbox),
		Repositories: patch.Repositories{Mirror: f.mirror, SecurityMirror: f.securityMirror,
			HostKeyring: f.hostKeyring, InsecureSkipVerify: f.insecure}}
	modes := 0
	for _, set := range []bool{f.updateAll, f.report != "", f.vulnerableOnly} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("say what to update with one of --update-all, --report FILE and --vulnerable-only")
	}
	if _, err := backend.ParseSandboxMode(f.sandbox); err != nil {
		return fmt.Errorf("--sandbox: %w", err)
	}
	if f.format != "table" && f.format != "json" {
		return fmt.Errorf("--format %q: want table or json", f.format)
	}
	if f.platform != "" {
		if _, err := oci.ParsePlatform(f.platform); err != nil {
			return fmt.Errorf("--platform: %w", err)
		}
	}
	dbPath := f.dbPath
	if dbPath == "" {
		dbPath = vulndb.DefaultPath(f.data)
	}
	_, dbErr := os.Stat(dbPath)
	switch {
	case f.updateAll:
		req.Mode = patch.UpdateAll
	case f.report != "":
		rf, err := os.Open(f.report)
		if err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		req.Packages, err = patch.ParseReport(rf)
		rf.Close()
		if err != nil {
			return fmt.Errorf("--report %s: %w", f.report, err)
		}
		req.Mode = patch.FromReport
	case f.onServer && (f.vulnerableOnly || modes == 0):
		req.Mode = patch.VulnerableOnly // the server's database decides
	case f.vulnerableOnly || dbErr == nil:
		if dbErr != nil {
			return fmt.Errorf("--vulnerable-only needs a vulnerability database; none at %s: run \"drydock db update\"", dbPath)
		}
		req.Mode = patch.VulnerableOnly
	default:
		return fmt.Errorf("say what to update: --update-all, --report FILE, or --vulnerable-only (which needs a vulnerability database; none at %s: run \"drydock db update\")", dbPath)
	}
	if f.onServer {
		return runPatchOnServer(cmd, g, f, req)
	}
	if f.dbPath != "" && dbErr != nil {
		return fmt.Errorf("--db: %w", dbErr)
	}
	ctx := cmd.Context()
	// One image: extracting its tree for the sandbox beside the downloads
	// saves the scripts' wait when they need it.
	opts := []patch.Option{patch.WithLogger(log), patch.WithProgress(patchProgress(g, log)), patch.WithSandboxAhead()}
	var db *vulndb.DB
	if dbErr == nil {
		if db, err = vulndb.Open(dbPath); err != nil {
			return fmt.Errorf("opening vulnerability database: %w", err)
		}
		defer db.Close()
		opts = append(opts, patch.WithVulnDB(db))
	}
	rels, err := patch.LoadReleases(ctx, db, f.distroInfo)
	if err != nil {
		return err
	}
	opts = append(opts, patch.WithReleases(rels))
	if f.cacheDir != "" {
		opts = append(opts, patch.WithCacheDir(f.cacheDir))
	}
	if f.cacheLimits != "" {
		l, err := parseCacheLimits(f.cacheLimits)
		if err != nil {
			return fmt.Errorf("--cache-limits: %w", err)
		}
		opts = append(opts, patch.WithCacheLimits(l))
	}
	if patch.ServerName(f.image) || patch.ServerName(f.output) {
		srv, err := parseServerFlag(f.server)
		if err != nil {
			return err
		}
		opts = append(opts, patch.WithServer(srv))
	}
	res, err := patch.Run(ctx, req, opts...)
	if err != nil {
		return err
	}
	return printPatchSummary(g.stdout, f.format, res)
}

func printPatchSummary(w io.Writer, format string, s *patch.Result) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	for _, p := range s.Platforms {
		pl := p.Plan
		fmt.Fprintf(w, "%s (%s, support: %s", pl.OS, pl.Platform, pl.Support)
		if pl.SupportEnd != "" {
			fmt.Fprintf(w, " until %s", pl.SupportEnd)
		}
		fmt.Fprintln(w, ")")
		if len(pl.Changes) == 0 {
			fmt.Fprintf(w, "  nothing to patch: %s\n", pl.Reason)
		} else {
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  PACKAGE\tINSTALLED\tCANDIDATE\tSUITE\tSIZE\tWHY")
			for _, c := range pl.Changes {
				from := c.From
				if from == "" {
					from = "(new)"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Package, from, c.To, c.Suite, humanBytes(c.Size), c.Reason)
			}
			tw.Flush()
			fmt.Fprintf(w, "  %d packages, %s to download\n", len(pl.Changes), humanBytes(pl.DownloadSize()))
		}
		for _, u := range pl.Unavailable {
			cand := u.Candidate
			if cand == "" {
				cand = "none"
			}
			fmt.Fprintf(w, "  not yet available: %s %s needs %s (repositories offer: %s)\n", u.Package, u.Installed, u.Wanted, cand)
		}
		if p.LayerSize > 0 {
			fmt.Fprintf(w, "  new layer: %s compressed\n", humanBytes(p.LayerSize))
		}
	}
	switch {
	case s.DryRun:
		fmt.Fprintln(w, "dry run: nothing downloaded or written")
	case s.Digest != "":
		fmt.Fprintf(w, "patched: %s (%s) in %.1fs\n", s.Output, s.Digest, s.Seconds)
	default:
		fmt.Fprintln(w, "nothing to patch: no image written")
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// patchProgress reports the patch's phases: a line per phase on a
// terminal, log records otherwise.
func patchProgress(g *globals, log *slog.Logger) func(patch.Event) {
	tty := isTerminal(g.stderr)
	var mu sync.Mutex
	last := ""
	return func(e patch.Event) {
		mu.Lock()
		defer mu.Unlock()
		key := e.Platform + " " + e.Phase
		if e.Phase == "download" && e.Total > 0 {
			if tty {
				fmt.Fprintf(g.stderr, "\r%s: downloading %s / %s %-40s", e.Platform, humanBytes(e.Done), humanBytes(e.Total), e.Package)
				if e.Package == "" {
					fmt.Fprintln(g.stderr)
				}
			} else if e.Package != "" {
				log.Info("downloading", "platform", e.Platform, "package", e.Package)
			}
			last = key
			return
		}
		if key == last {
			return
		}
		last = key
		switch {
		case tty && e.Platform != "":
			fmt.Fprintf(g.stderr, "%s: %s\n", e.Platform, e.Phase)
		case tty:
			fmt.Fprintf(g.stderr, "%s\n", e.Phase)
		default:
			log.Info("patch", "platform", e.Platform, "phase", e.Phase)
		}
	}
}

// parseCacheLimits reads "trees=2GiB,images=1GiB,packages=8GiB" (sizes
// as every size flag takes them).
func parseCacheLimits(s string) (patch.CacheLimits, error) {
	var l patch.CacheLimits
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return l, fmt.Errorf("%q: want NAME=SIZE", kv)
		}
		var n sizeFlag
		if err := n.Set(v); err != nil {
			return l, fmt.Errorf("%s: %w", k, err)
		}
		switch k {
		case "trees":
			l.Trees = int64(n)
		case "images":
			l.Images = int64(n)
		case "packages":
			l.Packages = int64(n)
		default:
			return l, fmt.Errorf("%q: the caches are trees, images and packages", k)
		}
	}
	return l, nil
}

// startCPUProfile profiles this process's CPU use into file until the
// returned function is called (the hidden --cpuprofile flag).
func startCPUProfile(file string) (func(), error) {
	out, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}
