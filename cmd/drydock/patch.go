package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/buildinfo"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/patch/apt"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/vulndb"
)

type patchFlags struct {
	image, tag, report, output, platform, format   string
	mirror, securityMirror, hostKeyring            string
	updateAll, dryRun, allowEOL, insecure, sandbox bool
	vulnerableOnly, force                          bool
	server, data, dbPath, cacheDir, distroInfo     string
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

Maintainer scripts are not run. Scripts that do nothing for an upgrade
inside an image (service restarts, systemd enablement, applied
dpkg-maintscript-helper migrations) and the ldconfig trigger are handled
natively; any other script stops the patch with its name and reason, so
an image is never left half-configured, unless --sandbox lets drydock run
it: the image's files (with the new layer) are extracted to a private
directory and the scripts run there, chrooted, in new user, mount, PID and
network namespaces, in dpkg's order; what they change joins the layer. Distroless images (packages in
/var/lib/dpkg/status.d) are patched the way they are built: unpacked,
without scripts.`,
		Example: `  # every available update, pushed next to the original as 1.27.1-patched
  drydock patch registry.example.com/nginx:1.27.1 --update-all

  # what Copa users type, with a Trivy report
  trivy image --pkg-types os --ignore-unfixed -f json -o nginx.json nginx:1.27.1
  drydock patch -i nginx:1.27.1 -r nginx.json -t 1.27.1-1

  # an image in drydock's quarantine, patched into quarantine/nginx:1.27.1-1
  drydock patch quarantine/nginx:1.27.1 --update-all -t 1.27.1-1 --server http://127.0.0.1:5000

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
	fl.BoolVar(&f.sandbox, "sandbox", false, "run maintainer scripts drydock cannot apply natively in an isolated sandbox (util-linux unshare; images of this machine's architecture only)")
	fl.BoolVar(&f.allowEOL, "allow-eol", false, "patch an end-of-life release from what the mirror still has")
	fl.StringVar(&f.mirror, "mirror", "", "archive URL replacing the image's (e.g. a local mirror)")
	fl.StringVar(&f.securityMirror, "security-mirror", "", "security archive URL (default: derived from the archive)")
	fl.StringVar(&f.hostKeyring, "host-keyring", "", "trust this keyring for sources the image has no key for (distroless images), e.g. "+apt.DebianArchiveKeyring)
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "INSECURE: do not check archive signatures (hashes are still checked)")
	fl.StringVar(&f.server, "server", envOr("DRYDOCK_SERVER", oci.DefaultServer), "drydock server URL for quarantine/ and live/ images [$DRYDOCK_SERVER]")
	fl.StringVar(&f.data, "data", envOr("DRYDOCK_DATA", config.DefaultDataDir()), "data directory holding the vulnerability database [$DRYDOCK_DATA]")
	fl.StringVar(&f.dbPath, "db", "", "vulnerability database for end-of-life data (default: the one in --data)")
	fl.StringVar(&f.distroInfo, "distro-info", "/usr/share/distro-info", "directory with distro-info-data's debian.csv and ubuntu.csv, used when there is no database")
	fl.StringVar(&f.cacheDir, "cache", "", "package and index cache (default: $DRYDOCK_CACHE/apt)")
	return cmd
}

