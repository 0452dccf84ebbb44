package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/workflow"
)

// wfFlags are the flags the workflow commands share.
type wfFlags struct {
	server string
	name   string
	asJSON bool
}

func (f *wfFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	addServerFlag(fl, &f.server)
	fl.StringVarP(&f.name, "name", "n", workflow.DefaultName, "workflow name (several workflows may exist)")
	fl.BoolVar(&f.asJSON, "json", false, "print the server's answer as JSON")
}

func (f *wfFlags) path(suffix string) string {
	return "/api/v1/workflows/" + url.PathEscape(f.name) + suffix
}

func newWorkflowCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workflow",
		Short: "Continuous patching: scan and patch images on a schedule, in the server",
		Long: `A workflow makes the drydock server scan the images it names and patch
those with fixable vulnerabilities, by itself: on a schedule (--schedule Nd),
when a vulnerability database update brings new fixable findings for them,
and when their release's security suite publishes updates for their
packages (which the database may not know yet: the feeds lag the archive).
Each patch goes to quarantine/NAME:NEWTAG and through the gate like any
image; with autoPromote in the policy it reaches live/ by itself.

The config file is ACR's continuous-patching file, schema v1:

  {
    "version": "v1",
    "tag-convention": "incremental",
    "repositories": [
      {"repository": "nginx", "tags": ["1.27.1"], "enabled": true}
    ]
  }

  version          "v1" (required)
  tag-convention   "incremental" (default): TAG-1, TAG-2 ... TAG-999, each
                   patch a new tag; "floating": TAG-patched, moved to the
                   newest patch
  repositories     the images: "repository" is NAME (each tag read from
                   live/NAME once promoted, else quarantine/NAME), or
                   live/NAME or quarantine/NAME; "tags" lists original tags
                   (matched literally), or ["*"] for every original tag;
                   "enabled" (default true)

Tags ending in -1 ... -999 or -patched are patch outputs, never inputs. The
decision is taken on the newest patch of a tag (or the tag itself when it has
none); a patch is always built from the original tag, and one equal to the
newest patch (the same digest) writes no new tag.

The schedule is ACR's: Nd (1d ... 30d) runs at the time of day the command
ran, on days 1, 1+N, 1+2N ... of every month (UTC), starting again on the
1st; 7d runs on the 1st, 8th, 15th, 22nd and 29th.

Every run is recorded: a trigger task, then per image a scan task and, when
needed, a patch task, with states, times, results and logs (list-runs,
show-run). Needs push on quarantine/ to change workflows, pull to read them.`,
		Example: `  drydock workflow create --config continuouspatching.json --schedule 1d --dry-run
  drydock workflow create --config continuouspatching.json --schedule 1d --run-immediately
  drydock workflow show
  drydock workflow list-runs --status failed
  drydock workflow show-run r1a2b3c4d --follow
  drydock workflow update --schedule 7d
  drydock workflow cancel-run
  drydock workflow delete -y`,
	}
	cmd.AddCommand(newWorkflowCreateCmd(g), newWorkflowUpdateCmd(g), newWorkflowDeleteCmd(g), newWorkflowShowCmd(g),
		newWorkflowListCmd(g), newWorkflowRunCmd(g), newWorkflowListRunsCmd(g), newWorkflowShowRunCmd(g), newWorkflowCancelCmd(g))
	return cmd
}

// dryRunTimeout bounds a dry run, which scans every image the config
// matches (up to 100) and asks the archive about each.
const dryRunTimeout = 30 * time.Minute

// readConfigArg reads --config with ACR's file checks; the server
// validates the content.
func readConfigArg(path string) (string, error) {
	b, err := workflow.ReadConfigFile(path)
	if err != nil {
		return "", fmt.Errorf("--config: %w", err)
	}
	return string(b), nil
}

func newWorkflowCreateCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	var configFile, schedule string
	var dryRun, runNow, security, rollout bool
	cmd := &cobra.Command{
		Use:   "create --config FILE --schedule Nd [--rollout] [--dry-run | --run-immediately]",
		Short: "Create a workflow (or, with --dry-run, show what it would do)",
		Long: `Create checks the schedule and the config, resolves the config's tags in the
registry (more than 100 images is refused) and creates the workflow; its
first scheduled run is printed (UTC).

--dry-run creates nothing and writes nothing: for each image it prints
whether a run would patch it, and the tag it would write, or why not (end of
life, nothing fixable, unsupported OS, tag not found). --run-immediately
queues a run now; the schedule is unchanged.

--security-suite=false patches only on fixable findings of the
vulnerability database, as ACR does; by default an update the release's
security suite publishes for an installed package counts too.

--rollout: once the gate promotes a patch tag this workflow wrote into
live/, the server runs "drydock rollout" for its repository with its own
cluster credentials (kube.kubeconfig): the workloads running that image move
to the patched digest, and are rolled back if the rollout fails.`,
		Example: `  drydock workflow create --config continuouspatching.json --schedule 1d --dry-run
  drydock workflow create --config continuouspatching.json --schedule 1d --rollout
  drydock workflow create --config continuouspatching.json --schedule 1d --run-immediately
  drydock workflow create --name weekly --config base-images.json --schedule 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dryRun && runNow {
				return errors.New("--dry-run and --run-immediately exclude each other")
			}
			text, err := readConfigArg(configFile)
			if err != nil {
				return err
			}
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			if dryRun {
				c.http.Timeout = dryRunTimeout
			}
			req := workflow.CreateRequest{Name: f.name, Config: text, Schedule: schedule, Rollout: rollout, DryRun: dryRun, RunImmediately: runNow}
			if cmd.Flags().Changed("security-suite") {
				req.SecuritySuite = &security
			}
			var res workflow.Result
			if err := c.do(cmd.Context(), "POST", "/api/v1/workflows", req, &res); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(g.stdout, res)
			}
			printResult(g.stdout, &res, "created")
			return nil
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&configFile, "config", "", "the workflow's config file (ACR's schema v1)")
	fl.StringVar(&schedule, "schedule", "", "how often it runs: Nd, 1d to 30d (day-of-month arithmetic, UTC)")
	fl.BoolVar(&dryRun, "dry-run", false, "show per image what a run would do, create nothing")
	fl.BoolVar(&runNow, "run-immediately", false, "queue a run now as well")
	fl.BoolVar(&security, "security-suite", true, "also patch when the release's security suite has updates for installed packages the database does not know yet")
	fl.BoolVar(&rollout, "rollout", false, "roll promoted patch tags out to the workloads that run their image (needs kube.* on the server)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("schedule")
	return cmd
}

func newWorkflowUpdateCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	var configFile, schedule string
	var dryRun, runNow, security, rollout bool
	cmd := &cobra.Command{
		Use:   "update [--config FILE] [--schedule Nd] [--security-suite=BOOL] [--rollout=BOOL] [--dry-run | --run-immediately]",
		Short: "Change a workflow's config, schedule or signals",
		Long: `Update changes a workflow. A new --schedule takes the time of day again, as
create does; without it the schedule is kept. --dry-run shows what a run
with the new (or, without --config, the stored) config would do and changes
nothing.`,
		Example: `  drydock workflow update --schedule 7d
  drydock workflow update --config continuouspatching.json --dry-run
  drydock workflow update --security-suite=false
  drydock workflow update --rollout`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dryRun && runNow {
				return errors.New("--dry-run and --run-immediately exclude each other")
			}
			req := workflow.UpdateRequest{DryRun: dryRun, RunImmediately: runNow}
			if configFile != "" {
				text, err := readConfigArg(configFile)
				if err != nil {
					return err
				}
				req.Config = &text
			}
			if cmd.Flags().Changed("schedule") {
				req.Schedule = &schedule
			}
			if cmd.Flags().Changed("security-suite") {
				req.SecuritySuite = &security
			}
			if cmd.Flags().Changed("rollout") {
				req.Rollout = &rollout
			}
			if req.Config == nil && req.Schedule == nil && req.SecuritySuite == nil && req.Rollout == nil {
				return errors.New("say what to change: --config FILE, --schedule Nd, --security-suite=BOOL or --rollout=BOOL")
			}
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			if dryRun {
				c.http.Timeout = dryRunTimeout
			}
			var res workflow.Result
			if err := c.do(cmd.Context(), "PATCH", f.path(""), req, &res); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(g.stdout, res)
			}
			printResult(g.stdout, &res, "updated")
			return nil
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&configFile, "config", "", "a new config file")
	fl.StringVar(&schedule, "schedule", "", "a new schedule: Nd, 1d to 30d")
	fl.BoolVar(&dryRun, "dry-run", false, "show per image what a run would do, change nothing")
	fl.BoolVar(&runNow, "run-immediately", false, "queue a run now as well")
	fl.BoolVar(&security, "security-suite", true, "patch on the security suite's updates too (false: only on the database's fixable findings)")
	fl.BoolVar(&rollout, "rollout", false, "roll promoted patch tags out to the workloads that run their image (false: stop)")
	return cmd
}

func newWorkflowDeleteCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete [-y]",
		Short: "Cancel a workflow's runs and delete it with its run history",
		Long: `Delete cancels the workflow's queued and running runs (a tag being written
is written whole or not at all) and deletes the workflow and its run ledger.
Patched images stay in the registry. It asks first unless -y.`,
		Example: `  drydock workflow delete
  drydock workflow delete --name weekly -y`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			if !yes {
				var v workflow.View
				if err := c.do(cmd.Context(), "GET", f.path(""), nil, &v); err != nil {
					return err
				}
				if !confirm(g, cmd.InOrStdin(), fmt.Sprintf("Delete workflow %q (schedule %s), cancel its active runs and delete its run history?", v.Name, v.Schedule)) {
					return errors.New("not deleted")
				}
			}
			var out api.CanceledResponse
			if err := c.do(cmd.Context(), "DELETE", f.path(""), nil, &out); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(g.stdout, out)
			}
			fmt.Fprintf(g.stdout, "workflow %s deleted", f.name)
			if len(out.Canceled) > 0 {
				fmt.Fprintf(g.stdout, "; canceled runs: %s", strings.Join(out.Canceled, ", "))
			}
			fmt.Fprintln(g.stdout)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	return cmd
}

// confirm asks a yes/no question on the terminal; anything but y/yes is no.
func confirm(g *globals, in io.Reader, question string) bool {
	fmt.Fprintf(g.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

func newWorkflowShowCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a workflow: config, schedule, next runs (UTC), last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			var v workflow.View
			if err := c.do(cmd.Context(), "GET", f.path(""), nil, &v); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(g.stdout, v)
			}
			printView(g.stdout, &v)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newWorkflowListCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the workflows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			var out struct {
				Workflows []workflow.View `json:"workflows"`
			}
			if err := c.do(cmd.Context(), "GET", "/api/v1/workflows", nil, &out); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(g.stdout, out)
			}
			printWorkflowList(g.stdout, out.Workflows)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newWorkflowRunCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	var follow bool
	cmd := &cobra.Command{
		Use:   "run [--follow]",
		Short: "Queue a run of a workflow now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			var r workflow.Run
			if err := c.do(cmd.Context(), "POST", f.path("/runs"), struct{}{}, &r); err != nil {
				return err
			}
			if f.asJSON && !follow {
				return writeJSON(g.stdout, r)
			}
			fmt.Fprintf(g.stdout, "run %s queued\n", r.ID)
			if follow {
				return showRun(cmd.Context(), g, c, r.ID, true, f.asJSON)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print the run's log as it goes, until it ends")
	return cmd
}

func newWorkflowListRunsCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	var status, image string
	cmd := &cobra.Command{
		Use:   "list-runs [--status S] [--image NAME:TAG]",
		Short: "Show each image's latest scan and patch in the workflow's runs (ACR's columns)",
		Long: `List-runs shows, for each image of the workflow, its newest scan and patch in
