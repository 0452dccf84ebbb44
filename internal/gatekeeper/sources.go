package gatekeeper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
)

// DefaultPolicy is the policy in effect when the configuration names no
// policy file: findings above HIGH with a fix available fail, end-of-life
// systems fail, a pass -> fail flip after a rescan waits 72 hours, and
// promotion is by hand.
const DefaultPolicy = `version: v1
maxSeverity: HIGH
fixableOnly: true
blockEndOfLife: true
graceWindow: 72h
autoPromote: false
`

// maxExceptionFile bounds one OpenVEX file.
const maxExceptionFile = 4 << 20

// fileStamp identifies a version of a file cheaply (no read).
type fileStamp struct {
	name    string
	size    int64
	modTime time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{name: path, size: fi.Size(), modTime: fi.ModTime()}, nil
}

// PolicySource is the policy file, re-read whenever it changes on disk. A
// file that fails to load makes every verdict fail (fail closed) until it
// is fixed. Without a file, the policy is the one stored in the gate's
// store (WithPolicyStore; edited through the API, shared by every
// replica), else the built-in DefaultPolicy.
type PolicySource struct {
	path     string
	settings PolicySettings

	mu     sync.Mutex
	stamp  fileStamp
	policy *gate.Policy
	err    error
	hash   string
	text   string
	// version and checkedAt are the stored policy's cache
	// (policycache.go).
	version   string
	checkedAt time.Time
	// now is the clock of the cache's recheck (WithPolicyClock).
	now func() time.Time
}

// PolicySettings is where an edited policy is kept: the gate's store.
// store.Store implements it.
type PolicySettings interface {
	Setting(ctx context.Context, key string) (string, error)
	SwapSetting(ctx context.Context, key, old, value string) (bool, error)
}

// policyTextKey is the setting holding the edited policy's text ("" or
// unset: DefaultPolicy).
const policyTextKey = "gate.policy.text"

// PolicyOption configures a PolicySource.
type PolicyOption func(*PolicySource)

// WithPolicyStore keeps the policy in s when no file is named, so that it
// can be replaced (Keeper.SetPolicy) and every replica sees the same one.
func WithPolicyStore(s PolicySettings) PolicyOption {
	return func(p *PolicySource) { p.settings = s }
}

// WithPolicyClock sets the clock that decides when the stored policy's
// text is read again although its version did not change (time.Now by
// default).
func WithPolicyClock(now func() time.Time) PolicyOption {
	return func(p *PolicySource) {
		if now != nil {
			p.now = now
		}
	}
}

// NewPolicySource reads the policy at path ("" = the stored policy, else
// DefaultPolicy). It fails when the policy cannot be loaded, so that a
// server does not start on a broken policy.
func NewPolicySource(path string, opts ...PolicyOption) (*PolicySource, error) {
	s := &PolicySource{path: path, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if _, _, err := s.Get(); err != nil {
		return nil, err
	}
	return s, nil
}

// Editable reports whether SetPolicy can replace the policy: it is not a
// file and there is a store to keep it in.
func (s *PolicySource) Editable() bool { return s.path == "" && s.settings != nil }

// Text returns the text of the policy in effect (read as Get does), its
// hash and why it does not load.
func (s *PolicySource) Text() (text, hash string, err error) {
	_, hash, err = s.Get()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text, hash, err
}

// storedText reads the stored policy: "" when none was stored.
func (s *PolicySource) storedText() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t, err := s.settings.Setting(ctx, policyTextKey)
	if err != nil {
		return "", fmt.Errorf("reading the stored policy: %w", err)
	}
	return t, nil
}

// Path returns the policy file's path, or "" for the built-in policy.
func (s *PolicySource) Path() string { return s.path }

// Get returns the current policy and the SHA-256 of its text ("" when the
// file is missing). When the file changed since the last call, it is read
// again. err is why there is no usable policy.
func (s *PolicySource) Get() (p *gate.Policy, hash string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var data []byte
	switch {
	case s.Editable():
		// The version each time (another replica may have replaced the
		// policy), the text when it changed.
		t, fresh, err := s.storedIfChanged()
		if err != nil {
			return nil, "", err
		}
		if t == "" {
			t = DefaultPolicy
		}
		if fresh && (t != s.text || (s.policy == nil && s.err == nil)) {
			data = []byte(t)
		}
	case s.path == "":
		if s.policy == nil && s.err == nil {
			data = []byte(DefaultPolicy)
		}
	default:
		st, serr := stampOf(s.path)
		switch {
		case serr != nil:
			s.policy, s.err, s.hash, s.stamp = nil, fmt.Errorf("policy file: %w", serr), "", fileStamp{}
			return nil, "", s.err
		case st != s.stamp:
			b, rerr := os.ReadFile(s.path)
			if rerr != nil {
				return nil, "", fmt.Errorf("policy file: %w", rerr)
			}
			s.stamp = st
			data = b
		}
	}
	if data != nil {
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		s.text = string(data)
		if h != s.hash || (s.policy == nil && s.err == nil) {
			s.hash = h
			pol, perr := gate.LoadPolicy(bytes.NewReader(data))
			if perr != nil {
				name := s.path
				switch {
				case s.Editable():
					name = "stored policy"
				case name == "":
					name = "built-in policy"
				}
				s.policy, s.err = nil, fmt.Errorf("policy %s: %w", name, perr)
			} else {
				s.policy, s.err = pol, nil
			}
		}
	}
	return s.policy, s.hash, s.err
}

// ExceptionSource is a directory of OpenVEX documents (*.json), re-read
// whenever a file in it changes. A document that fails to load is left
// out (fewer exceptions can only make verdicts stricter) and reported by
// Errors.
type ExceptionSource struct {
	dir string

	mu     sync.Mutex
	stamps []fileStamp
	ex     []gate.Exception
	errs   []error
}

// NewExceptionSource reads the documents in dir ("" = no exceptions).
func NewExceptionSource(dir string) (*ExceptionSource, error) {
	s := &ExceptionSource{dir: dir}
	if dir != "" {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("exceptions directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("exceptions directory %s: not a directory", dir)
		}
	}
	s.Get()
	return s, nil
}

// Get returns the current exceptions and the errors of the files left out.
func (s *ExceptionSource) Get() ([]gate.Exception, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		return nil, nil
	}
	names, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		return s.ex, []error{err}
	}
	slices.Sort(names)
	stamps := make([]fileStamp, 0, len(names))
	for _, n := range names {
		if st, err := stampOf(n); err == nil {
			stamps = append(stamps, st)
		}
	}
	if slices.Equal(stamps, s.stamps) && s.stamps != nil {
		return s.ex, s.errs
	}
	var all []gate.Exception
	var errs []error
	for _, st := range stamps {
		ex, err := loadExceptionFile(st.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, ex...)
	}
	s.stamps, s.ex, s.errs = stamps, all, errs
	return all, errs
}

func loadExceptionFile(path string) ([]gate.Exception, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("exceptions: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("exceptions: %w", err)
	}
	if fi.Size() > maxExceptionFile {
		return nil, fmt.Errorf("exceptions %s: %d bytes, over the %d-byte limit", path, fi.Size(), maxExceptionFile)
	}
	ex, err := gate.LoadExceptions(f)
	if err != nil {
		return nil, fmt.Errorf("exceptions %s: %w", filepath.Base(path), err)
	}
	return ex, nil
}
