package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/audit"
)

type auditFlags struct {
	stateFlags
	json   bool
	follow bool
	from   int64
	anchor string
	server string
}

func newAuditCmd(g *globals) *cobra.Command {
	f := &auditFlags{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the tamper-evident audit log",
		Long: `Audit prints drydock's audit log: every push, refused write to live/, login
failure (and, as the gate lands, import, scan, verdict and promotion), with
who, when, which repository and digest, and the outcome. The log lives in
DATA/audit/audit.db (or the PostgreSQL database of --config); the server
appends to it, and nothing in drydock ever
changes or deletes an entry (the database refuses UPDATE and DELETE).

Audit reads a server's log through its API (GET /api/v1/audit, admin
only) when given --server, or when $DRYDOCK_SERVER is set or "drydock
login" remembered a server and neither --data, --config, $DRYDOCK_DATA nor
$DRYDOCK_CONFIG point at a local one; otherwise it reads the local
database. --follow then asks the server for new entries every second.
"audit verify" always reads the database itself.

Each entry carries the SHA-256 of its content and of the entry before it,
so "drydock audit verify" detects an entry edited, deleted, inserted or
reordered behind drydock's back. Cutting off the newest entries is only
detected against a head recorded earlier: keep the head "verify" prints
(SEQ:HASH) somewhere else and pass it back with --anchor.`,
		Example: `  drydock audit                    # the whole log, one line per entry
  drydock audit --json --from 100  # JSON lines from entry 100 on
  drydock audit --follow           # keep printing new entries
  drydock audit --server https://drydock.example.com --from 500  # a server's log, over its API
  drydock audit verify             # check the hash chain
  drydock audit verify --anchor 1234:5f0c...  # and that entry 1234 is still there unchanged`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			write := func(e *audit.Entry) error { return audit.WriteText(g.stdout, e) }
			if f.json {
				write = func(e *audit.Entry) error { return audit.WriteJSON(g.stdout, e) }
			}
			remote, err := auditRemote(cmd, f.server)
			if err != nil {
				return err
			}
			if remote {
				return auditFromServer(cmd.Context(), f.server, f.from, f.follow, write)
			}
			l, closeLog, err := openAudit(cmd.Context(), &f.stateFlags)
			if err != nil {
				return err
			}
			defer closeLog()
			if f.follow {
				return l.Follow(cmd.Context(), f.from, write)
			}
			return l.Scan(cmd.Context(), f.from, write)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON lines (with the hashes)")
	cmd.Flags().BoolVarP(&f.follow, "follow", "f", false, "keep printing entries as they are recorded")
	cmd.Flags().Int64Var(&f.from, "from", 1, "first entry (sequence number) to print")
	addServerFlag(cmd.Flags(), &f.server)

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain",
		Long: `Verify recomputes every entry's hash and its link to the one before. It
prints the number of entries and the head (SEQ:HASH) when the chain is
intact, and otherwise the first broken entry and why (hash_mismatch: the
entry was edited; prev_mismatch or seq_gap: entries were deleted or
inserted), exiting with status 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, closeLog, err := openAudit(cmd.Context(), &f.stateFlags)
			if err != nil {
				return err
			}
			defer closeLog()
			var res *audit.VerifyResult
			if f.anchor != "" {
				a, err := audit.ParseAnchor(f.anchor)
				if err != nil {
					return fmt.Errorf("--anchor: %w", err)
				}
				res, err = l.VerifyFrom(cmd.Context(), a)
				if err != nil {
					return err
				}
			} else if res, err = l.Verify(cmd.Context()); err != nil {
				return err
			}
			if f.json {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			}
			if !res.OK() {
				return &exitError{code: 1, err: fmt.Errorf("audit log TAMPERED: entry %d: %s (%d entries intact before it)", res.Broken.Seq, res.Broken, res.Entries)}
			}
			if !f.json {
				fmt.Fprintf(g.stdout, "audit log intact: %d entries, head %s\n", res.Entries, res.Head)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&f.anchor, "anchor", "", "a head printed by an earlier verify (SEQ:HASH) that must still be in the chain")
	verify.Flags().BoolVar(&f.json, "json", false, "print the result as JSON")
	cmd.AddCommand(verify)
	return cmd
}

// openAudit opens the audit log of a server; it must exist (the server
// has run).
func openAudit(ctx context.Context, f *stateFlags) (*audit.Log, func() error, error) {
	o, err := f.existingOpener(audit.Component, "audit log", `"drydock serve"`)
	if err != nil {
		return nil, nil, err
	}
	return audit.Open(ctx, o)
}
