package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/oci"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// scanFlags are drydock scan's flags.
type scanFlags struct {
	pkgTypes      []string
	ignoreUnfixed bool
	severity      string
	format        string
	output        string
	exitCode      int
	dbPath        string
	data          string
	// noInventoryCache disables the inventory stored by manifest digest
	// under DATA/scan/inventory (a rescan after a DB update reads no layer).
	noInventoryCache bool
	platform         string
	server           string
	maxAge           time.Duration
	limits           scan.Limits
	maxPackageData   sizeFlag
}

func newScanCmd(g *globals) *cobra.Command {
	f := &scanFlags{}
	cmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Scan an image's OS packages for known vulnerabilities",
		Long: `Scan lists the known vulnerabilities of an image's OS packages (Debian, Ubuntu,
Alpine) from the local vulnerability database, as "trivy image --pkg-types os"
does: one finding per vulnerability and installed binary package, with the
source package, installed and fixed versions, the vendor's status (fixed,
affected, will_not_fix, no_dsa, postponed, end_of_life, undetermined),
severity and where it came from, title, references and the advisories
(DSA/DLA) that shipped the fix.

IMAGE is anything "drydock import" accepts (REF, oci:DIR[:TAG],
oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG|:@N]) or
quarantine/NAME[:TAG|@DIGEST] or live/NAME[:TAG|@DIGEST], an image on the
drydock server (--server). For a multi-platform index, the --platform image is scanned
(linux/amd64 by default): one target per scan.

An end-of-life release (from distro-info-data, at today's date) is said
first and is never a clean result; an OS drydock cannot scan is reported as
"unsupported", never as "0 vulnerabilities".

An image that cannot be judged is refused, with the reason, never reported
clean: "unverifiable" when the OS's package database is missing, empty or
removed by a layer (a whiteout of var/lib/dpkg/status, say); "hostile" when
a layer's entry, hardlink or symbolic link leaves the image root; "corrupt"
when a layer does not match its digest or the config's diff_id;
"over-limit" past --max-packages, --max-findings or --max-package-data
(the gate applies the same rules and limits).

--exit-code N: exit with status N when, after the filters, any finding
remains, or the OS is end-of-life, or the OS is unsupported, or the image
is refused (Trivy's --exit-code semantics, plus fail-closed on end-of-life,
unsupported and refused images). Without it, the exit status is 0 whenever
the scan ran, 1 when it could not run or the image was refused.

The database is the one "drydock db update" (or "drydock db pull") wrote in
the data directory, or --db. Every scan prints to stderr which database it
used and warns when it is older than --max-age.

Each image's inventory (OS and installed packages) is stored by manifest
digest under DATA/scan/inventory, so scanning the same image again, e.g.
after a database update, reads none of its layers (--no-inventory-cache
turns that off).

Formats: table (default), json (drydock's schema, schemaVersion 1; see the
scan package documentation), trivy-json (Trivy's report schema,
SchemaVersion 2, readable by Copa's -r), sarif (SARIF 2.1.0, for code
scanning dashboards), cyclonedx (a CycloneDX 1.6 JSON BOM of the image and
its vulnerable OS packages with a vulnerabilities section) and openvex
(an OpenVEX 0.2.0 document, one statement per vulnerability).`,
		Example: `  # like "trivy image --pkg-types os --ignore-unfixed nginx:1.27.1"
  drydock scan nginx:1.27.1 --ignore-unfixed

  # only HIGH and CRITICAL, failing a CI job when any remains
  drydock scan oci:./layout:v1 --severity HIGH,CRITICAL --exit-code 1

  # a Trivy report for "copa patch -r"
  drydock scan docker-archive:./nginx.tar --format trivy-json --output nginx.trivy.json

  # an image already imported into the drydock server
  drydock scan quarantine/nginx:1.27.1 --server http://127.0.0.1:5000

  # a bigger budget for a huge image (the defaults refuse it as over-limit)
  drydock scan registry.example.com/monolith:v1 --max-packages 50000 --max-package-data 256MiB

  # the arm64 image of a multi-platform index, with another database
  drydock scan registry.example.com/app:v1 --platform linux/arm64 --db ./drydock-vuln.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.pkgTypes, "pkg-types", []string{"os"}, "package types to scan (only os is supported)")
	fl.BoolVar(&f.ignoreUnfixed, "ignore-unfixed", false, "report only vulnerabilities that have a fixed version")
	fl.StringVar(&f.severity, "severity", "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL", "severities to report, comma-separated")
	fl.StringVar(&f.format, "format", "table", "output format: "+strings.Join(scanFormats, ", "))
	fl.StringVarP(&f.output, "output", "o", "", "write the report to this file instead of stdout")
	fl.IntVar(&f.exitCode, "exit-code", 0, "exit status when findings remain or the OS is end-of-life or unsupported")
	fl.StringVar(&f.dbPath, "db", "", "vulnerability database file (default: the one in --data)")
	fl.StringVar(&f.data, "data", envOr("DRYDOCK_DATA", config.DefaultDataDir()), "data directory [$DRYDOCK_DATA]")
	fl.StringVar(&f.platform, "platform", "linux/amd64", "platform of a multi-platform index to scan: os/arch[/variant]")
	fl.StringVar(&f.server, "server", "", "for quarantine/ and live/ images: "+serverHelp)
	fl.DurationVar(&f.maxAge, "max-age", scan.DefaultMaxDBAge, "warn when the vulnerability data (its newest record) is older than this")
	fl.IntVar(&f.limits.MaxPackages, "max-packages", scan.DefaultMaxPackages, "refuse an image with more installed packages")
	fl.IntVar(&f.limits.MaxFindings, "max-findings", scan.DefaultMaxFindings, "refuse an image with more findings (before filters)")
	f.maxPackageData = sizeFlag(scan.DefaultMaxDatabaseBytes)
	fl.Var(&f.maxPackageData, "max-package-data", "refuse an image whose package database files are larger in all (e.g. 128MiB)")
	fl.BoolVar(&f.noInventoryCache, "no-inventory-cache", false, "read the image's layers even when its inventory is stored in --data")
	return cmd
}

func runScan(cmd *cobra.Command, g *globals, f *scanFlags, image string) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	write, ok := scanWriter(f.format)
	if !ok {
		return fmt.Errorf("--format %q: want %s", f.format, strings.Join(scanFormats, ", "))
	}
	sev, err := scan.ParseSeverities(f.severity)
	if err != nil {
		return fmt.Errorf("--severity: %w", err)
	}
	if f.exitCode < 0 || f.exitCode > 255 {
		return fmt.Errorf("--exit-code %d: want 0..255", f.exitCode)
	}
	plat, err := oci.ParsePlatform(f.platform)
	if err != nil {
		return fmt.Errorf("--platform: %w", err)
	}
	if f.limits.MaxPackages <= 0 || f.limits.MaxFindings <= 0 {
		return fmt.Errorf("--max-packages %d, --max-findings %d: want positive numbers", f.limits.MaxPackages, f.limits.MaxFindings)
	}
	f.limits.MaxDatabaseBytes = int64(f.maxPackageData)
	opts := []scan.Option{scan.WithPkgTypes(f.pkgTypes...), scan.WithIgnoreUnfixed(f.ignoreUnfixed),
		scan.WithSeverities(sev...), scan.WithMaxDBAge(f.maxAge), scan.WithLimits(f.limits)}
	dbPath := f.dbPath
	if dbPath == "" {
		dbPath = vulndb.DefaultPath(f.data)
	}
	opts = append(opts, scan.WithDBPath(dbPath))
	if !f.noInventoryCache {
		cache, err := scan.NewFileCache(filepath.Join(f.data, "scan", "inventory"))
		if err != nil {
			return err
		}
		opts = append(opts, scan.WithInventoryCache(cache))
	}
	// Validate the options before any slow work.
	if _, err := scan.New(noDB{}, opts...); err != nil {
		return err
	}
	if _, err := os.Stat(dbPath); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no vulnerability database at %s: run \"drydock db update\" (or \"drydock db pull REF\" where the feeds are unreachable), or pass --db", dbPath)
	}
	db, err := vulndb.Open(dbPath)
	if err != nil {
		return fmt.Errorf("opening vulnerability database: %w", err)
	}
	defer db.Close()
	sc, err := scan.New(db, opts...)
	if err != nil {
		return err
	}

	src, srcOpts, err := scanSource(image, f.server)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	log.Info("opening image", "source", src.String())
	art, err := src.Open(ctx, append(srcOpts, oci.WithLogger(log))...)
	if err != nil {
		return err
	}
	defer art.Close()
	img := art.Image
	platform := ""
	if art.IsIndex() {
		if img, err = pickPlatform(art.Index, plat); err != nil {
			return fmt.Errorf("%s: %w", image, err)
		}
		platform = plat.String()
	}
	rep, err := sc.Image(ctx, img)
	if err != nil {
		if _, refused := refusal.KindOf(err); refused && f.exitCode != 0 {
			return &exitError{code: f.exitCode, err: fmt.Errorf("scan of %s refused: %w", image, err)}
		}
		return err
	}
	rep.Artifact.Name = image
	rep.Artifact.Platform = platform
	if src.Kind == oci.KindRegistry {
		rep.Artifact.RepoDigests = []string{src.Ref.Context().Name() + "@" + art.Descriptor.Digest.String()}
	}
	writeDBNotice(g.stderr, rep)

	var out io.Writer = g.stdout
	var file *os.File
	if f.output != "" {
		if file, err = os.Create(f.output); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		out = file
	}
	err = write(out, rep)
	if file != nil {
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--output: %w", cerr)
		}
	}
	if err != nil {
		return err
	}
	if f.exitCode != 0 && !rep.Clean() {
		why := fmt.Sprintf("%d findings", len(rep.Findings))
		if rep.Status != scan.StatusOK {
			why = rep.StatusReason
		}
		return &exitError{code: f.exitCode, err: fmt.Errorf("scan of %s failed: %s", image, why)}
	}
	return nil
}

// scanFormats are the --format values, in help order.
var scanFormats = []string{"table", "json", "trivy-json", "sarif", "cyclonedx", "openvex"}

// scanWriter returns the writer of a --format value.
func scanWriter(format string) (scan.Writer, bool) {
	w, ok := scan.Formats()[format]
	return w, ok
}

// scanSource resolves IMAGE: quarantine/NAME[:TAG|@DIGEST] and
// live/NAME[:TAG|@DIGEST] name an image on the drydock server (tag latest
// by default); anything else is what ParseSource accepts.
func scanSource(image, server string) (oci.Source, []oci.Option, error) {
	if ns := imgref.Namespace(image); ns != imgref.Quarantine && ns != imgref.Live {
		src, err := oci.ParseSource(image)
		return src, nil, err
	}
	srv, err := parseServerFlag(server)
	if err != nil {
		return oci.Source{}, nil, err
	}
	var nopts []name.Option
	if srv.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(srv.Registry.RegistryStr()+"/"+image, nopts...)
	if err != nil {
		return oci.Source{}, nil, fmt.Errorf("invalid image %q: %w", image, err)
	}
	return oci.Source{Kind: oci.KindRegistry, Ref: ref, Index: -1}, srv.Options(), nil
}

// pickPlatform returns the image of idx for platform p.
func pickPlatform(idx v1.ImageIndex, p v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	var have []string
	for _, d := range m.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		have = append(have, d.Platform.String())
		if d.Platform.Satisfies(p) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading %s image: %w", d.Platform, err)
			}
			return img, nil
		}
	}
	slices.Sort(have)
	return nil, fmt.Errorf("index has no %s image (it has: %s); pass --platform", p, strings.Join(have, ", "))
}

// writeDBNotice says which database the scan used, and warns when stale.
func writeDBNotice(w io.Writer, rep *scan.Report) {
	var names []string
	for _, s := range rep.DB.Sources {
		names = append(names, s.Name)
	}
	data := "records undated"
	if !rep.DB.DataAsOf.IsZero() {
		data = "data as of " + rep.DB.DataAsOf.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "drydock: vulnerability database %s, %s (%s old), built %s, from %s\n", rep.DB.Path,
		data, rep.DB.DataAge.Round(time.Minute), rep.DB.BuiltAt.Format(time.RFC3339), strings.Join(names, ", "))
	if rep.DB.Stale {
		fmt.Fprintf(w, "drydock: WARNING: the vulnerability data is stale (%s old, over --max-age): findings published since are missing; run \"drydock db update\"\n",
			rep.DB.DataAge.Round(time.Hour))
	}
}

// noDB lets scan.New validate options before the database is opened.
type noDB struct{ scan.Database }
