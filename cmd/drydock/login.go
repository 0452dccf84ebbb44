package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/drydock-project/drydock/internal/oci"
)

func newLoginCmd(g *globals) *cobra.Command {
	var (
		user  string
		stdin bool
	)
	cmd := &cobra.Command{
		Use:   "login [SERVER]",
		Short: "Log in to a drydock server, keep the credentials and use it by default",
		Long: `Login checks a user name and password (or an API token as the password)
against the drydock server, through the registry's token flow, and stores
them in the docker config ($DOCKER_CONFIG/config.json, else
~/.docker/config.json, or its credential helper), as "docker login" does.
Every drydock command that talks to the server (import, images, scan,
patch, verdict, promote, audit, workflow...) and docker, skopeo and crane
then use them.

Login also remembers SERVER as the drydock commands' default server, in
$XDG_CONFIG_HOME/drydock/cli.json (else ~/.config/drydock/cli.json,
written atomically, mode 0600). A command's server is, first to last:
its --server flag, $DRYDOCK_SERVER, the server of the last login, else
` + oci.DefaultServer + `. "drydock logout" forgets it.

SERVER defaults to that same order (without --server). The password comes
from --password-stdin (the first line of stdin) or, on a terminal, a prompt.`,
		Example: `  drydock login -u alice
  printf '%s\n' "$TOKEN" | drydock login https://drydock.example.com -u ci --password-stdin
  drydock images   # now lists https://drydock.example.com's images`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, srv, err := loginTarget(args)
			if err != nil {
				return err
			}
			if user == "" {
				return errors.New("give the user name with -u (for an API token, any name)")
			}
			pass, err := readSecret(g, cmd.InOrStdin(), stdin)
			if err != nil {
				return err
			}
			if err := checkLogin(cmd, srv, user, pass); err != nil {
				return err
			}
			cf, err := dockerconfig.Load(os.Getenv("DOCKER_CONFIG"))
			if err != nil {
				return fmt.Errorf("reading the docker config: %w", err)
			}
			if err := cf.GetCredentialsStore(host).Store(types.AuthConfig{Username: user, Password: pass, ServerAddress: host}); err != nil {
				return fmt.Errorf("storing the credentials for %s: %w", host, err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("writing %s: %w", cf.Filename, err)
			}
			cfgPath, err := saveCLIConfig(cliConfig{Server: srv.String()})
			if err != nil {
				return fmt.Errorf("credentials stored, but %w", err)
			}
			fmt.Fprintf(g.stdout, "Login Succeeded (%s as %s; credentials in %s)\n", host, user, cf.Filename)
			fmt.Fprintf(g.stdout, "drydock commands now use %s by default (%s)\n", srv.String(), cfgPath)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name (for an API token: any name, e.g. the token's)")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password or token from the first line of stdin")
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Remove a drydock server's credentials from the docker config",
		Long: `Logout removes SERVER's credentials from the docker config and, when SERVER
is the default server "drydock login" remembered, forgets it: commands go
back to $DRYDOCK_SERVER or ` + oci.DefaultServer + `.

SERVER defaults to $DRYDOCK_SERVER, else the server of the last login.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, _, err := loginTarget(args)
			if err != nil {
				return err
			}
			cf, err := dockerconfig.Load(os.Getenv("DOCKER_CONFIG"))
			if err != nil {
				return fmt.Errorf("reading the docker config: %w", err)
			}
			if err := forgetDefaultServer(g, host); err != nil {
				return err
			}
			if _, ok := cf.AuthConfigs[host]; !ok {
				fmt.Fprintf(g.stdout, "not logged in to %s\n", host)
				return nil
			}
			if err := cf.GetCredentialsStore(host).Erase(host); err != nil {
				return fmt.Errorf("removing the credentials for %s: %w", host, err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("writing %s: %w", cf.Filename, err)
			}
			fmt.Fprintf(g.stdout, "Removed the credentials for %s\n", host)
			return nil
		},
	}
}

// forgetDefaultServer clears the remembered default server when it is
// host's.
func forgetDefaultServer(g *globals, host string) error {
	c, path, err := loadCLIConfig()
	if err != nil {
		return err
	}
	if c.Server == "" {
		return nil
	}
	if srv, err := oci.ParseServer(c.Server); err != nil || srv.Registry.RegistryStr() != host {
		return nil
	}
	c.Server = ""
	if _, err := saveCLIConfig(c); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s is no longer the default server (%s)\n", host, path)
	return nil
}

// loginTarget parses the optional SERVER argument.
func loginTarget(args []string) (host string, srv oci.Server, err error) {
	raw := ""
	if len(args) == 1 {
		raw = args[0]
	}
	if srv, err = parseServerFlag(raw); err != nil {
		return "", oci.Server{}, err
	}
	if srv.Auth != nil {
		return "", oci.Server{}, fmt.Errorf("give credentials with -u and the password on stdin, not in the server URL %q", srv.String())
	}
	return srv.Registry.RegistryStr(), srv, nil
}

// readSecret reads a password: the first line of stdin, or a prompt on a
// terminal.
func readSecret(g *globals, in io.Reader, fromStdin bool) (string, error) {
	if !fromStdin {
		f, ok := in.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", errors.New("no terminal to ask for the password: use --password-stdin")
		}
		fmt.Fprint(g.stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	line, err := firstLine(in, 4096)
	if err != nil {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

// firstLine reads the first line of r, at most limit bytes, without its
// line ending: a password or token given with --password-stdin.
func firstLine(r io.Reader, limit int64) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, limit)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// checkLogin asks the server to accept the credentials: a ping of /v2/
// through the token flow, as registry clients do.
func checkLogin(cmd *cobra.Command, srv oci.Server, user, pass string) error {
	rt, err := transport.NewWithContext(cmd.Context(), srv.Registry, &authn.Basic{Username: user, Password: pass},
		http.DefaultTransport, []string{srv.Registry.Scope(transport.PullScope)})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("login to %s refused: %w", srv.String(), err)
		}
		return fmt.Errorf("login to %s: %w", srv.String(), err)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, srv.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", srv.String(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s refused: %s", srv.String(), resp.Status)
	}
	return nil
}
