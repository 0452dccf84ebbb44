package config

import (
	"fmt"
	"time"
)

// Web configures the web UI under /ui/.
type Web struct {
	// SessionTTL is how long a sign-in lasts (default 12h; from 5m to
	// 720h).
	SessionTTL Duration `yaml:"sessionTTL"`
}

// Bounds of web.sessionTTL.
const (
	minSessionTTL = 5 * time.Minute
	maxSessionTTL = 30 * 24 * time.Hour
)

func (w Web) validate() []error {
	if d := time.Duration(w.SessionTTL); d < minSessionTTL || d > maxSessionTTL {
		return []error{fmt.Errorf("web.sessionTTL: %s, want %s to %s", d, minSessionTTL, maxSessionTTL)}
	}
	return nil
}
