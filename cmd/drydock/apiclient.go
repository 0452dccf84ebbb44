package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/pflag"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/buildinfo"
)

// tokenEnv is the environment variable holding an API token (ddk_...) for
// the server commands; it takes precedence over other credentials.
const tokenEnv = "DRYDOCK_TOKEN"

// apiClient calls the server's JSON API with the CLI's credentials: an API
// token from $DRYDOCK_TOKEN, else user:pass from --server, else the docker
// config's entry for the server (docker login / podman login).
type apiClient struct {
	base   string
	header string // Authorization
	http   *http.Client
}

// addServerFlag adds --server, the drydock server the command's API calls
// go to; empty means the default resolveServer picks.
func addServerFlag(fs *pflag.FlagSet, server *string) {
	fs.StringVar(server, "server", "", serverHelp)
}

func newAPIClient(server string) (*apiClient, error) {
	srv, err := parseServerFlag(server)
	if err != nil {
		return nil, err
	}
	c := &apiClient{base: srv.String(), http: &http.Client{Timeout: 5 * time.Minute}}
	if tok := strings.TrimSpace(os.Getenv(tokenEnv)); tok != "" {
		c.header = "Bearer " + tok
		return c, nil
	}
	a := srv.Auth
	if a == nil {
		if a, err = authn.DefaultKeychain.Resolve(srv.Registry); err != nil {
			return nil, fmt.Errorf("reading credentials for %s: %w", srv.Registry.RegistryStr(), err)
		}
	}
	cfg, err := a.Authorization()
	if err != nil {
		return nil, fmt.Errorf("reading credentials for %s: %w", srv.Registry.RegistryStr(), err)
	}
	switch {
	case cfg.RegistryToken != "":
		c.header = "Bearer " + cfg.RegistryToken
	case cfg.Username != "" || cfg.Password != "":
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(cfg.Username, cfg.Password)
		c.header = req.Header.Get("Authorization")
	case cfg.Auth != "":
		c.header = "Basic " + cfg.Auth
	}
	return c, nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Body   api.ErrorBody
}

func (e *apiError) Error() string {
	if e.Body.Error.Message != "" {
		return e.Body.Error.Message
	}
	return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
}

// do sends in (if not nil) as JSON and decodes a 2xx answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.header != "" {
		req.Header.Set("Authorization", c.header)
	}
	req.Header.Set("User-Agent", buildinfo.Get().UserAgent())
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("drydock server %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("drydock server %s: reading the answer: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Body) != nil || e.Body.Error.Message == "" {
			// The registry's auth layer answers in the registry's format.
			var reg struct {
				Errors []struct{ Code, Message string } `json:"errors"`
			}
			if json.Unmarshal(data, &reg) == nil && len(reg.Errors) > 0 {
				e.Body.Error.Code, e.Body.Error.Message = reg.Errors[0].Code, reg.Errors[0].Message
			}
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("drydock server %s: unexpected answer: %w", c.base, err)
	}
	return nil
}
