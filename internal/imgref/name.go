// Package imgref is the one home of what drydock knows about image names
// and manifests, below everything that serves, judges or copies them:
//
//   - the distribution spec's grammar of repository names, tags and
//     digests, and references (REPO, REPO:TAG, REPO@DIGEST) built from them;
//   - the /v2/ API paths and the repository each one addresses;
//   - drydock's namespaces: a repository's namespace is its first path
//     component, so "live" itself and "live/..." are both the live
//     namespace;
//   - what a manifest is (an index, a runnable image, or a non-runnable
//     artifact such as a signature or an SBOM), and the walk over every
//     manifest reachable from an index.
//
// It imports only the OCI spec types and go-digest, so the registry, the
// authenticator, the gate and the CLI can all use it.
package imgref

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	// Register sha256 and sha512 with crypto, so go-digest validates them.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// MaxNameLength bounds a repository name, as distribution does.
const MaxNameLength = 255

// DefaultTag is the tag of a reference that names neither a tag nor a
// digest.
const DefaultTag = "latest"

var (
	// componentRE is one path component of a repository name, as in the
	// distribution specification. No component can be empty, "." or "..",
	// nor start with "_" (the registry's bookkeeping directories).
	componentRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	// tagRE is the tag grammar of the distribution specification.
	tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ErrInvalid marks a name, tag, digest or reference that breaks the
// grammar (errors.Is); the error, an *Error, says which part and why.
var ErrInvalid = errors.New("invalid reference")

// Error is a part of a reference that breaks the grammar.
type Error struct {
	// Input is the reference read by Parse ("" for a part checked alone).
	Input string
	// Part is "repository name", "tag" or "digest"; Value its text.
	Part, Value string
	Reason      string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("invalid %s %q: %s", e.Part, e.Value, e.Reason)
	if e.Input != "" && e.Input != e.Value {
		s = fmt.Sprintf("reference %q: %s", e.Input, s)
	}
	return s
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// inInput returns err with the reference it was found in.
func inInput(err error, input string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Input = input
		return &c
	}
	return err
}

// ValidComponent reports whether s is one path component of a repository
// name (and so a valid namespace).
func ValidComponent(s string) bool { return componentRE.MatchString(s) }

// ValidRepository reports whether name is a valid repository name.
func ValidRepository(name string) bool { return CheckRepository(name) == nil }

// CheckRepository returns why name is not a valid repository name, or nil.
func CheckRepository(name string) error {
	bad := func(reason string) error { return &Error{Part: "repository name", Value: name, Reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLength:
		return bad(fmt.Sprintf("%d bytes, longer than %d", len(name), MaxNameLength))
	}
	for c := range strings.SplitSeq(name, "/") {
		if !componentRE.MatchString(c) {
			return bad(fmt.Sprintf("component %q is not lowercase letters and digits joined by '.', '_', '__' or '-'", c))
		}
	}
	return nil
}

// ValidTag reports whether tag is a valid tag.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }

// ParseDigest parses a digest, accepting only the algorithms drydock can
// verify (sha256, sha512) with an encoding of the right length.
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", &Error{Part: "digest", Value: s, Reason: err.Error()}
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	}
	return "", &Error{Part: "digest", Value: s, Reason: fmt.Sprintf("unsupported algorithm %q (use sha256 or sha512)", d.Algorithm())}
}

// Reference names a manifest in a repository of the server: by tag, by
// digest, or both (the digest then decides what is read).
type Reference struct {
	Repository string
	// Tag is the tag the reference names, "" when it names none.
	Tag string
	// Digest is set when the reference names a digest.
	Digest digest.Digest
}

// Ref is what to resolve in the repository: the digest when there is
// one, else the tag, else DefaultTag.
func (r Reference) Ref() string {
	switch {
	case r.Digest != "":
		return r.Digest.String()
	case r.Tag != "":
		return r.Tag
	}
	return DefaultTag
}

// String formats r as Parse reads it.
func (r Reference) String() string {
	s := r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Parse reads "REPO", "REPO:TAG", "REPO@DIGEST" or "REPO:TAG@DIGEST"
// (surrounding white space is ignored; "REPO" resolves DefaultTag). REPO is a repository path on the
// server, without a registry host. Every part is checked against the
// grammar; an error wraps ErrInvalid and names the part.
func Parse(s string) (Reference, error) {
	text := strings.TrimSpace(s)
	var r Reference
	rest := text
	if before, after, ok := strings.Cut(text, "@"); ok {
		d, err := ParseDigest(after)
		if err != nil {
			return Reference{}, inInput(err, s)
		}
		r.Digest, rest = d, before
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		if strings.Contains(rest[i:], "/") {
			return Reference{}, &Error{Input: s, Part: "repository name", Value: rest,
				Reason: "a registry host or port is not part of a repository name on the server"}
		}
		r.Tag, rest = rest[i+1:], rest[:i]
		if !ValidTag(r.Tag) {
			return Reference{}, &Error{Input: s, Part: "tag", Value: r.Tag,
				Reason: "want 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"}
		}
	}
	if err := CheckRepository(rest); err != nil {
		return Reference{}, inInput(err, s)
	}
	r.Repository = rest
	return r, nil
}
