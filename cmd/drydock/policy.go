package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/gate"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with gate policies",
		Long: `A gate policy (YAML, version v1) decides which scanned images may be promoted
from quarantine/ to live/: the highest severity allowed, fixable-only,
vendor statuses to ignore (e.g. will_not_fix, no-dsa), blocking end-of-life
releases, allowed import sources (regular expressions), the maximum scan
age, auto-promotion and the grace window before a rescan turns a pass into
a fail. See "drydock policy validate --help" for the format.

"policy show" and "policy apply" read and replace a server's policy
through its API.`,
	}
	var asJSON bool
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a policy file and list every problem with its field and line",
		Long: `Validate reads a policy file and reports every problem at once, each with the
field and line it is about; unknown fields are problems. The exit status is
0 for a valid policy and 1 otherwise.

Format:

  version: v1                  # required
  maxSeverity: HIGH            # required: UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL; findings above it fail
  fixableOnly: true            # count only findings with a fixed version
  ignoreStatuses: [will_not_fix, no_dsa]   # vendor statuses that do not count
  blockEndOfLife: true         # an end-of-life release fails (default true)
  allowedSources: ['^docker\.io/library/']  # import sources allowed (regexps); absent = any
  maxScanAge: 24h              # older scans are not promotable; 0 or absent = no limit
  autoPromote: false           # promote on pass or exempt
  graceWindow: 72h             # how long a pass -> fail flip waits after a rescan`,
		Example: `  drydock policy validate policy.yaml
  drydock policy validate policy.yaml --json   # problems as JSON, for editors and CI`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			probs, err := gate.ValidatePolicy(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if asJSON {
				type problem struct {
					Field   string `json:"field,omitempty"`
					Line    int    `json:"line,omitempty"`
					Message string `json:"message"`
				}
				out := struct {
					Valid    bool      `json:"valid"`
					Problems []problem `json:"problems"`
				}{Valid: len(probs) == 0, Problems: []problem{}}
				for _, p := range probs {
					out.Problems = append(out.Problems, problem{p.Field, p.Line, p.Message})
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else if len(probs) == 0 {
				fmt.Fprintf(g.stdout, "%s: valid policy\n", args[0])
			}
			if len(probs) > 0 {
				if !asJSON {
					for _, p := range probs {
						fmt.Fprintf(g.stdout, "%s: %s\n", args[0], p)
					}
				}
				noun := "problems"
				if len(probs) == 1 {
					noun = "problem"
				}
				return &exitError{code: 1, err: fmt.Errorf("%s: invalid policy, %d %s", args[0], len(probs), noun)}
			}
			return nil
		},
	}
	validate.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.AddCommand(validate)
	cmd.AddCommand(newPolicyServerCmds(g)...)
	return cmd
}
