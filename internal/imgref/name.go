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
// grammar; the error text says which part and why.
var ErrInvalid = errors.New("invalid reference")

// ValidComponent reports whether s is one path component of a repository
// name (and so a valid namespace).
func ValidComponent(s string) bool { return componentRE.MatchString(s) }

// ValidRepository reports whether name is a valid repository name.
func ValidRepository(name string) bool { return CheckRepository(name) == nil }

// CheckRepository returns why name is not a valid repository name, or nil.
func CheckRepository(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty repository name", ErrInvalid)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: repository name of %d bytes, longer than %d", ErrInvalid, len(name), MaxNameLength)
	}
	for c := range strings.SplitSeq(name, "/") {
		if !componentRE.MatchString(c) {
			return fmt.Errorf("%w: repository %q: component %q is not lowercase letters and digits joined by '.', '_', '__' or '-'",
				ErrInvalid, name, c)
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
		return "", fmt.Errorf("%w: digest %q: %v", ErrInvalid, s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	}
	return "", fmt.Errorf("%w: digest %q: unsupported algorithm %q (use sha256 or sha512)", ErrInvalid, s, d.Algorithm())
}

// Reference names a manifest in a repository of the server: by tag, by
// digest, or both (the digest then decides what is read).
type Reference struct {
	Repository string
	// Tag is the tag; DefaultTag when the reference names neither a tag
	// nor a digest, "" when it names only a digest.
	Tag string
	// Digest is set when the reference names a digest.
	Digest digest.Digest
}

// Ref is what to resolve in the repository: the digest when there is
// one, else the tag.
func (r Reference) Ref() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
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
// (surrounding white space is ignored). REPO is a repository path on the
// server, without a registry host. Every part is checked against the
// grammar; an error wraps ErrInvalid and names the part.
func Parse(s string) (Reference, error) {
	text := strings.TrimSpace(s)
	var r Reference
	rest := text
	if before, after, ok := strings.Cut(text, "@"); ok {
		d, err := ParseDigest(after)
		if err != nil {
			return Reference{}, fmt.Errorf("reference %q: %w", s, err)
		}
		r.Digest, rest = d, before
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		if strings.Contains(rest[i:], "/") {
			return Reference{}, fmt.Errorf("%w: reference %q: a registry host or port is not part of a repository name", ErrInvalid, s)
		}
		r.Tag, rest = rest[i+1:], rest[:i]
		if !ValidTag(r.Tag) {
			return Reference{}, fmt.Errorf("%w: reference %q: tag %q is not 1 to 128 letters, digits, '_', '.' or '-' (not starting with '.' or '-')", ErrInvalid, s, r.Tag)
		}
	} else if r.Digest == "" {
		r.Tag = DefaultTag
	}
	if err := CheckRepository(rest); err != nil {
		return Reference{}, fmt.Errorf("reference %q: %w", s, err)
	}
	r.Repository = rest
	return r, nil
}
