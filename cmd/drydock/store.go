package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/state"
)

func newStoreCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Move an installation's state to other storage",
	}
	cmd.AddCommand(newStoreCopyCmd(g))
	return cmd
}

func newStoreCopyCmd(g *globals) *cobra.Command {
	var f stateFlags
	var to string
	var noContent, asJSON bool
	cmd := &cobra.Command{
		Use:   "copy --to CONFIG",
		Short: "Copy an installation's whole state to the database and storage of another config",
		Long: `Copy moves an installation — by default the embedded one (SQLite files and
blobs in the data directory) — to the database and storage another config
file names, typically PostgreSQL and S3 for running replicas:

  blobs, tags and manifests    every blob checked against its digest
  verdicts, scans, settings    row for row
  users, tokens, signing key   tokens keep working, bearer tokens stay valid
  the audit log                entries as stored: the chain verifies on the copy
  jobs waiting to run          scans queued at the time of the copy run there

Stop the server first: the source must not change during the copy. The
target must be empty (a new database and bucket); schema migrations are
applied to it. After copying, every row, the audit chain and its head,
the queued jobs and every registry file are verified on the target, and
blobs are read back from it and hashed (--no-verify-content compares
sizes only). Then point the servers at the target config.`,
		Example: `  # the embedded install in /var/lib/drydock to PostgreSQL + S3
  drydock store copy --data /var/lib/drydock --to /etc/drydock/replicas.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return fmt.Errorf("--to: the config file of the target is required")
			}
			src, err := f.load()
			if err != nil {
				return err
			}
			dst, err := config.Load(to, nil)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if err := dst.Validate(); err != nil {
				return fmt.Errorf("--to %s: invalid configuration:\n%w", to, err)
			}
			if sameState(src, dst) {
				return fmt.Errorf("--to %s names the source's own database and storage", to)
			}
			ctx := cmd.Context()
			from, err := state.Open(ctx, src)
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			defer from.Close()
			target, err := state.Open(ctx, dst)
			if err != nil {
				return fmt.Errorf("target: %w", err)
			}
			defer target.Close()
			fmt.Fprintf(g.stderr, "copying %s\n     to %s\n", from, target)
			rep, err := state.Copy(ctx, from, target, state.CopyOptions{VerifyContent: !noContent,
				Progress: func(s string) { fmt.Fprintln(g.stderr, s) }})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, rep)
			}
			rows := 0
			for _, n := range rep.Rows {
				rows += n
			}
			fmt.Fprintf(g.stdout, "copied and verified: %d rows (%d audit entries, head %s), %d queued jobs, %d blobs (%d MB), %d registry index files\n",
				rows, rep.Rows["audit_log"], rep.AuditHead, rep.Jobs, rep.Registry.Blobs+rep.Registry.Skipped, rep.Registry.Bytes>>20, rep.Registry.Files)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "config file of the target (its database and storage sections)")
	cmd.Flags().BoolVar(&noContent, "no-verify-content", false, "compare blob sizes instead of reading every blob back from the target")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// sameState reports whether two configs name the same database and storage.
func sameState(a, b config.Config) bool {
	if a.Database.Effective() != b.Database.Effective() || a.Storage.Driver != b.Storage.Driver {
		return false
	}
	if a.Database.DSN != b.Database.DSN {
		return false
	}
	if a.Database.DSN == "" && !sameDir(a.Data, b.Data) {
		return false
	}
	return fmt.Sprint(a.Storage.Parameters) == fmt.Sprint(b.Storage.Parameters)
}

func sameDir(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return os.SameFile(fa, fb)
}
