package config

import (
	"strings"
	"testing"
	"time"
)

// TestWebSessionTTL: web.sessionTTL defaults to 12h, is read from the
// file, and a value out of bounds is refused naming the key.
func TestWebSessionTTL(t *testing.T) {
	if d := time.Duration(Default().Web.SessionTTL); d != 12*time.Hour {
		t.Errorf("default web.sessionTTL %s, want 12h", d)
	}
	cfg := Default()
	if err := Decode(strings.NewReader("web: {sessionTTL: 90m}"), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || time.Duration(cfg.Web.SessionTTL) != 90*time.Minute {
		t.Fatalf("web.sessionTTL 90m: %v, %s", err, time.Duration(cfg.Web.SessionTTL))
	}
	for _, bad := range []string{"0s", "-1h", "1m", "721h"} {
		cfg := Default()
		if err := Decode(strings.NewReader("web: {sessionTTL: "+bad+"}"), &cfg); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "web.sessionTTL") {
			t.Errorf("web.sessionTTL %s: %v, want an error naming web.sessionTTL", bad, err)
		}
	}
}