func runPatch(cmd *cobra.Command, g *globals, f *patchFlags) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	modes := 0
	for _, set := range []bool{f.updateAll, f.report != "", f.vulnerableOnly} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("say what to update with one of --update-all, --report FILE and --vulnerable-only")
	}
	dbPath := f.dbPath
	if dbPath == "" {
		dbPath = vulndb.DefaultPath(f.data)
	}
	if modes == 0 {
		if _, err := os.Stat(dbPath); err != nil {
			return fmt.Errorf("say what to update: --update-all, --report FILE, or --vulnerable-only (which needs a vulnerability database; none at %s: run \"drydock db update\")", dbPath)
		}
		f.vulnerableOnly = true
	}
	if f.format != "table" && f.format != "json" {
		return fmt.Errorf("--format %q: want table or json", f.format)
	}
	opts := patch.Options{Mode: patch.UpdateAll, AllowEOL: f.allowEOL, Logger: log, Sandbox: f.sandbox,
		Tool: "drydock " + buildinfo.Get().Version, BaseName: f.image}
	if f.report != "" {
		rf, err := os.Open(f.report)
		if err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		opts.Wanted, err = patch.ParseReport(rf)
		rf.Close()
		if err != nil {
			return fmt.Errorf("--report %s: %w", f.report, err)
		}
		opts.Mode = patch.FromReport
	}
	if opts.Releases, err = loadReleases(cmd, f, dbPath); err != nil {
		return err
	}
	for _, o := range []struct {
		set bool
		opt apt.Option
	}{
		{f.mirror != "", apt.WithMirror(f.mirror)},
		{f.securityMirror != "", apt.WithSecurityMirror(f.securityMirror)},
		{f.hostKeyring != "", apt.WithHostKeyring(f.hostKeyring)},
		{f.insecure, apt.WithInsecureSkipVerify()},
		{f.cacheDir != "", apt.WithCacheDir(f.cacheDir)},
		{true, apt.WithLogger(log)},
	} {
		if o.set {
			opts.Apt = append(opts.Apt, o.opt)
		}
	}
	var only *v1.Platform
	if f.platform != "" {
		p, err := oci.ParsePlatform(f.platform)
		if err != nil {
			return fmt.Errorf("--platform: %w", err)
		}
		only = &p
	}
	src, srcOpts, err := scanSource(f.image, f.server)
	if err != nil {
		return err
	}
	dest, err := patchDestination(f, src)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	start := time.Now()
	art, err := src.Open(ctx, append(srcOpts, oci.WithLogger(log))...)
	if err != nil {
		return err
	}
	defer art.Close()
	if f.vulnerableOnly {
		if opts.Wanted, err = fixableInImage(cmd, dbPath, art, only); err != nil {
			return err
		}
		opts.Mode = patch.FromReport
	}
	opts.Progress = patchProgress(g, log)

	var results []*patch.ImageResult
	var out *oci.Artifact
	if art.IsIndex() {
		r, cleanup, err := patch.Index(ctx, art.Index, only, f.dryRun, opts)
		defer cleanup()
		if err != nil {
			return err
		}
		results = r.Platforms
		if r.Index != nil {
			out = &oci.Artifact{Index: r.Index}
		}
	} else {
		r, cleanup, err := patch.Image(ctx, art.Image, f.dryRun, opts)
		defer cleanup()
		if err != nil {
			return err
		}
		results = []*patch.ImageResult{r}
		if r.Image != nil {
			out = &oci.Artifact{Image: r.Image}
		}
	}
	if out == nil && f.force && !f.dryRun {
		if art.IsIndex() {
			return errors.New("--force with nothing to patch: only single images are re-tagged; copy the index with \"drydock import\"")
		}
		img, err := patch.Retag(art.Image, opts)
		if err != nil {
			return err
		}
		out = &oci.Artifact{Image: img}
	}
	sum := patchSummary{Image: f.image, DryRun: f.dryRun}
	for _, r := range results {
		ps := platformSummary{Plan: r.Plan, LayerSize: r.LayerSize, Scripts: r.Scripts, Seconds: map[string]float64{}}
		for k, v := range r.Timings {
			ps.Seconds[k] = v.Seconds()
		}
		sum.Platforms = append(sum.Platforms, ps)
	}
	if out != nil {
		d, err := out.Digest()
		if err != nil {
			return err
		}
		if err := writePatched(ctx, out, dest, srcOpts, log); err != nil {
			return err
		}
		sum.Output, sum.Digest = dest, d.String()
	}
	sum.Seconds = time.Since(start).Seconds()
	return printPatchSummary(g.stdout, f.format, &sum)
}

// loadReleases reads the distro-info data deciding end-of-life: from the
// vulnerability DB when there is one, else the host's distro-info-data.
func loadReleases(cmd *cobra.Command, f *patchFlags, dbPath string) ([]vulndb.Release, error) {
	if _, err := os.Stat(dbPath); err == nil {
		db, err := vulndb.Open(dbPath)
		if err != nil {
			return nil, fmt.Errorf("opening vulnerability database: %w", err)
		}
		defer db.Close()
		var all []vulndb.Release
		for _, d := range []string{"debian", "ubuntu"} {
			rs, err := db.Releases(cmd.Context(), d)
			if err != nil {
				return nil, err
			}
			all = append(all, rs...)
		}
		if len(all) > 0 {
			return all, nil
		}
	} else if f.dbPath != "" {
		return nil, fmt.Errorf("--db: %w", err)
	}
	var all []vulndb.Release
	for _, d := range []string{"debian", "ubuntu"} {
		fh, err := os.Open(f.distroInfo + "/" + d + ".csv")
		if err != nil {
			continue
		}
		rs, err := osinfo.ParseDistroInfo(fh, d)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s/%s.csv: %w", f.distroInfo, d, err)
		}
		all = append(all, rs...)
	}
	return all, nil
}

