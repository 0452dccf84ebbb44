package resolve

import (
	"errors"
	"fmt"
	"strings"

	"github.com/drydock-project/drydock/internal/deb822"
	"github.com/drydock-project/drydock/internal/version"
)

// Relation is one alternative of a Debian relationship field:
// name[:archqual] [(op version)].
type Relation struct {
	Name     string
	ArchQual string // "" or the qualifier after ':', e.g. "any", "native", "amd64"
	Op       string // "", "<<", "<=", "=", ">=" or ">>" (legacy "<" and ">" are "<=" and ">=")
	Version  string // "" when Op is ""
}

// String formats r as in a control file.
func (r Relation) String() string {
	s := r.Name
	if r.ArchQual != "" {
		s += ":" + r.ArchQual
	}
	if r.Op != "" {
		s += " (" + r.Op + " " + r.Version + ")"
	}
	return s
}

// Alternatives is one comma-separated element of a relationship field:
// any one of its relations satisfies it.
type Alternatives []Relation

// String formats a as in a control file.
func (a Alternatives) String() string {
	parts := make([]string, len(a))
	for i, r := range a {
		parts[i] = r.String()
	}
	return strings.Join(parts, " | ")
}

// RelationError is a malformed relationship field of a package.
type RelationError struct {
	Package, Field, Value string
	Err                   error
}

func (e *RelationError) Error() string {
	return fmt.Sprintf("package %s: field %s %q: %v", e.Package, e.Field, deb822.Truncate(e.Value, 120), e.Err)
}

func (e *RelationError) Unwrap() error { return e.Err }

// ParseRelations parses a relationship field (Depends, Pre-Depends,
// Provides, Breaks, Conflicts): comma-separated elements of '|'-separated
// alternatives, each "name[:arch] [(op version)] [arch list] <profiles>".
// Alternatives whose architecture list excludes arch are dropped (and an
// element left empty with them); build profiles are ignored, as they are
// for binary packages. Empty elements (a trailing comma) are skipped.
func ParseRelations(field, arch string) ([]Alternatives, error) {
	var out []Alternatives
	for elem := range strings.SplitSeq(field, ",") {
		if strings.TrimSpace(elem) == "" {
			continue
		}
		var alts Alternatives
		for alt := range strings.SplitSeq(elem, "|") {
			r, keep, err := parseRelation(alt, arch)
			if err != nil {
				return nil, err
			}
			if keep {
				alts = append(alts, r)
			}
		}
		if len(alts) > 0 {
			out = append(out, alts)
		}
	}
	return out, nil
}

// parseRelation parses one alternative; keep is false when its
// architecture list excludes arch.
func parseRelation(s, arch string) (r Relation, keep bool, err error) {
	s = strings.TrimSpace(s)
	rest := ""
	if i := strings.IndexAny(s, " \t\n([<"); i >= 0 {
		s, rest = s[:i], strings.TrimSpace(s[i:])
	}
	name, qual, hasQual := strings.Cut(s, ":")
	if !validPkgName(name) {
		return r, false, fmt.Errorf("invalid package name %q", deb822.Truncate(s, 60))
	}
	if hasQual && (qual == "" || strings.Trim(qual, "abcdefghijklmnopqrstuvwxyz0123456789-") != "") {
		return r, false, fmt.Errorf("%s: invalid architecture qualifier %q", name, deb822.Truncate(qual, 40))
	}
	r.Name, r.ArchQual = name, qual
	if strings.HasPrefix(rest, "(") {
		j := strings.IndexByte(rest, ')')
		if j < 0 {
			return r, false, fmt.Errorf("%s: unterminated version constraint", name)
		}
		inner := strings.TrimSpace(rest[1:j])
		rest = strings.TrimSpace(rest[j+1:])
		for _, op := range []string{"<<", "<=", ">=", ">>", "=", "<", ">"} {
			if strings.HasPrefix(inner, op) {
				r.Op, r.Version = op, strings.TrimSpace(inner[len(op):])
				break
			}
		}
		switch r.Op {
		case "":
			return r, false, fmt.Errorf("%s: missing relation operator in %q", name, deb822.Truncate(inner, 60))
		case "<":
			r.Op = "<="
		case ">":
			r.Op = ">="
		}
		if !(version.Deb{}).Valid(r.Version) || strings.ContainsAny(r.Version, " \t\n") {
			return r, false, fmt.Errorf("%s: invalid version %q", name, deb822.Truncate(r.Version, 60))
		}
	}
	keep = true
	if strings.HasPrefix(rest, "[") {
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return r, false, fmt.Errorf("%s: unterminated architecture list", name)
		}
		if keep, err = archListMatches(strings.Fields(rest[1:j]), arch); err != nil {
			return r, false, fmt.Errorf("%s: %w", name, err)
		}
		rest = strings.TrimSpace(rest[j+1:])
	}
	for strings.HasPrefix(rest, "<") {
		j := strings.IndexByte(rest, '>')
		if j < 0 {
			return r, false, fmt.Errorf("%s: unterminated build profile", name)
		}
		rest = strings.TrimSpace(rest[j+1:])
	}
	if rest != "" {
		return r, false, fmt.Errorf("%s: unexpected %q", name, deb822.Truncate(rest, 60))
	}
	return r, keep, nil
}

// validPkgName reports whether s is a Debian package name (leniently: the
// allowed characters, any case).
func validPkgName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// archListMatches evaluates an architecture restriction list ("amd64
// arm64" or "!i386 !armel") for arch.
func archListMatches(list []string, arch string) (bool, error) {
	if len(list) == 0 {
		return false, errors.New("empty architecture list")
	}
	neg := strings.HasPrefix(list[0], "!")
	match := false
	for _, a := range list {
		if strings.HasPrefix(a, "!") != neg {
			return false, errors.New("architecture list mixes negated and plain entries")
		}
		match = match || archWildcard(strings.TrimPrefix(a, "!"), arch)
	}
	return match != neg, nil
}

// archWildcard matches a Debian architecture or wildcard ("any",
// "linux-any", "any-amd64") against a Linux architecture.
func archWildcard(pat, arch string) bool {
	switch {
	case pat == "any" || pat == arch || pat == "linux-any" || pat == "linux-"+arch || pat == "any-"+arch:
		return true
	}
	return false
}
