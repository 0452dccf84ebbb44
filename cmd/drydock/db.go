package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources"
)

// defaultMaxAge is when "drydock db status" calls the database stale:
// its data (newest record) older than this.
const defaultMaxAge = vulndb.DefaultMaxDataAge

// dbFlags are the flags every "drydock db" command shares.
type dbFlags struct {
	data string
}

func (f *dbFlags) path() string { return vulndb.DefaultPath(f.data) }

func newDBCmd(g *globals) *cobra.Command {
	f := &dbFlags{}
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Build, inspect and move the local vulnerability database",
		Long: `The vulnerability database is one SQLite file in the data directory
(` + vulndb.DefaultPath(config.DefaultDataDir()) + ` by default), built from
public feeds in their original formats: OSV exports, the Debian security
tracker, the Alpine secdb, distro-info-data and debian-security-support.
"drydock db update" builds it, "drydock db status" says what it was built
from and when, "drydock db push" and "drydock db pull" carry it through an
OCI registry to sites that cannot reach the feeds.`,
		Example: `  drydock db update
  drydock db status
  drydock db push registry.example.com/drydock/vulndb:latest
  drydock db pull registry.example.com/drydock/vulndb:latest`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&f.data, "data", envOr("DRYDOCK_DATA", config.DefaultDataDir()), "data directory [$DRYDOCK_DATA]")
	cmd.AddCommand(newDBUpdateCmd(g, f), newDBStatusCmd(g, f), newDBPushCmd(g, f), newDBPullCmd(g, f))
	return cmd
}

