package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gc"
)

// gcPoll is how often `drydock gc` reads the run's progress.
const gcPoll = 500 * time.Millisecond

func newGCCmd(g *globals) *cobra.Command {
	var server string
	var dryRun, skipRetention, asJSON, noWait bool
	var items int
	cmd := &cobra.Command{
		Use:   "gc [--dry-run]",
		Short: "Garbage-collect the registry in the server (retention policies, then mark and sweep)",
		Long: `gc asks the server to apply the retention policies (gc.retention in the serve
config) and then collect what no tag reaches: blobs, untagged manifests (unless
an index that is kept lists them, or they are referrers of a kept subject),
referrers whose subject is gone, and upload sessions idle for longer than
uploads.purgeAfter. Pushes, pulls, promotions and patch runs go on meanwhile:
the collection never deletes what a write references, whatever its timing.

gc waits for the run and prints what it freed (or, with --dry-run, what it
would free: the dry run lists exactly the tags a real run with the same
inputs deletes). The run happens in the server, as a job: interrupting the
command does not stop it; --no-wait prints its id and returns. Needs admin.
The server also runs a collection every gc.schedule (default 24h).`,
		Example: `  drydock gc --dry-run
  drydock gc
  drydock gc --skip-retention --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var run gc.Run
			if err := c.do(cmd.Context(), "POST", "/api/v1/gc", api.GCRequest{DryRun: dryRun, SkipRetention: skipRetention}, &run); err != nil {
				return err
			}
			if noWait {
				if asJSON {
					return writeJSON(g.stdout, run)
				}
				fmt.Fprintf(g.stdout, "collection run %d queued\n", run.ID)
				return nil
			}
			phase := ""
			for !run.Finished() {
				select {
				case <-cmd.Context().Done():
					return fmt.Errorf("stopped waiting; run %d goes on in the server: %w", run.ID, cmd.Context().Err())
				case <-time.After(gcPoll):
				}
				if err := c.do(cmd.Context(), "GET", "/api/v1/gc/runs/"+strconv.FormatInt(run.ID, 10), nil, &run); err != nil {
					return err
				}
				if !asJSON && run.Progress.Phase != "" && run.Progress.Phase != phase {
					phase = run.Progress.Phase
					fmt.Fprintf(g.stderr, "run %d: %s\n", run.ID, phase)
				}
			}
			if asJSON {
				return writeJSON(g.stdout, run)
			}
			printGCRun(g.stdout, &run, items)
			if run.State != gc.StateSucceeded {
				return fmt.Errorf("collection run %d failed: %s", run.ID, run.Error)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	addServerFlag(fl, &server)
	fl.BoolVar(&dryRun, "dry-run", false, "print what a run would delete and free, delete nothing")
	fl.BoolVar(&skipRetention, "skip-retention", false, "collect without applying the retention policies")
	fl.BoolVar(&asJSON, "json", false, "print the run with its full report as JSON")
	fl.BoolVar(&noWait, "no-wait", false, "queue the run and return its id")
	fl.IntVar(&items, "items", 50, "how many deleted objects to list (0: none)")
	return cmd
}

// printGCRun prints a finished run's summary.
func printGCRun(w io.Writer, r *gc.Run, items int) {
	verb, tagVerb := "freed", "deleted"
	if r.DryRun {
		verb, tagVerb = "would free", "would delete"
	}
	fmt.Fprintf(w, "collection run %d (%s): %s\n", r.ID, r.Trigger, r.State)
	if r.Report == nil {
		return
	}
	if rt := r.Report.Retention; rt != nil {
		fmt.Fprintf(w, "retention %s %d tag(s), kept %d a rule selected\n", tagVerb, len(rt.Deleted), len(rt.Protected))
		for _, d := range rt.Deleted {
			fmt.Fprintf(w, "  delete %s:%s  %s  (%s)\n", d.Repository, d.Tag, d.Digest, d.Reason)
		}
		for _, d := range rt.Protected {
			fmt.Fprintf(w, "  keep   %s:%s  (%s)\n", d.Repository, d.Tag, d.Reason)
		}
		for _, d := range rt.Skipped {
			fmt.Fprintf(w, "  skip   %s:%s  (%s)\n", d.Repository, d.Tag, d.Reason)
		}
	}
	col := r.Report.Collection
	if col == nil {
		return
	}
	fmt.Fprintf(w, "scanned %d repositories, %d manifests, %d blobs (%s)\n", col.Repositories, col.Manifests, col.Blobs, humanBytes(col.BlobBytes))
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range col.Deleted {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range kinds {
		fmt.Fprintf(w, "  %s %d %s(s)\n", tagVerb, col.Deleted[k], k)
	}
	fmt.Fprintf(w, "%s %s in %s", verb, humanBytes(col.FreedBytes), col.Duration.Round(time.Millisecond))
	if col.Protected > 0 {
		fmt.Fprintf(w, "; %d object(s) kept because a write referenced them during the run", col.Protected)
	}
	fmt.Fprintln(w)
	for i, it := range col.Items {
		if i >= items {
			fmt.Fprintf(w, "  ... %d more (--json lists them)\n", len(col.Items)-i)
			break
		}
		name := it.Digest
		if it.Name != "" {
			name = it.Name
		}
		where := it.Repository
		if it.Subject != "" {
			where += " (referrer of " + it.Subject + ")"
		}
		fmt.Fprintf(w, "  %-8s %s %s %s\n", it.Kind, where, name, humanBytes(it.Size))
	}
}
