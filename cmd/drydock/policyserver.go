package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gatekeeper"
)

// maxPolicyFile bounds the file "policy apply" sends.
const maxPolicyFile = 1 << 20

// newPolicyServerCmds are the policy commands that talk to a server:
// show and apply, through GET and PUT /api/v1/policy.
func newPolicyServerCmds(g *globals) []*cobra.Command {
	var (
		server  string
		asJSON  bool
		ifMatch string
	)
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the server's policy in effect",
		Long: `Show prints the policy the server's gate decides with: the file gate.policy
names, or the policy kept in its database (the built-in one until edited).
--json adds its sha256 (for "policy apply --if-match"), its source and
whether it can be replaced.`,
		Example: `  drydock policy show > policy.yaml
  drydock policy show --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var v gatekeeper.PolicyView
			if err := c.do(cmd.Context(), "GET", "/api/v1/policy", nil, &v); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, v)
			}
			_, err = io.WriteString(g.stdout, v.Text)
			return err
		},
	}
	addServerFlag(show.Flags(), &server)
	show.Flags().BoolVar(&asJSON, "json", false, "print the policy with its sha256 and source as JSON")

	apply := &cobra.Command{
		Use:   "apply FILE",
		Short: "Replace the server's policy (admin; audited; the next verdicts use it)",
		Long: `Apply sends FILE (- for stdin) to the server, which validates it and, when
valid, makes it the policy of the next verdicts on every replica. It takes
the admin role, is audited with the old and new sha256, and is refused
when the server's policy is a file (gate.policy): edit that file instead.
A policy with problems is refused with every problem, by line and field.
--if-match SHA256 (from "policy show --json") refuses the change if
someone changed the policy since.`,
		Example: `  drydock policy show > policy.yaml && $EDITOR policy.yaml && drydock policy apply policy.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			text, err := io.ReadAll(io.LimitReader(in, maxPolicyFile+1))
			if err != nil {
				return fmt.Errorf("reading %s: %w", args[0], err)
			}
			if len(text) > maxPolicyFile {
				return fmt.Errorf("%s: over %d bytes", args[0], maxPolicyFile)
			}
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var ch gatekeeper.PolicyChange
			err = c.do(cmd.Context(), "PUT", "/api/v1/policy", api.PolicyRequest{Policy: string(text), IfMatch: ifMatch}, &ch)
			var ae *apiError
			if errors.As(err, &ae) {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err != nil {
				return err
			}
			if !ch.Changed {
				fmt.Fprintf(g.stdout, "policy unchanged (sha256 %s)\n", ch.SHA256)
				return nil
			}
			fmt.Fprintf(g.stdout, "policy replaced: sha256 %s (was %s)\n", ch.SHA256, ch.Previous)
			return nil
		},
	}
	addServerFlag(apply.Flags(), &server)
	apply.Flags().StringVar(&ifMatch, "if-match", "", "the sha256 the edit started from: refuse if the policy changed since")
	return []*cobra.Command{show, apply}
}