the runs of the last N days (N from the schedule, as ACR's list does): scan
status, date and task, patch status, date and task, the last patched image,
and why a patch was skipped or failed. It reads the run ledger, never logs.

--status filters: queued, running, succeeded, failed, skipped, canceled.
"skipped" keeps images scanned and not patched; "succeeded" includes them.`,
		Example: `  drydock workflow list-runs
  drydock workflow list-runs --status failed
  drydock workflow list-runs --image nginx:1.27.1 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			q := url.Values{}
			if status != "" {
				q.Set("status", strings.ToLower(status))
			}
			if image != "" {
				q.Set("image", image)
			}
			var l workflow.StatusList
			if err := c.do(cmd.Context(), "GET", f.path("/images?"+q.Encode()), nil, &l); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(g.stdout, l)
			}
			printStatusList(g.stdout, &l)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only images in this state: queued, running, succeeded, failed, skipped, canceled")
	cmd.Flags().StringVar(&image, "image", "", "only this image: NAME:TAG")
	return cmd
}

func newWorkflowShowRunCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	var follow bool
	cmd := &cobra.Command{
		Use:   "show-run ID [--follow]",
		Short: "Show a run: its tasks, their results, and its log",
		Example: `  drydock workflow show-run r1a2b3c4d
  drydock workflow show-run r1a2b3c4d --follow`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			return showRun(cmd.Context(), g, c, args[0], follow, f.asJSON)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print the log as the run goes, until it ends")
	return cmd
}

