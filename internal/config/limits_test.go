package config

import (
	"strings"
	"testing"
)

func TestGateLimitsAndThrottleConfig(t *testing.T) {
	cfg := Default()
	if err := Decode(strings.NewReader("gate:\n  limits: {maxPackages: 100, maxDatabaseBytes: 1048576}\nauth:\n  throttle:\n    user: {failures: 3}\nmetrics: {addr: 127.0.0.1:9090}\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Gate.Limits.MaxPackages != 100 || cfg.Gate.Limits.MaxDatabaseBytes != 1<<20 || cfg.Gate.Limits.MaxFindings != 0 {
		t.Errorf("gate.limits = %+v", cfg.Gate.Limits)
	}
	if cfg.Auth.Throttle.User.Failures != 3 || cfg.Auth.Throttle.User.Per != Default().Auth.Throttle.User.Per {
		t.Errorf("auth.throttle.user = %+v: the unset per keeps its default", cfg.Auth.Throttle.User)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"gate: {limits: {maxPackages: -1}}", "gate.limits.maxPackages: -1 is negative"},
		{"gate: {limits: {maxPackage: 1}}", "field maxPackage not found"},
		{"auth: {throttle: {address: {failures: 0}}}", "auth.throttle.address: 0 failures per 1m0s"},
		{"auth: {throttle: {auditWindow: 0s}}", "auth.throttle.auditWindow: must be positive"},
		{"metrics: {addr: nowhere}", `metrics.addr: "nowhere" is not host:port`},
		{"metrics: {addr: \"127.0.0.1:5000\"}", "is the main address"},
	} {
		c := Default()
		err := Decode(strings.NewReader(tc.yaml), &c)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.yaml, err, tc.want)
		}
	}
	c := Default()
	if err := Decode(strings.NewReader("auth: {throttle: {off: true, user: {failures: 0}}}"), &c); err != nil || c.Validate() != nil {
		t.Errorf("throttle off with zero limits: %v", c.Validate())
	}
}
