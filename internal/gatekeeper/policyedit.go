package gatekeeper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
)

// Errors of SetPolicy.
var (
	// ErrPolicyInFile: the configuration names a policy file, which is
	// the policy's one home; it is edited there.
	ErrPolicyInFile = errors.New("the policy is the file the configuration's gate.policy names: edit that file (or remove gate.policy to keep the policy in the database and edit it here)")
	// ErrPolicyChanged: the policy changed since the caller read it.
	ErrPolicyChanged = errors.New("the policy changed since it was read: read it again and redo the change")
)

// PolicyView is the policy in effect and where it comes from.
type PolicyView struct {
	Text   string `json:"policy"`
	SHA256 string `json:"sha256"`
	// Source is "file", "database" (edited, or the built-in default
	// until the first edit) or "built-in".
	Source string `json:"source"`
	// Path is the file's, for Source "file".
	Path string `json:"path,omitempty"`
	// Editable is whether SetPolicy can replace it.
	Editable bool `json:"editable"`
	// Error is why the policy does not load (every verdict fails).
	Error string `json:"error,omitempty"`
}

// PolicyChange is the result of SetPolicy.
type PolicyChange struct {
	SHA256   string `json:"sha256"`
	Previous string `json:"previous"`
	// Changed is false when the new text equals the old.
	Changed bool `json:"changed"`
}

// Policy returns the policy in effect.
func (k *Keeper) Policy(context.Context) (*PolicyView, error) {
	text, hash, err := k.policy.Text()
	v := &PolicyView{Text: text, SHA256: hash, Path: k.policy.Path(), Editable: k.policy.Editable(), Source: "built-in"}
	switch {
	case v.Path != "":
		v.Source = "file"
	case v.Editable:
		v.Source = "database"
	}
	if err != nil {
		if v.Editable && text == "" {
			return nil, err // the store could not be read
		}
		v.Error = err.Error()
	}
	return v, nil
}

// ValidatePolicy checks a policy's text: a *gate.PolicyError lists every
// problem with its field and line.
func ValidatePolicy(text string) error {
	_, err := gate.LoadPolicy(strings.NewReader(text))
	return err
}

// SetPolicy replaces the stored policy with text, for the next verdicts
// of every replica, and audits the change with actor and both hashes.
// ifHash, when not empty, must be the hash of the policy in effect (the
// one the caller edited), else ErrPolicyChanged. A text that does not
// validate is refused with a *gate.PolicyError.
func (k *Keeper) SetPolicy(ctx context.Context, actor, text, ifHash string) (*PolicyChange, error) {
	if !k.policy.Editable() {
		if k.policy.Path() != "" {
			return nil, ErrPolicyInFile
		}
		return nil, errors.New("this gate keeps no policy store")
	}
	if err := ValidateStoredPolicy(text); err != nil {
		return nil, err
	}
	old, err := k.policy.storedText()
	if err != nil {
		return nil, err
	}
	effective := old
	if effective == "" {
		effective = DefaultPolicy
	}
	prev, next := hashText(effective), hashText(text)
	if ifHash != "" && ifHash != prev {
		return nil, ErrPolicyChanged
	}
	if text == effective {
		return &PolicyChange{SHA256: next, Previous: prev}, nil
	}
	swapped, err := k.policy.settings.SwapSetting(ctx, policyTextKey, old, text)
	if err != nil {
		return nil, fmt.Errorf("storing the policy: %w", err)
	}
	if !swapped {
		return nil, ErrPolicyChanged
	}
	// The version after the text: every replica's next decision reads it.
	if err := k.policy.mendVersion(ctx); err != nil {
		k.log.Warn("the policy is stored; other replicas see it within "+policyRecheck.String(), "err", err)
	}
	// Record the new hash as seen, so that the gate's notice of a new
	// policy (notePolicy, on any replica) does not audit it a second time.
	if recorded, err := k.store.Setting(ctx, policyHashKey); err == nil {
		if _, err := k.store.SwapSetting(ctx, policyHashKey, recorded, next); err != nil {
			k.log.Warn("recording the policy hash", "err", err)
		}
	}
	k.mu.Lock()
	k.policyHash, k.policySeen = next, true
	k.mu.Unlock()
	k.auditEntry(ctx, audit.Entry{Actor: actor, Action: audit.ActionPolicyChange, Reference: "database", Outcome: audit.OutcomeOK},
		map[string]any{"sha256": next, "previous": prev})
	k.log.Info("policy replaced", "actor", actor, "sha256", next, "previous", prev)
	return &PolicyChange{SHA256: next, Previous: prev, Changed: true}, nil
}

func hashText(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
