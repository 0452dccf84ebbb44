package gatekeeper

import (
	"context"
	"fmt"
	"time"
)

// The stored policy is cached by version: each decision reads the short
// version setting, and the text only when the version changed. The
// version is the SHA-256 of the stored text (policyVersionKey), written
// after the text by SetPolicy on whichever replica edits it, so every
// replica sees a PUT at its next decision.
const (
	policyVersionKey = "gate.policy.version"
	// policyRecheck bounds how long the text is trusted on the version
	// alone: after it, the text is read again and the version mended
	// when they disagree (an editor stopped between its two writes, or a
	// database written before versions).
	policyRecheck = time.Minute
	// mendTries bounds mendVersion's compare-and-swap rounds.
	mendTries = 8
)

// storedIfChanged returns the stored text when it may differ from the one
// last read (fresh), reading only the version otherwise. s.mu is held.
func (s *PolicySource) storedIfChanged() (text string, fresh bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := s.settings.Setting(ctx, policyVersionKey)
	if err != nil {
		return "", false, fmt.Errorf("reading the stored policy's version: %w", err)
	}
	now := s.now()
	if v != "" && v == s.version && now.Sub(s.checkedAt) < policyRecheck {
		return "", false, nil
	}
	t, err := s.settings.Setting(ctx, policyTextKey)
	if err != nil {
		return "", false, fmt.Errorf("reading the stored policy: %w", err)
	}
	h := hashText(t)
	if v != h {
		if err := s.mendVersion(ctx); err != nil {
			return "", false, err
		}
	}
	s.version, s.checkedAt = h, now
	return t, true, nil
}

// mendVersion sets the version to the hash of the stored text, unless it
// is already: compare-and-swap rounds, so that concurrent editors and
// menders end on the text that is stored last.
func (s *PolicySource) mendVersion(ctx context.Context) error {
	for range mendTries {
		v, err := s.settings.Setting(ctx, policyVersionKey)
		if err != nil {
			return fmt.Errorf("reading the stored policy's version: %w", err)
		}
		t, err := s.settings.Setting(ctx, policyTextKey)
		if err != nil {
			return fmt.Errorf("reading the stored policy: %w", err)
		}
		want := hashText(t)
		if v == want {
			return nil
		}
		ok, err := s.settings.SwapSetting(ctx, policyVersionKey, v, want)
		if err != nil {
			return fmt.Errorf("writing the stored policy's version: %w", err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("writing the stored policy's version: still changing after %d tries", mendTries)
}
