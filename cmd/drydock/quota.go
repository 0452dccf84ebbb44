package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gc"
)

func newQuotaCmd(g *globals) *cobra.Command {
	var server string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "List every repository's and namespace's storage usage and quota",
		Long: `quota prints the bytes each repository and namespace holds, dedupe-aware (a
blob counts once per repository and once per namespace, however many images
list it), with its quota from gc.quotas in the serve config. The usage is
exact after each collection (drydock gc); between collections, what is pushed
is added and nothing deleted is subtracted until the collection frees it.

An upload that would take a repository or namespace over its quota is
refused with 403 DENIED and the numbers (used, limit, requested), before its
bytes are sent when the client announces their size. Needs admin.`,
		Example: `  drydock quota
  drydock quota --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server)
			if err != nil {
				return err
			}
			var resp api.QuotasResponse
			if err := c.do(cmd.Context(), "GET", "/api/v1/quotas", nil, &resp); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, resp)
			}
			printQuotas(g.stdout, resp.Quotas)
			return nil
		},
	}
	fl := cmd.Flags()
	addServerFlag(fl, &server)
	fl.BoolVar(&asJSON, "json", false, "print the usage as JSON")
	return cmd
}

// printQuotas prints the usage table.
func printQuotas(w io.Writer, qs []gc.QuotaUsage) {
	if len(qs) == 0 {
		fmt.Fprintln(w, "no usage recorded yet (a collection computes it) and no quota configured")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tNAME\tUSED\tQUOTA\tUSE%")
	for _, q := range qs {
		limit, pct := "-", "-"
		if q.Limit > 0 {
			limit = humanBytes(q.Limit)
			pct = fmt.Sprintf("%.1f%%", 100*float64(q.Bytes)/float64(q.Limit))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", q.Scope, q.Name, humanBytes(q.Bytes), limit, pct)
	}
	_ = tw.Flush()
}