// followPoll is how often --follow asks for new log lines.
const followPoll = time.Second

// showRun prints a run; with follow, prints its log as it grows and the
// tasks once it has ended.
func showRun(ctx context.Context, g *globals, c *apiClient, id string, follow, asJSON bool) error {
	path := "/api/v1/workflow-runs/" + url.PathEscape(id)
	var d workflow.RunDetail
	if err := c.do(ctx, "GET", path, nil, &d); err != nil {
		return err
	}
	if !follow || d.Run.State.Finished() {
		if asJSON {
			return writeJSON(g.stdout, d)
		}
		printRun(g.stdout, &d, true)
		return nil
	}
	var last int64
	for {
		for _, l := range d.Log {
			if !asJSON {
				printLogLine(g.stdout, l)
			}
			last = l.Seq
		}
		if d.Run.State.Finished() {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
		d = workflow.RunDetail{}
		if err := c.do(ctx, "GET", fmt.Sprintf("%s?after=%d", path, last), nil, &d); err != nil {
			return err
		}
	}
	if asJSON {
		if err := c.do(ctx, "GET", path, nil, &d); err != nil {
			return err
		}
		return writeJSON(g.stdout, d)
	}
	fmt.Fprintln(g.stdout)
	printRun(g.stdout, &d, false)
	if d.Run.State == workflow.StateFailed {
		return &exitError{code: 1, err: fmt.Errorf("run %s failed: %s", id, d.Run.Error)}
	}
	return nil
}

func newWorkflowCancelCmd(g *globals) *cobra.Command {
	f := &wfFlags{}
	cmd := &cobra.Command{
		Use:   "cancel-run [ID]",
		Short: "Cancel one run, or every queued and running run of the workflow",
		Long: `Cancel-run cancels the run ID, or without an ID every queued and running run
of the workflow. Tasks not finished end canceled; a tag being written when
the cancel arrives is written whole or not at all.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(f.server)
			if err != nil {
				return err
			}
			req := api.CancelRequest{}
			if len(args) == 1 {
				req.Run = args[0]
			}
			var out api.CanceledResponse
			if err := c.do(cmd.Context(), "POST", f.path("/cancel"), req, &out); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(g.stdout, out)
			}
			if len(out.Canceled) == 0 {
				fmt.Fprintln(g.stdout, "no run to cancel")
				return nil
			}
			fmt.Fprintf(g.stdout, "canceled: %s\n", strings.Join(out.Canceled, ", "))
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
