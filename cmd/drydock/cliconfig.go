package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/drydock-project/drydock/internal/oci"
)

// The CLI's own settings (today: the server of the last "drydock login")
// live in a small JSON file, like docker's config.json: cliConfigFile
// under $XDG_CONFIG_HOME/drydock, else ~/.config/drydock. The credentials
// stay in the docker config, where docker, crane and skopeo find them.
const (
	cliConfigDir  = "drydock"
	cliConfigFile = "cli.json"
	// maxCLIConfig bounds the file.
	maxCLIConfig = 64 << 10
)

// serverHelp is the help text of every --server flag.
const serverHelp = `drydock server URL, may include user:pass@ (default: $DRYDOCK_SERVER, else the server of the last "drydock login", else ` + oci.DefaultServer + `)`

// cliConfig is the content of the CLI's config file.
type cliConfig struct {
	// Server is the server "drydock login" last logged in to: the
	// default of --server.
	Server string `json:"server,omitempty"`
}

// cliConfigPath returns the CLI config file's path.
func cliConfigPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locating the drydock CLI config: %w", err)
	}
	return filepath.Join(dir, cliConfigDir, cliConfigFile), nil
}

// loadCLIConfig reads the CLI config; a missing file is an empty config.
func loadCLIConfig() (cliConfig, string, error) {
	var c cliConfig
	path, err := cliConfigPath()
	if err != nil {
		return c, "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, fmt.Errorf("reading the drydock CLI config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCLIConfig+1))
	if err != nil {
		return c, path, fmt.Errorf("reading the drydock CLI config %s: %w", path, err)
	}
	if len(data) > maxCLIConfig {
		return c, path, fmt.Errorf("the drydock CLI config %s is over %d bytes", path, maxCLIConfig)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, path, fmt.Errorf("the drydock CLI config %s is not valid JSON (remove it, or log in again): %w", path, err)
	}
	if c.Server != "" {
		if _, err := oci.ParseServer(c.Server); err != nil {
			return c, path, fmt.Errorf("the drydock CLI config %s: server: %w", path, err)
		}
	}
	return c, path, nil
}

// saveCLIConfig writes the CLI config atomically (a temporary file renamed
// over it), readable by its owner only.
func saveCLIConfig(c cliConfig) (string, error) {
	path, err := cliConfigPath()
	if err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return path, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return path, fmt.Errorf("writing the drydock CLI config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cli-*.json")
	if err != nil {
		return path, fmt.Errorf("writing the drydock CLI config: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return path, fmt.Errorf("writing the drydock CLI config: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return path, fmt.Errorf("writing the drydock CLI config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return path, fmt.Errorf("writing the drydock CLI config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return path, fmt.Errorf("writing the drydock CLI config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return path, fmt.Errorf("writing the drydock CLI config: %w", err)
	}
	return path, nil
}

// Where a server address came from, strongest first.
const (
	serverFromFlag    = "--server"
	serverFromEnv     = "$DRYDOCK_SERVER"
	serverFromLogin   = "drydock login"
	serverFromDefault = "built-in default"
)

// resolveServer returns the server a command talks to: flag when given,
// else $DRYDOCK_SERVER, else the server of the last "drydock login", else
// the built-in default; and which of them it is.
func resolveServer(flag string) (server, from string, err error) {
	if s := strings.TrimSpace(flag); s != "" {
		return s, serverFromFlag, nil
	}
	if s := strings.TrimSpace(os.Getenv("DRYDOCK_SERVER")); s != "" {
		return s, serverFromEnv, nil
	}
	c, _, err := loadCLIConfig()
	if err != nil {
		return "", "", err
	}
	if c.Server != "" {
		return c.Server, serverFromLogin, nil
	}
	return oci.DefaultServer, serverFromDefault, nil
}

// parseServerFlag resolves and parses a --server value.
func parseServerFlag(flag string) (oci.Server, error) {
	raw, from, err := resolveServer(flag)
	if err != nil {
		return oci.Server{}, err
	}
	srv, err := oci.ParseServer(raw)
	if err != nil {
		return oci.Server{}, fmt.Errorf("%s: %w", from, err)
	}
	return srv, nil
}
