package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "drydock.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, `
version: v1
addr: 127.0.0.1:7000
data: /srv/from-file
log: {format: json, level: debug}
storage:
  driver: inmemory
shutdownTimeout: 5s
`)
	tests := []struct {
		name     string
		file     string
		env      []string
		wantAddr string
		wantData string
		wantDrv  string
		wantStop time.Duration
	}{
		{"defaults", "", nil, "127.0.0.1:5000", DefaultDataDir(), "filesystem", 30 * time.Second},
		{"file", file, nil, "127.0.0.1:7000", "/srv/from-file", "inmemory", 5 * time.Second},
		{"env over file", file, []string{"DRYDOCK_ADDR=127.0.0.1:8000", "DRYDOCK_SHUTDOWN_TIMEOUT=1m", "UNRELATED=x"},
			"127.0.0.1:8000", "/srv/from-file", "inmemory", time.Minute},
		{"empty env ignored", file, []string{"DRYDOCK_ADDR="}, "127.0.0.1:7000", "/srv/from-file", "inmemory", 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.file, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tt.wantAddr || cfg.Data != tt.wantData || cfg.Storage.Driver != tt.wantDrv ||
				time.Duration(cfg.ShutdownTimeout) != tt.wantStop {
				t.Errorf("got addr=%s data=%s driver=%s stop=%s", cfg.Addr, cfg.Data, cfg.Storage.Driver, cfg.ShutdownTimeout)
			}
		})
	}
}

func TestFilesystemRootDefaultsUnderData(t *testing.T) {
	cfg := Default()
	cfg.Data = "/srv/dd"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Storage.Parameters["rootdirectory"]; got != filepath.Join("/srv/dd", "registry") {
		t.Errorf("rootdirectory = %v", got)
	}
}

func TestLoadErrorsNameTheProblem(t *testing.T) {
	tests := []struct {
		name, body string
		env        []string
		want       string
	}{
		{"unknown field", "adress: x\n", nil, "field adress not found"},
		{"bad duration", "shutdownTimeout: soon\n", nil, "invalid duration"},
		{"bad env duration", "", []string{"DRYDOCK_SHUTDOWN_TIMEOUT=later"}, "DRYDOCK_SHUTDOWN_TIMEOUT"},
		{"not yaml", "addr: [\n", nil, "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.body != "" {
				path = writeFile(t, tt.body)
			}
			_, err := Load(path, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bad addr", func(c *Config) { c.Addr = "5000" }, "addr:"},
		{"bad version", func(c *Config) { c.Version = "v9" }, "version:"},
		{"bad format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"bad level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"no driver", func(c *Config) { c.Storage.Driver = "" }, "storage.driver"},
		{"no data", func(c *Config) { c.Data = "" }, "data:"},
		{"purge", func(c *Config) { c.Uploads.PurgeAfter = 0 }, "uploads.purgeAfter"},
		{"kube registry with a scheme", func(c *Config) { c.Kube.Registry = []string{"https://d.io"} }, "kube.registry[0]"},
		{"webhook without a registry host", func(c *Config) { c.Kube.Webhook.Addr = ":8443" }, "kube.registry:"},
		{"webhook mode", func(c *Config) { webhookOn(c); c.Kube.Webhook.Mode = "warn" }, "kube.webhook.mode"},
		{"webhook failure policy", func(c *Config) { webhookOn(c); c.Kube.Webhook.FailurePolicy = "fail" }, "kube.webhook.failurePolicy"},
		{"webhook url", func(c *Config) { webhookOn(c); c.Kube.Webhook.URL = "http://d.io:8443" }, "kube.webhook.url"},
		{"webhook timeout", func(c *Config) { webhookOn(c); c.Kube.Webhook.TimeoutSeconds = 31 }, "kube.webhook.timeoutSeconds"},
		{"promotion without a key", func(c *Config) { webhookOn(c); c.Kube.Webhook.RequirePromotion = true; c.Sign.Disabled = true }, "kube.webhook.requirePromotion"},
		{"rollout timeout", func(c *Config) { c.Kube.RolloutTimeout = Duration(2 * time.Hour) }, "kube.rolloutTimeout"},
		{"webhook half a certificate", func(c *Config) { webhookOn(c); c.Kube.Webhook.CertFile = "x" }, "certFile and keyFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func webhookOn(c *Config) { c.Kube.Webhook.Addr = ":8443"; c.Kube.Registry = []string{"d.io"} }

func TestKubeDefaults(t *testing.T) {
	c := Default()
	webhookOn(&c)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	w := c.Kube.Webhook
	if w.Mode != "enforce" || !w.Verdicts || w.FailurePolicy != "Fail" || len(w.ExemptNamespaces) != 1 || w.ExemptNamespaces[0] != "kube-system" {
		t.Errorf("webhook defaults %+v", w)
	}
	var d Config = Default()
	if err := Decode(strings.NewReader("kube:\n  registry: [d.io]\n  webhook: {addr: \":8443\", verdicts: false, mode: audit}\n"), &d); err != nil {
		t.Fatal(err)
	}
	if d.Kube.Webhook.Verdicts || d.Kube.Webhook.Mode != "audit" || d.Kube.Webhook.TimeoutSeconds != 5 {
		t.Errorf("decoded %+v", d.Kube.Webhook)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("addr: 127.0.0.1:1\n")
	f.Add("storage: {driver: s3, parameters: {bucket: b}}\n")
	f.Add("uploads: {purgeAfter: 1h}\n")
	f.Fuzz(func(t *testing.T, body string) {
		var c Config
		_ = Decode(strings.NewReader(body), &c)
	})
}
