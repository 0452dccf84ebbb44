package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/database"
)

// runAuthCmd runs a user or token command (root.go does not list them
// yet) with stdin.
func runAuthCmd(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb, logFormat: "text", logLevel: "info"}
	root := &cobra.Command{Use: "drydock", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetIn(strings.NewReader(stdin))
	root.AddCommand(newUserCmd(g), newTokenCmd(g))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestUserCLI(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	if _, _, err := runAuthCmd(t, "", "user", "list", "--data", data); err == nil || !strings.Contains(err.Error(), "no auth store at") {
		t.Fatalf("list without a store: %v", err)
	}
	out, _, err := runAuthCmd(t, "alice-password\n", "user", "add", "alice", "--data", data,
		"--role", "push:quarantine", "--role", "pull:quarantine,promote:live", "--password-stdin")
	if err != nil || out != "" {
		t.Fatalf("add alice: %v %q", err, out)
	}
	gen, errOut, err := runAuthCmd(t, "", "user", "add", "bob", "--data", data, "--role", "pull:live")
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(gen)
	if len(pw) < 20 || strings.Count(gen, "\n") != 1 || !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("generated password %q (stderr %q)", gen, errOut)
	}

	errTests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"bad role", "", []string{"user", "add", "carol", "--role", "write:live"}, `--role: role "write:live": unknown role "write" (valid roles: pull, push, promote, metrics, admin`},
		{"admin on a namespace", "", []string{"user", "add", "carol", "--role", "admin:live"}, "admin is global"},
		{"no role", "", []string{"user", "add", "carol"}, "give at least one --role"},
		{"duplicate", "", []string{"user", "add", "alice", "--role", "pull"}, `user "alice" already exists`},
		{"short password", "short\n", []string{"user", "add", "carol", "--role", "pull", "--password-stdin"}, "password too short"},
		{"empty stdin", "", []string{"user", "add", "carol", "--role", "pull", "--password-stdin"}, "no password on stdin"},
		{"bad name", "", []string{"user", "add", "Carol", "--role", "pull"}, `invalid user name "Carol"`},
		{"unknown user", "", []string{"user", "disable", "nobody"}, `user "nobody" not found`},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := runAuthCmd(t, tt.stdin, append(tt.args, "--data", data)...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}

	out, _, err = runAuthCmd(t, "", "user", "list", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var users []auth.User
	if err := json.Unmarshal([]byte(out), &users); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(users) != 2 || users[0].Name != "alice" || users[0].Grants.String() != "promote:live,pull:quarantine,push:quarantine" ||
		users[1].Name != "bob" || users[1].Disabled {
		t.Fatalf("users %+v", users)
	}
	if strings.Contains(out, "$2a$") || strings.Contains(out, "alice-password") {
		t.Fatalf("list shows a password or hash:\n%s", out)
	}

	for _, args := range [][]string{
		{"user", "roles", "bob", "--role", "pull:live,pull:quarantine"},
		{"user", "disable", "bob"},
		{"user", "enable", "bob"},
		{"user", "passwd", "alice", "--password-stdin"},
	} {
		if _, _, err := runAuthCmd(t, "new-alice-password\n", append(args, "--data", data)...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	out, _, err = runAuthCmd(t, "", "user", "list", "--data", data)
	if err != nil || !regexp.MustCompile(`(?m)^bob +pull:live,pull:quarantine +enabled `).MatchString(out) {
		t.Fatalf("list: %v\n%s", err, out)
	}

	st, err := auth.OpenStore(auth.DefaultPath(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, "bob", pw); err != nil {
		t.Errorf("bob with the generated password: %v", err)
	}
	if _, err := st.Authenticate(ctx, "alice", "new-alice-password"); err != nil {
		t.Errorf("alice with the new password: %v", err)
	}
	st.Close()

	if _, _, err := runAuthCmd(t, "", "user", "delete", "bob", "--data", data); err != nil {
		t.Fatal(err)
	}
	entries := auditEntries(t, data)
	var ops []string
	for _, e := range entries {
		if e.Action != audit.ActionUserChange || e.Outcome != audit.OutcomeOK || !strings.HasPrefix(e.Actor, "cli:") {
			t.Errorf("entry %+v", e)
		}
		var d map[string]any
		_ = json.Unmarshal(e.Detail, &d)
		ops = append(ops, e.Reference+":"+d["op"].(string))
		for _, secret := range []string{"alice-password", "new-alice-password", pw} {
			if strings.Contains(string(e.Detail), secret) || strings.Contains(e.Reference, secret) {
				t.Errorf("entry %d holds a password", e.Seq)
			}
		}
	}
	if got := strings.Join(ops, " "); got != "alice:add bob:add bob:roles bob:disable bob:enable alice:passwd bob:delete" {
		t.Errorf("audit ops %q", got)
	}
	if !strings.Contains(string(entries[0].Detail), `"roles":["promote:live","pull:quarantine","push:quarantine"]`) {
		t.Errorf("add detail %s", entries[0].Detail)
	}
}

func auditEntries(t *testing.T, data string) []*audit.Entry {
	t.Helper()
	o, err := database.NewOpener(database.Config{}, data)
	if err != nil {
		t.Fatal(err)
	}
	l, closeLog, err := audit.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	var entries []*audit.Entry
	if err := l.Scan(context.Background(), 1, func(e *audit.Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestTokenCLI(t *testing.T) {
	data := t.TempDir()
	if _, _, err := runAuthCmd(t, "alice-password\n", "user", "add", "alice", "--role", "push:quarantine,pull:quarantine", "--password-stdin", "--data", data); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runAuthCmd(t, "", "token", "create", "cluster", "--role", "pull:live", "--expires", "365d", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(out)
	if !regexp.MustCompile(`^ddk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$`).MatchString(secret) {
		t.Fatalf("secret %q", out)
	}
	if !strings.Contains(errOut, "cannot be shown again") || !strings.Contains(errOut, "docker login HOST -u cluster --password-stdin") {
		t.Fatalf("create notes:\n%s", errOut)
	}
	ciOut, _, err := runAuthCmd(t, "", "token", "create", "ci", "--user", "alice", "--role", "push:quarantine", "--expires", "never", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	ciSecret := strings.TrimSpace(ciOut)
	if _, _, err := runAuthCmd(t, "", "token", "create", "x", "--user", "alice", "--role", "push:live", "--data", data); err == nil ||
		!strings.Contains(err.Error(), `roles push:live go beyond those of its owner "alice"`) {
		t.Fatalf("beyond the owner: %v", err)
	}
	if _, _, err := runAuthCmd(t, "", "token", "create", "x", "--role", "pull", "--expires", "soon", "--data", data); err == nil ||
		!strings.Contains(err.Error(), `invalid --expires "soon"`) {
		t.Fatalf("bad --expires: %v", err)
	}

	out, _, err = runAuthCmd(t, "", "token", "list", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "ddk_") {
		t.Fatalf("list shows a secret:\n%s", out)
	}
	var toks []tokenJSON
	if err := json.Unmarshal([]byte(out), &toks); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(toks) != 2 || toks[0].Name != "ci" || toks[0].Owner != "alice" || !toks[0].ExpiresAt.IsZero() || toks[0].Status != "active" ||
		toks[1].Name != "cluster" || toks[1].Grants.String() != "pull:live" || time.Until(toks[1].ExpiresAt) < 364*24*time.Hour {
		t.Fatalf("tokens %+v", toks)
	}

	if out, _, err := runAuthCmd(t, "", "token", "revoke", "cluster", "--data", data); err != nil || !strings.Contains(out, toks[1].ID) {
		t.Fatalf("revoke: %v %q", err, out)
	}
	if _, _, err := runAuthCmd(t, "", "token", "revoke", toks[1].ID, "--data", data); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Fatalf("revoke twice: %v", err)
	}
	out, _, err = runAuthCmd(t, "", "token", "list", "--data", data)
	if err != nil || !regexp.MustCompile(`(?m)^`+toks[1].ID+` +cluster +- +pull:live +\S+ +- +revoked `).MatchString(out) {
		t.Fatalf("list after revoke: %v\n%s", err, out)
	}

	st, err := auth.OpenStore(auth.DefaultPath(data))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.AuthenticateToken(context.Background(), secret); err == nil || !strings.Contains(err.Error(), "token revoked") {
		t.Errorf("revoked secret: %v", err)
	}
	if p, err := st.Authenticate(context.Background(), "anyone", ciSecret); err != nil || p.Name != "token:ci" {
		t.Errorf("ci secret: %+v %v", p, err)
	}

	var ops []string
	for _, e := range auditEntries(t, data) {
		for _, s := range []string{secret, ciSecret, "alice-password", "ddk_"} {
			if strings.Contains(string(e.Detail), s) || strings.Contains(e.Reference, s) {
				t.Errorf("entry %d holds a secret: %s", e.Seq, e.Detail)
			}
		}
		if e.Action == audit.ActionTokenChange {
			var d map[string]any
			_ = json.Unmarshal(e.Detail, &d)
			ops = append(ops, e.Reference+":"+d["op"].(string)+":"+d["expires"].(string))
		}
	}
	if len(ops) != 3 || !strings.HasPrefix(ops[0], "cluster:create:20") || ops[1] != "ci:create:never" || !strings.HasPrefix(ops[2], "cluster:revoke:20") {
		t.Errorf("audit token ops %q", ops)
	}
}

func TestAuthHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"user", "--help"}, []string{"pull", "push", "promote", "admin", "--role push:quarantine --role pull:quarantine"}},
		{[]string{"token", "create", "--help"}, []string{"drydock token create cluster --role pull:live --expires 365d", "can pull only from live/", "promote"}},
	} {
		out, _, err := runAuthCmd(t, "", tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v does not mention %q:\n%s", tt.args, w, out)
			}
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{"never", time.Time{}, ""},
		{"90d", now.AddDate(0, 0, 90), ""},
		{"2160h", now.Add(2160 * time.Hour), ""},
		{"30m", now.Add(30 * time.Minute), ""},
		{"2027-03-01", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), ""},
		{"2027-03-01T10:00:00+02:00", time.Date(2027, 3, 1, 8, 0, 0, 0, time.UTC), ""},
		{"0d", time.Time{}, "days must be 1 to"},
		{"-5d", time.Time{}, "days must be 1 to"},
		{"999999999d", time.Time{}, "days must be 1 to"},
		{"+5d", time.Time{}, "want Nd"},
		{"d", time.Time{}, "want Nd"},
		{"-1h", time.Time{}, "must be positive"},
		{"2020-01-01", time.Time{}, "2020-01-01T00:00:00Z is not in the future"},
		{"tomorrow", time.Time{}, `invalid --expires "tomorrow": want Nd`},
		{"", time.Time{}, "want Nd"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseExpiry(tt.in, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseExpiry(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("parseExpiry(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"never", "90d", "2160h", "2027-03-01", "2027-03-01T10:00:00Z", "-1d", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseExpiry(s, now)
		if err != nil {
			return
		}
		if got.IsZero() != (s == "never") || (!got.IsZero() && !got.After(now)) {
			t.Fatalf("parseExpiry(%q) = %v", s, got)
		}
	})
}
