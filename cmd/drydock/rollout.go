package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/kube"
)

// apiTargets asks the server where images move (the server decides, from
// its registry and verdicts).
type apiTargets struct{ c *apiClient }

func (t apiTargets) Plan(ctx context.Context, req kube.PlanRequest) (*kube.Plan, error) {
	var p kube.Plan
	if err := t.c.do(ctx, "POST", "/api/v1/kube/rollout-plan", req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func newRolloutCmd(g *globals) *cobra.Command {
	var (
		server     string
		kf         kubeFlags
		req        kube.RolloutRequest
		asJSON     bool
		noRollback bool
	)
	cmd := &cobra.Command{
		Use:   "rollout REPOSITORY",
		Short: "Move the workloads that run a repository to its patched tag, by digest",
		Long: `Rollout finds the Deployments, StatefulSets, DaemonSets and CronJobs that run
any tag (or digest) of REPOSITORY from this drydock's live/ namespace, and
moves each to the newest patched tag of the tag it runs whose verdict passes
now (or to --to TAG), by digest: live/nginx:1.27.1 becomes
live/nginx@sha256:... of 1.27.1-1. Patched tags are TAG-N (N 1 to 999; the
highest N wins) and TAG-patched.

The change is a normal rolling update. Rollout waits for every workload, with
progress, until its rollout is done (as "kubectl rollout status" reads it), it
fails (progress deadline exceeded) or --timeout passes; then it rolls each
failed workload back to the images it replaced, unless the workload was changed
by someone else meanwhile (--no-rollback leaves it as it is). CronJobs take
the new image at their next run.

The server decides the targets (its registry and the gate's verdicts; the
promote role on live); the cluster is changed with your kubeconfig (or
in-cluster credentials). --dry-run sends every change as a server-side dry
run: the API server and its admission webhooks check it, nothing changes.
The outcome is recorded in the server's audit log.

Exit status: 0 when every workload rolled out (or there was nothing to move),
1 when any failed or was rolled back.`,
		Example: `  drydock rollout nginx --dry-run
  drydock rollout nginx --namespace team-a --timeout 10m
  drydock rollout live/nginx --to 1.27.1-2 --kubeconfig ~/.kube/prod`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Repository, req.NoRollback = args[0], noRollback
			if _, err := kube.LiveRepository(req.Repository); err != nil {
				return err
			}
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			client, err := kube.NewClient(kf.options())
			if err != nil {
				return err
			}
			start := time.Now()
			progress := func(p kube.Progress) {
				fmt.Fprintf(g.stderr, "%6.1fs  %s: %s\n", time.Since(start).Seconds(), p.Workload, p.Message)
			}
			res, err := kube.Rollout(cmd.Context(), client, apiTargets{c}, req, progress)
			if err != nil {
				return err
			}
			if !res.DryRun && len(res.Workloads) > 0 {
				if err := c.do(context.WithoutCancel(cmd.Context()), "POST", "/api/v1/kube/rollouts", res, nil); err != nil {
					fmt.Fprintf(g.stderr, "warning: the server did not record the rollout: %v\n", err)
				}
			}
			if asJSON {
				if err := writeJSON(g.stdout, res); err != nil {
					return err
				}
			} else if err := writeRollout(g.stdout, res); err != nil {
				return err
			}
			if res.Failed() {
				return &exitError{code: 1, err: errors.New("the rollout failed for some workloads")}
			}
			return nil
		},
	}
	addServerFlag(cmd.Flags(), &server)
	kf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&req.To, "to", "", "move to this tag instead of the newest passing patched tag")
	f.StringVarP(&req.Namespace, "namespace", "n", "", "only workloads in this namespace (default: all)")
	f.BoolVar(&req.DryRun, "dry-run", false, "check the changes with the API server (server-side dry run) and change nothing")
	f.DurationVar(&req.Timeout, "timeout", 5*time.Minute, "how long to wait for the rollouts before rolling back")
	f.BoolVar(&noRollback, "no-rollback", false, "leave a failed rollout as it is")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func writeRollout(w io.Writer, res *kube.RolloutResult) error {
	if len(res.Workloads) == 0 {
		fmt.Fprintf(w, "Nothing to move in %s.\n", res.Plan.Repository)
		for _, ip := range res.Plan.Images {
			if !ip.Moves() {
				fmt.Fprintf(w, "  %s: %s\n", ip.Image, ip.Reason)
			}
		}
		if len(res.Plan.Images) == 0 {
			fmt.Fprintf(w, "  no Deployment, StatefulSet, DaemonSet or CronJob runs it.\n")
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tSTATE\tCONTAINERS\tMESSAGE")
	for _, wl := range res.Workloads {
		var cs []string
		for _, c := range wl.Containers {
			cs = append(cs, fmt.Sprintf("%s -> %s", c.Name, c.ToTag))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", wl.String(), wl.State, strings.Join(cs, ","), wl.Message)
	}
	return tw.Flush()
}
