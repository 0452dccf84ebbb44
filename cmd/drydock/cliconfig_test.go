package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/oci"
)

// TestResolveServer: --server beats $DRYDOCK_SERVER, which beats the
// server of the last login, which beats the built-in default.
func TestResolveServer(t *testing.T) {
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("DRYDOCK_SERVER", "")
	check := func(flag, wantServer, wantFrom string) {
		t.Helper()
		s, from, err := resolveServer(flag)
		if err != nil || s != wantServer || from != wantFrom {
			t.Errorf("resolveServer(%q) = %q, %q, %v; want %q from %s", flag, s, from, err, wantServer, wantFrom)
		}
	}
	check("", oci.DefaultServer, serverFromDefault)
	path, err := saveCLIConfig(cliConfig{Server: "https://login.example:8443"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cfgHome, "drydock", "cli.json"); path != want {
		t.Errorf("config at %s, want %s", path, want)
	}
	check("", "https://login.example:8443", serverFromLogin)
	t.Setenv("DRYDOCK_SERVER", "http://env.example:5000")
	check("", "http://env.example:5000", serverFromEnv)
	check("http://flag.example", "http://flag.example", serverFromFlag)
	t.Setenv("DRYDOCK_SERVER", "")
	if _, err := saveCLIConfig(cliConfig{}); err != nil {
		t.Fatal(err)
	}
	check("", oci.DefaultServer, serverFromDefault)
}

// TestCLIConfigFile: the file is private, replaced whole (no temporary
// left behind), and a damaged one is an error that names it.
func TestCLIConfigFile(t *testing.T) {
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("DRYDOCK_SERVER", "")
	path, err := saveCLIConfig(cliConfig{Server: "http://127.0.0.1:5001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saveCLIConfig(cliConfig{Server: "http://127.0.0.1:5002"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files beside the config: %v", entries)
	}
	if c, _, err := loadCLIConfig(); err != nil || c.Server != "http://127.0.0.1:5002" {
		t.Errorf("load: %+v %v", c, err)
	}
	for body, want := range map[string]string{
		"{not json":                  "not valid JSON",
		`{"server": "ftp://x"}`:      "server:",
		strings.Repeat(" ", 70<<10):  "over",
		`{"server": "http://a/b/c"}`: "server:",
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := resolveServer("")
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
			t.Errorf("config %.20q: %v, want an error naming %s and %q", body, err, path, want)
		}
		// --server does not read the file.
		if _, _, err := resolveServer("http://127.0.0.1:1"); err != nil {
			t.Errorf("with --server, a damaged config: %v", err)
		}
	}
}