// patchDestination decides where the result goes.
func patchDestination(f *patchFlags, src oci.Source) (string, error) {
	tag := f.tag
	if tag == "" {
		orig := "latest"
		if t, ok := src.Ref.(name.Tag); ok && src.Kind == oci.KindRegistry {
			orig = t.TagStr()
		} else if src.Tag != "" {
			orig = src.Tag
		}
		tag = orig + "-patched"
	}
	if !imgref.ValidTag(tag) {
		return "", fmt.Errorf("-t %q is not a valid tag", tag)
	}
	if f.output != "" {
		if strings.HasPrefix(f.output, "oci:") && strings.Count(f.output, ":") == 1 {
			return f.output + ":" + tag, nil
		}
		return f.output, nil
	}
	switch src.Kind {
	case oci.KindRegistry:
		repo := src.Ref.Context()
		// A patched image is a new image: it enters the server through
		// quarantine/, never straight into live/.
		if imgref.IsLive(repo.RepositoryStr()) {
			r, err := name.NewRepository(repo.RegistryStr()+"/"+imgref.Rebase(repo.RepositoryStr(), imgref.Quarantine), nameOpts(repo)...)
			if err != nil {
				return "", err
			}
			repo = r
		}
		return repo.Tag(tag).String(), nil
	case oci.KindOCILayout:
		return "oci:" + src.Path + ":" + tag, nil
	}
	return "", fmt.Errorf("%s input: say where the patched image goes with --output (REF, oci:DIR[:TAG] or docker-archive:FILE)", src.Kind)
}

type patchSummary struct {
	Image     string            `json:"image"`
	DryRun    bool              `json:"dry_run"`
	Platforms []platformSummary `json:"platforms"`
	Output    string            `json:"output,omitempty"`
	Digest    string            `json:"digest,omitempty"`
	Seconds   float64           `json:"seconds"`
}

type platformSummary struct {
	Plan      patch.Plan         `json:"plan"`
	LayerSize int64              `json:"layer_size,omitempty"`
	Scripts   []apt.ScriptAction `json:"scripts,omitempty"`
	// Seconds is the time of each phase.
	Seconds map[string]float64 `json:"phase_seconds,omitempty"`
}

func printPatchSummary(w io.Writer, format string, s *patchSummary) error {
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

// fixableInImage scans the image (each selected platform of an index) with
// drydock's scanner and returns the fixable packages with the highest
// fixed version each needs.
func fixableInImage(cmd *cobra.Command, dbPath string, art *oci.Artifact, only *v1.Platform) (map[string]string, error) {
	db, err := vulndb.Open(dbPath)
	if err != nil {
		return nil, fmt.Errorf("opening vulnerability database: %w", err)
	}
	defer db.Close()
	sc, err := scan.New(db)
	if err != nil {
		return nil, err
	}
	var imgs []v1.Image
	if art.IsIndex() {
		m, err := art.Index.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range m.Manifests {
			if d.Platform == nil || !d.MediaType.IsImage() || (only != nil && !d.Platform.Satisfies(*only)) {
				continue
			}
			img, err := art.Index.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			imgs = append(imgs, img)
		}
	} else {
		imgs = []v1.Image{art.Image}
	}
	out := map[string]string{}
	for _, img := range imgs {
		rep, err := sc.Image(cmd.Context(), img)
		if err != nil {
			return nil, fmt.Errorf("scanning for fixable vulnerabilities: %w", err)
		}
		for _, f := range rep.Findings {
			if !f.Fixable() {
				continue
			}
			if cur, ok := out[f.PkgName]; !ok || !apt.VersionAtLeast(cur, f.FixedVersion) {
				out[f.PkgName] = f.FixedVersion
			}
		}
	}
	return out, nil
}

// nameOpts keeps a repository's insecure (plain HTTP) setting.
func nameOpts(r name.Repository) []name.Option {
	if r.Scheme() == "http" {
		return []name.Option{name.Insecure}
	}
	return nil
}
