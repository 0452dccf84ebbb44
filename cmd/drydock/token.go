package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
)

// maxExpiryDays bounds --expires Nd.
const maxExpiryDays = 100 * 366

// parseExpiry reads --expires: "never", N days ("90d"), a Go duration
// ("2160h"), a date ("2027-03-01", midnight UTC) or an RFC 3339 time. The
// zero time means never; anything else must be after now.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("invalid --expires %q: %s", s, why)
	}
	const want = "want Nd (e.g. 90d), a duration (2160h), a date (2027-03-01), an RFC 3339 time or never"
	var at time.Time
	switch {
	case s == "never":
		return time.Time{}, nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || strings.HasPrefix(s, "+") {
			return bad(want)
		}
		if n <= 0 || n > maxExpiryDays {
			return bad(fmt.Sprintf("days must be 1 to %d", maxExpiryDays))
		}
		at = now.AddDate(0, 0, n)
	default:
		if d, err := time.ParseDuration(s); err == nil {
			if d <= 0 {
				return bad("the duration must be positive")
			}
			at = now.Add(d)
		} else if t, err := time.Parse(time.DateOnly, s); err == nil {
			at = t
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			at = t
		} else {
			return bad(want)
		}
	}
	if !at.After(now) {
		return bad(fmt.Sprintf("%s is not in the future", at.UTC().Format(time.RFC3339)))
	}
	return at, nil
}

func newTokenCmd(g *globals) *cobra.Command {
	f := &authFlags{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API and robot tokens",
		Long: `Token manages API tokens: credentials for CI jobs, clusters and scripts,
used as the password of a registry login (any user name) or as
"Authorization: Bearer ddk_..." with curl. A token has its own roles and
an expiry. A robot token stands alone; a token created --user OWNER acts
for that user, can never do more than the user can at the time of the
request, and stops working when the user is disabled or deleted. Only a
hash of the secret is stored: it is printed once, at creation. Each change
is recorded in the audit log (never the secret).

` + rolesHelp,
		Example: `  # a cluster credential that can pull only from live/, for a year
  drydock token create cluster --role pull:live --expires 365d

  # a CI job pushing to quarantine/ on behalf of alice
  drydock token create ci --user alice --role push:quarantine,pull:quarantine

  drydock token list
  drydock token revoke ci`,
	}
	f.register(cmd)
	cmd.AddCommand(newTokenCreateCmd(g, f), newTokenListCmd(g, f), newTokenRevokeCmd(g, f))
	return cmd
}

func newTokenCreateCmd(g *globals, f *authFlags) *cobra.Command {
	var (
		roles   []string
		owner   string
		expires string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE[:NAMESPACE]... [--user OWNER] [--expires 90d]",
		Short: "Create a token and print its secret once",
		Long: `Create creates a token and prints its secret, alone, on stdout. It cannot
be shown again: store it right away (a CI secret, a Kubernetes pull
secret). Names are 1 to 64 lowercase letters, digits, '.', '_' or '-',
unique among tokens not revoked.

--expires takes a number of days (90d), a duration (2160h), a date
(2027-03-01, midnight UTC), an RFC 3339 time, or never; the default is 90d.

` + rolesHelp,
		Example: `  # a cluster credential that can pull only from live/
  drydock token create cluster --role pull:live --expires 365d

  # use it
  drydock token create ci --role push:quarantine,pull:quarantine > ci.token
  docker login HOST -u ci --password-stdin < ci.token
  curl -H "Authorization: Bearer $(cat ci.token)" https://HOST/v2/_catalog`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			grants, err := parseRoles(roles)
			if err != nil {
				return err
			}
			exp, err := parseExpiry(expires, time.Now())
			if err != nil {
				return err
			}
			var secret string
			var tok auth.Token
			if err := f.change(cmd.Context(), audit.ActionTokenChange, func(st *auth.Store) (string, map[string]any, error) {
				var err error
				secret, tok, err = st.CreateToken(cmd.Context(), auth.TokenSpec{Name: args[0], Owner: owner, Grants: grants, ExpiresAt: exp})
				return tok.Name, tokenDetail("create", tok), err
			}); err != nil {
				return err
			}
			kind := "robot token"
			if owner != "" {
				kind = fmt.Sprintf("token of user %q", owner)
			}
			fmt.Fprintf(g.stderr, "created %s %q (id %s, roles %s, expires %s).\n", kind, tok.Name, tok.ID, tok.Grants, expiryText(tok.ExpiresAt))
			fmt.Fprintf(g.stderr, "Its secret follows. It cannot be shown again: store it now. Use it as the password of a login:\n"+
				"  docker login HOST -u %s --password-stdin   (the secret on stdin)\n"+
				"or as an \"Authorization: Bearer\" header.\n", tok.Name)
			fmt.Fprintln(g.stdout, secret)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&roles, "role", nil, "a role ROLE[:NAMESPACE] (repeatable, or comma-separated)")
	cmd.Flags().StringVar(&owner, "user", "", "the user the token acts for (default: none, a robot token)")
	cmd.Flags().StringVar(&expires, "expires", "90d", "when the token expires: Nd, a duration, a date, an RFC 3339 time, or never")
	return cmd
}

// expiryText is an expiry for people: RFC 3339 or "never".
func expiryText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// tokenDetail is the audit detail of operation op on tok (never its secret).
func tokenDetail(op string, tok auth.Token) map[string]any {
	return map[string]any{"op": op, "id": tok.ID, "owner": tok.Owner, "roles": tok.Grants.Strings(), "expires": expiryText(tok.ExpiresAt)}
}

// tokenJSON is a token as "token list --json" prints it.
type tokenJSON struct {
	auth.Token
	Status string `json:"status"`
}

func newTokenListCmd(g *globals, f *authFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets), revoked and expired ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openExistingStore(cmd.Context(), &f.stateFlags)
			if err != nil {
				return err
			}
			defer st.Close()
			toks, err := st.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			if asJSON {
				out := make([]tokenJSON, len(toks))
				for i, t := range toks {
					out[i] = tokenJSON{Token: t, Status: t.Status(now)}
				}
				return writeJSON(g.stdout, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tOWNER\tROLES\tEXPIRES\tLAST USED\tSTATUS")
			for _, t := range toks {
				status := t.Status(now)
				if status == "revoked" {
					status += " " + cliTime(t.RevokedAt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, orDash(t.Owner), t.Grants, expiryText(t.ExpiresAt), cliTime(t.LastUsedAt), status)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newTokenRevokeCmd(g *globals, f *authFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tok auth.Token
			if err := f.change(cmd.Context(), audit.ActionTokenChange, func(st *auth.Store) (string, map[string]any, error) {
				toks, err := st.Tokens(cmd.Context())
				if err != nil {
					return "", nil, err
				}
				tok = findToken(toks, args[0])
				return tok.Name, tokenDetail("revoke", tok), st.RevokeToken(cmd.Context(), args[0])
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "revoked token %q (id %s)\n", tok.Name, tok.ID)
			return nil
		},
	}
}

// findToken returns the token RevokeToken would revoke: the one with this
// id, else the active one with this name; else a stand-in named idOrName.
func findToken(toks []auth.Token, idOrName string) auth.Token {
	for _, t := range toks {
		if t.ID == idOrName {
			return t
		}
	}
	for _, t := range toks {
		if t.Name == idOrName && t.RevokedAt.IsZero() {
			return t
		}
	}
	return auth.Token{ID: idOrName, Name: idOrName}
}
