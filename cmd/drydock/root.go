package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// globals holds the flags every command shares.
type globals struct {
	logFormat string
	logLevel  string
	stdout    io.Writer
	stderr    io.Writer
}

// exitError carries an exit status other than 1 out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	cmd := newRootCmd(g)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(g.stderr, "drydock: %v\n", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "drydock",
		Short: "Self-hosted container-image supply-chain guard",
		Long: `drydock keeps container images in its own OCI registry, inspects them for
OS-package vulnerabilities, repairs them by installing the distribution's fixed
packages as one new layer, and lets only images that passed inspection out of
quarantine/ into live/.

Everything runs from this one binary: "drydock serve" starts the registry,
the other commands talk to it or work on images directly.`,
		Example: `  # start the registry on 127.0.0.1:5000 with data in the per-user data dir
  drydock serve

  # import an image from Docker Hub into quarantine/nginx:1.27.1
  drydock import nginx:1.27.1

  # import an OCI layout directory under another name
  drydock import oci:./build/layout:v1 --as myapp:v1

  # list what the server holds
  drydock images`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.logFormat, "log-format", envOr("DRYDOCK_LOG_FORMAT", "auto"), "log format: auto (text on a terminal, JSON otherwise), text or json [$DRYDOCK_LOG_FORMAT]")
	pf.StringVar(&g.logLevel, "log-level", envOr("DRYDOCK_LOG_LEVEL", "info"), "log level: debug, info, warn or error [$DRYDOCK_LOG_LEVEL]")

	root.AddCommand(
		newServeCmd(g),
		newVersionCmd(g),
		newImportCmd(g), newImagesCmd(g),
		newDBCmd(g),
		newScanCmd(g),
		newPatchCmd(g),
		newWorkflowCmd(g),
		newAuditCmd(g),
		newPolicyCmd(g),
		newVerdictCmd(g), newPromoteCmd(g), newRescanCmd(g),
		newVerifyCmd(g),
		newUserCmd(g), newTokenCmd(g),
		newLoginCmd(g), newLogoutCmd(g),
		newKubeCmd(g), newRolloutCmd(g),
		newMigrateCmd(g), newStoreCmd(g),
		newGCCmd(g),
		newQuotaCmd(g),
	)
	return root
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// logger builds the process logger from --log-format and --log-level.
func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := g.logFormat
	if format == "auto" {
		format = "json"
		if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	default:
		return nil, fmt.Errorf("invalid --log-format %q: want auto, text or json", g.logFormat)
	}
}

// isTerminal reports whether w is an interactive terminal (for progress bars).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
