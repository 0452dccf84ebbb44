package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
)

// rolesHelp explains roles and namespaces; user and token help share it.
const rolesHelp = `Roles and namespaces. A role is given on a namespace, the first path
component of a repository (quarantine, live, or any other top-level name),
as ROLE:NAMESPACE; ROLE alone means ROLE in every namespace (ROLE:*).
  pull     read manifests, blobs, tags and referrers
  push     upload blobs, push and delete manifests and tags
  promote  promote a digest that passed the gate from quarantine/ to live/
  admin    everything, everywhere (always global: just "admin")
Roles do not imply each other: a pusher that also reads needs
"--role push:quarantine --role pull:quarantine". A role flag may list
several, separated by commas. Changes apply to the next request, also
for clients holding a bearer token.`

// authFlags are the flags every user and token command shares.
type authFlags struct {
	stateFlags
}

// authSession is the auth store and the audit log of a server, opened for
// a user or token command: SQLite files in its data directory, or its
// PostgreSQL database, which the running server shares.
type authSession struct {
	store      *auth.Store
	audits     *audit.Log
	closeAudit func() error
	actor      string
}

func openAuthSession(ctx context.Context, f *stateFlags) (*authSession, error) {
	o, _, err := f.opener()
	if err != nil {
		return nil, err
	}
	st, err := auth.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	l, closeAudit, err := audit.Open(ctx, o)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &authSession{store: st, audits: l, closeAudit: closeAudit, actor: "cli:" + osUserName()}, nil
}

func (s *authSession) Close() {
	s.closeAudit()
	s.store.Close()
}

// change opens the auth session of the data directory, applies fn to its
// store and records the change fn reports (reference and audit detail) in
// the audit log.
func (f *authFlags) change(ctx context.Context, action audit.Action, fn func(*auth.Store) (ref string, detail map[string]any, err error)) error {
	s, err := openAuthSession(ctx, &f.stateFlags)
	if err != nil {
		return err
	}
	defer s.Close()
	ref, detail, err := fn(s.store)
	if err != nil {
		return err
	}
	return s.record(ctx, action, ref, detail)
}

// changeUser is change for user name, recorded with detail.
func (f *authFlags) changeUser(ctx context.Context, name string, detail map[string]any, fn func(*auth.Store) error) error {
	return f.change(ctx, audit.ActionUserChange, func(st *auth.Store) (string, map[string]any, error) {
		return name, detail, fn(st)
	})
}

// record appends a change to the audit log. Detail must never hold a
// password or token secret.
func (s *authSession) record(ctx context.Context, action audit.Action, ref string, detail map[string]any) error {
	d, err := audit.Detail(detail)
	if err != nil {
		return err
	}
	if _, err := s.audits.Record(context.WithoutCancel(ctx), audit.Entry{Actor: s.actor, Action: action,
		Reference: ref, Outcome: audit.OutcomeOK, Detail: d}); err != nil {
		return fmt.Errorf("%s %q was changed, but recording it in the audit log failed: %w", strings.TrimSuffix(string(action), "_change"), ref, err)
	}
	return nil
}

// openExistingStore opens the auth store of a server for reading; it must
// exist (a server ran there, or a user or token was added).
func openExistingStore(ctx context.Context, f *stateFlags) (*auth.Store, error) {
	o, err := f.existingOpener(auth.Component, "auth store", `"drydock serve", "drydock user add" or "drydock token create"`)
	if err != nil {
		return nil, err
	}
	return auth.Open(ctx, o)
}

// osUserName is who runs the CLI, for the audit log.
func osUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "unknown"
}

// parseRoles reads --role flags; at least one is needed.
func parseRoles(roles []string) (auth.Grants, error) {
	g, err := auth.ParseGrants(roles)
	if err != nil {
		return nil, fmt.Errorf("--role: %w", err)
	}
	if len(g) == 0 {
		return nil, errors.New("give at least one --role ROLE[:NAMESPACE] (pull, push, promote, metrics, admin; e.g. --role pull:live)")
	}
	return g, nil
}

// readPassword reads a password from stdin (first line, at most 1 KiB) or,
// when fromStdin is false, generates one.
func readPassword(cmd *cobra.Command, fromStdin bool) (pw string, generated bool, err error) {
	if !fromStdin {
		// 26 base32 characters: 130 random bits.
		return rand.Text(), true, nil
	}
	if pw, err = firstLine(cmd.InOrStdin(), 1024); err != nil {
		return "", false, fmt.Errorf("read password from stdin: %w", err)
	}
	if pw == "" {
		return "", false, errors.New("--password-stdin: no password on stdin")
	}
	return pw, false, nil
}

