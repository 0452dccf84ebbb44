package gatekeeper

import (
	"bytes"
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
// is fixed; the built-in DefaultPolicy is used when there is no file.
type PolicySource struct {
	path string

	mu     sync.Mutex
	stamp  fileStamp
	policy *gate.Policy
	err    error
	hash   string
}

// NewPolicySource reads the policy at path ("" = DefaultPolicy). It fails
// when the file cannot be loaded, so that a server does not start on a
// broken policy.
func NewPolicySource(path string) (*PolicySource, error) {
	s := &PolicySource{path: path}
	if _, _, err := s.Get(); err != nil {
		return nil, err
	}
	return s, nil
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
	if s.path == "" {
		if s.policy == nil && s.err == nil {
			data = []byte(DefaultPolicy)
		}
	} else {
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
		if h != s.hash || (s.policy == nil && s.err == nil) {
			s.hash = h
			pol, perr := gate.LoadPolicy(bytes.NewReader(data))
			if perr != nil {
				name := s.path
				if name == "" {
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