func newDBUpdateCmd(g *globals, f *dbFlags) *cobra.Command {
	var (
		srcFlags  []string
		only      []string
		keepGoing bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Fetch the vulnerability feeds and rebuild the database",
		Long: `Update fetches every source's files (their public URLs, or what --source
says), imports them into a new database and replaces the old one when all
went well. A failed update leaves the old database as it was.

Downloads are cached beside the database with their ETag and Last-Modified:
an update where nothing changed downloads nothing (the server answers 304)
and says "unchanged". Server errors, connection errors and truncated bodies
are retried with backoff.

--source NAME=URL|FILE replaces the default URLs of source NAME (repeat it
for several files); a FILE is read in place. --only NAME updates only that
source and keeps the others from the previous database. --keep-going keeps
a failing source's previous records instead of failing the update.

Sources: ` + strings.Join(sourceNames(), ", ") + `.`,
		Example: `  # all feeds from their public URLs
  drydock db update

  # a mirror for OSV's Debian export and a local Alpine secdb file
  drydock db update --source osv=https://mirror.example.com/osv/Debian/all.zip \
    --source alpine-secdb=./secdb/v3.21/main.json

  # only refresh the OSV data, whatever else fails
  drydock db update --only osv --keep-going`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			opts := []vulndb.UpdateOption{vulndb.WithOnly(only...), vulndb.WithKeepGoing(keepGoing), vulndb.WithTimeout(timeout)}
			for _, s := range srcFlags {
				name, loc, ok := strings.Cut(s, "=")
				if !ok || name == "" || loc == "" {
					return fmt.Errorf("--source %q: want NAME=URL or NAME=FILE", s)
				}
				opts = append(opts, vulndb.WithSourceURLs(name, loc))
			}
			view := newDBProgress(g.stderr, isTerminal(g.stderr), log)
			opts = append(opts, vulndb.WithProgress(view.update))
			rep, err := vulndb.Update(cmd.Context(), f.path(), sources.Defaults(), opts...)
			view.finish()
			if err != nil {
				return err
			}
			writeUpdateReport(g.stdout, rep)
			for _, s := range rep.Sources {
				if s.Err != nil {
					log.Warn("source failed, its previous records were kept", "source", s.Name, "error", s.Err.Error())
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&srcFlags, "source", nil, "NAME=URL|FILE: fetch source NAME from URL or FILE instead of its default URLs (repeatable)")
	fl.StringSliceVar(&only, "only", nil, "update only these sources, keep the others (repeatable, comma-separated)")
	fl.BoolVar(&keepGoing, "keep-going", false, "keep a failing source's previous records instead of failing")
	fl.DurationVar(&timeout, "timeout", vulndb.DefaultTimeout, "time limit for each download")
	return cmd
}

func sourceNames() []string {
	var names []string
	for _, s := range sources.Defaults() {
		names = append(names, s.Name())
	}
	slices.Sort(names)
	return names
}

func writeUpdateReport(w io.Writer, rep *vulndb.UpdateReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tADVISORIES\tRELEASES\tPACKAGE-SUPPORT\tDATA-AS-OF\tRESULT")
	for _, s := range rep.Sources {
		result := "updated"
		switch {
		case s.Err != nil:
			result = "FAILED, kept previous"
		case !s.Updated && len(s.Fetches) == 0:
			result = "not selected"
		case !s.Updated:
			result = "kept"
		case allUnchanged(s.Fetches):
			result = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Advisories, s.Releases, s.PackageSupport, day(s.DataAsOf), result)
	}
	tw.Flush()
	state := "updated"
	if rep.Unchanged() {
		state = "unchanged"
	}
	fmt.Fprintf(w, "\n%s: %s (downloaded %s), built %s\n", rep.Path, state, size(rep.Downloaded), rep.BuiltAt.Format(time.RFC3339))
}

func allUnchanged(fs []vulndb.FetchMeta) bool {
	for _, f := range fs {
		if !f.Unchanged {
			return false
		}
	}
	return len(fs) > 0
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

// dbStatusJSON is the --json schema of "drydock db status" (version 1).
type dbStatusJSON struct {
	SchemaVersion int         `json:"schemaVersion"`
	Path          string      `json:"path"`
	Database      vulndb.Meta `json:"database"`
	AgeSeconds    int64       `json:"ageSeconds"`
	// DataAsOf is the newest record's date, DataAgeSeconds its age (the
	// build's when no source dates its records); Stale compares it with
	// MaxAgeSeconds.
	DataAsOf       time.Time `json:"dataAsOf,omitzero"`
	DataAgeSeconds int64     `json:"dataAgeSeconds"`
	Stale          bool      `json:"stale"`
	MaxAgeSeconds  int64     `json:"maxAgeSeconds"`
}

func newDBStatusCmd(g *globals, f *dbFlags) *cobra.Command {
	var (
		asJSON bool
		maxAge time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say what the vulnerability database was built from and when",
		Long: `Status prints the database's data date (its newest record) and age, its
build time, and for each source its record counts, the newest record date
(data as of), and every file it was built from: URL, fetch time, ETag /
Last-Modified, size and sha256. Data older than --max-age (default 72h) gets a
warning: a database built today from files of February is as old as February.

--json prints one object (schemaVersion 1):
  {"schemaVersion": 1, "path": "...", "ageSeconds": 3600,
   "dataAsOf": "...", "dataAgeSeconds": 7200, "stale": false,
   "maxAgeSeconds": 259200,
   "database": {"schemaVersion": 1, "builtAt": "...",
     "sources": [{"name": "osv", "advisories": 1, "releases": 0,
       "packageSupport": 0, "dataAsOf": "...",
       "fetches": [{"url": "...", "etag": "...", "lastModified": "...",
         "sha256": "...", "size": 1, "fetchedAt": "...", "unchanged": true,
         "dataAsOf": "...", "advisories": 1, "releases": 0,
         "packageSupport": 0, "error": "set when a keep-going update kept old records"}]}]}}`,
		Example: `  drydock db status
  drydock db status --json --max-age 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			path := f.path()
			db, err := vulndb.Open(path)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no vulnerability database at %s: run \"drydock db update\" (or \"drydock db pull\")", path)
			}
			if err != nil {
				return err
			}
			meta := db.Meta()
			db.Close()
			now := time.Now()
			stale := meta.Stale(now, maxAge)
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				asOf, _ := meta.DataAsOf()
				return enc.Encode(dbStatusJSON{SchemaVersion: 1, Path: path, Database: meta, AgeSeconds: int64(meta.Age(now) / time.Second),
					DataAsOf: asOf, DataAgeSeconds: int64(meta.DataAge(now) / time.Second),
					Stale: stale, MaxAgeSeconds: int64(maxAge / time.Second)})
			}
			writeStatus(g.stdout, path, meta, now)
			if stale {
				log.Warn(meta.Freshness(now, maxAge).Warning())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (schema in the help text)")
	cmd.Flags().DurationVar(&maxAge, "max-age", defaultMaxAge, "warn when the data (its newest record) is older than this")
	return cmd
}

func writeStatus(w io.Writer, path string, m vulndb.Meta, now time.Time) {
	data := "undated records (age counted from the build)"
	if t, ok := m.DataAsOf(); ok {
		data = fmt.Sprintf("%s (%s old)", t.Format(time.RFC3339), m.DataAge(now).Round(time.Minute))
	}
	fmt.Fprintf(w, "Database: %s\nSchema:   %d\nData:     %s\nBuilt:    %s (%s ago)\n\n", path, m.SchemaVersion, data, m.BuiltAt.Format(time.RFC3339), m.Age(now).Round(time.Minute))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tADVISORIES\tRELEASES\tPACKAGE-SUPPORT\tDATA-AS-OF")
	for _, s := range m.Sources {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", s.Name, s.Advisories, s.Releases, s.PackageSupport, day(s.DataAsOf))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tURL\tFETCHED\tSIZE\tSHA256\tNOTE")
	for _, s := range m.Sources {
		for _, fm := range s.Fetches {
			note := ""
			switch {
			case fm.Error != "":
				note = "failed, previous records kept: " + fm.Error
			case fm.Unchanged:
				note = "unchanged"
			}
			sum := fm.SHA256
			if len(sum) > 12 {
				sum = sum[:12]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, fm.URL, fm.FetchedAt.Format(time.RFC3339), size(fm.Size), sum, note)
		}
	}
	tw.Flush()
}

func newDBPushCmd(g *globals, f *dbFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "push REF",
		Short: "Store the vulnerability database in a registry as an OCI artifact",
		Long: `Push stores the database as an OCI artifact (artifactType ` + vulndb.ArtifactType + `,
one gzip layer, annotations with the build time, schema version and
sources) at REF in any registry, drydock's own included. Credentials come
from the Docker config (docker login); loopback registries and REFs that
start with http:// are reached over plain HTTP.`,
		Example: `  drydock db push registry.example.com/drydock/vulndb:latest
  drydock db push http://127.0.0.1:5000/drydock/vulndb:2025-02-12`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := vulndb.Push(cmd.Context(), f.path(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s@%s\n", strings.TrimPrefix(args[0], "http://"), d)
			return nil
		},
	}
}

func newDBPullCmd(g *globals, f *dbFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pull REF",
		Short: "Fetch a vulnerability database pushed with \"drydock db push\"",
		Long: `Pull fetches the database artifact at REF, checks its digests and schema
version, and replaces the local database with it (atomically: a failed
pull leaves the local database as it was).`,
		Example: `  drydock db pull registry.example.com/drydock/vulndb:latest
  drydock db pull http://127.0.0.1:5000/drydock/vulndb@sha256:...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := vulndb.Pull(cmd.Context(), args[0], f.path())
			if err != nil {
				return err
			}
			writeStatus(g.stdout, f.path(), m, time.Now())
			return nil
		},
	}
}

// dbProgress renders update progress: a line per file redrawn on a
// terminal, a log line per finished file otherwise.
type dbProgress struct {
	w   io.Writer
	tty bool
	log *slog.Logger

	mu    sync.Mutex
	order []string
	state map[string]vulndb.Progress
	drawn int
	last  time.Time
}

func newDBProgress(w io.Writer, tty bool, log *slog.Logger) *dbProgress {
	return &dbProgress{w: w, tty: tty, log: log, state: map[string]vulndb.Progress{}}
}

func (v *dbProgress) update(p vulndb.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	key := p.Source + " " + p.URL
	if _, ok := v.state[key]; !ok {
		v.order = append(v.order, key)
	}
	v.state[key] = p
	if !v.tty {
		switch p.Phase {
		case "done":
			v.log.Info("fetched", "source", p.Source, "url", p.URL, "bytes", p.Complete, "unchanged", p.Unchanged)
		case "import":
			v.log.Info("importing", "source", p.Source, "url", p.URL)
		case "imported":
			v.log.Info("imported", "source", p.Source, "url", p.URL)
		}
		return
	}
	if now := time.Now(); p.Phase != "download" || now.Sub(v.last) > 100*time.Millisecond {
		v.last = now
		v.draw()
	}
}

func (v *dbProgress) finish() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tty && len(v.order) > 0 {
		v.draw()
	}
}

func (v *dbProgress) draw() {
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, k := range v.order {
		p := v.state[k]
		status := p.Phase
		switch {
		case p.Phase == "done" && p.Unchanged:
			status = "unchanged"
		case p.Phase == "done":
			status = "fetched"
		case p.Phase == "import":
			status = "importing"
		}
		fmt.Fprintf(&b, "\x1b[2K%-24s %-10s %s %9s  %s\n", p.Source, status, bar(p.Complete, p.Total, 20), size(p.Complete), p.URL)
	}
	v.drawn = len(v.order)
	io.WriteString(v.w, b.String())
}