func newUserCmd(g *globals) *cobra.Command {
	f := &authFlags{}
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the registry's users and their roles",
		Long: `User manages the people (and scripts) that log in to the registry with a
user name and password: docker login, podman login, skopeo, crane. They live
in DATA/auth/auth.db, which the running server reads on every request, so
changes apply at once. Each change is recorded in the audit log (never the
password). For CI jobs and clusters prefer API tokens ("drydock token").

` + rolesHelp,
		Example: `  # a developer who pushes to quarantine/ and reads it back; prints a generated password once
  drydock user add alice --role push:quarantine --role pull:quarantine

  # a release manager who promotes to live/, with a chosen password
  printf '%s\n' "$PASSWORD" | drydock user add rita --role promote:live,pull --password-stdin

  drydock user list
  drydock user roles alice --role pull:live     # replaces alice's roles
  drydock user disable alice                    # and her tokens stop working
  drydock user passwd alice --password-stdin`,
	}
	f.register(cmd)
	cmd.AddCommand(newUserAddCmd(g, f), newUserListCmd(g, f), newUserPasswdCmd(g, f), newUserRolesCmd(g, f),
		newUserEnableCmd(g, f, "disable", true), newUserEnableCmd(g, f, "enable", false), newUserDeleteCmd(g, f))
	return cmd
}

func newUserAddCmd(g *globals, f *authFlags) *cobra.Command {
	var roles []string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "add NAME --role ROLE[:NAMESPACE]...",
		Short: "Add a user",
		Long: `Add adds a user with the given roles. Without --password-stdin it generates
a random password and prints it, alone, on stdout, this once (it cannot be
shown again: set a new one with "drydock user passwd"). Names are 1 to 64
lowercase letters, digits, '.', '_' or '-'; passwords 8 to 72 bytes.

` + rolesHelp,
		Example: `  drydock user add alice --role push:quarantine --role pull:quarantine
  drydock user add ops --role admin --password-stdin < password.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			grants, err := parseRoles(roles)
			if err != nil {
				return err
			}
			pw, generated, err := readPassword(cmd, stdin)
			if err != nil {
				return err
			}
			if err := f.changeUser(cmd.Context(), args[0], map[string]any{"op": "add", "roles": grants.Strings()}, func(st *auth.Store) error {
				return st.AddUser(cmd.Context(), args[0], pw, grants)
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "added user %q with roles %s\n", args[0], grants)
			if generated {
				fmt.Fprintln(g.stderr, "its generated password follows; it is shown only this once:")
				fmt.Fprintln(g.stdout, pw)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&roles, "role", nil, "a role ROLE[:NAMESPACE] (repeatable, or comma-separated)")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of stdin instead of generating one")
	return cmd
}

func newUserListCmd(g *globals, f *authFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users with their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openExistingStore(cmd.Context(), &f.stateFlags)
			if err != nil {
				return err
			}
			defer st.Close()
			users, err := st.Users(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, users)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLES\tSTATUS\tCREATED\tUPDATED")
			for _, u := range users {
				status := "enabled"
				if u.Disabled {
					status = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Grants, status, cliTime(u.CreatedAt), cliTime(u.UpdatedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newUserPasswdCmd(g *globals, f *authFlags) *cobra.Command {
	var stdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password",
		Long: `Passwd sets a new password: read from stdin with --password-stdin, else
generated and printed, alone, on stdout this once. The old password stops
working at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, generated, err := readPassword(cmd, stdin)
			if err != nil {
				return err
			}
			if err := f.changeUser(cmd.Context(), args[0], map[string]any{"op": "passwd"}, func(st *auth.Store) error {
				return st.SetPassword(cmd.Context(), args[0], pw)
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "set the password of user %q\n", args[0])
			if generated {
				fmt.Fprintln(g.stderr, "the generated password follows; it is shown only this once:")
				fmt.Fprintln(g.stdout, pw)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of stdin instead of generating one")
	return cmd
}

func newUserRolesCmd(g *globals, f *authFlags) *cobra.Command {
	var roles []string
	cmd := &cobra.Command{
		Use:   "roles NAME --role ROLE[:NAMESPACE]...",
		Short: "Replace a user's roles",
		Long: `Roles replaces all of a user's roles with the ones given. Tokens the user
owns are limited to what the user has, so they lose what the user loses.

` + rolesHelp,
		Example: `  drydock user roles alice --role push:quarantine,pull:quarantine --role pull:live`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			grants, err := parseRoles(roles)
			if err != nil {
				return err
			}
			if err := f.changeUser(cmd.Context(), args[0], map[string]any{"op": "roles", "roles": grants.Strings()}, func(st *auth.Store) error {
				return st.SetGrants(cmd.Context(), args[0], grants)
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "user %q now has roles %s\n", args[0], grants)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&roles, "role", nil, "a role ROLE[:NAMESPACE] (repeatable, or comma-separated)")
	return cmd
}

func newUserEnableCmd(g *globals, f *authFlags, op string, disable bool) *cobra.Command {
	short := "Enable a disabled user again"
	if disable {
		short = "Disable a user (and the tokens it owns) without deleting it"
	}
	return &cobra.Command{
		Use:   op + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.changeUser(cmd.Context(), args[0], map[string]any{"op": op}, func(st *auth.Store) error {
				return st.DisableUser(cmd.Context(), args[0], disable)
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%sd user %q\n", op, args[0])
			return nil
		},
	}
}

func newUserDeleteCmd(g *globals, f *authFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and revoke the tokens it owns",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.changeUser(cmd.Context(), args[0], map[string]any{"op": "delete"}, func(st *auth.Store) error {
				return st.DeleteUser(cmd.Context(), args[0])
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deleted user %q and revoked the tokens it owned\n", args[0])
			return nil
		},
	}
}

// cliTime formats a time for tables ("-" for none).
func cliTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
